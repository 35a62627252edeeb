"""The one options record, checked once: what `apply`, `diff` and `run` are given."""

from __future__ import annotations

import re

import pytest

from ipvsctl.cli.engine_commands import split_list
from ipvsctl.reconcile.options import EngineOptions, OptionError, check_options


def test_cluster_cidrs_take_comma_lists_and_repeats_canonically() -> None:
    values = ["10.244.0.0/16,fd00:10:244:0::/56", "10.244.0.0/16", " 10.1.2.3/8 "]
    options = check_options(EngineOptions(cluster_cidrs=split_list(values)), frozenset())
    assert options.cluster_cidrs == ("10.244.0.0/16", "fd00:10:244::/56", "10.0.0.0/8")


def test_a_bad_cluster_cidr_is_named() -> None:
    given = EngineOptions(cluster_cidrs=split_list(["10.0.0.0/8,10.244.0.0/33"]))
    with pytest.raises(OptionError, match=re.escape("--cluster-cidr: '10.244.0.0/33' is not")):
        check_options(given, frozenset())
