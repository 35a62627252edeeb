"""The transactions are what nft and the kernel accept: `nft --check` parses each one and
has the kernel check it, then drops it (nft sends no commit), in a network namespace of
its own so that this machine's ruleset is never even read.

Not skipped when nft is missing: CI installs the nftables package, and a missing nft
must show up as a failure, not as a pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ipvsctl.netfilter import (
    Element,
    NetfilterOptions,
    create_transaction,
    delete_transaction,
    element_changes,
    static_ruleset,
    update_transaction,
)

ELEMENTS = [
    Element("service-ips-v4", ("10.96.0.10",)),
    Element("cluster-ips-v4", ("10.96.0.10", "tcp", "80")),
    Element("cluster-ips-v4", ("10.96.0.10", "sctp", "9000")),
    Element("external-ips-v4", ("203.0.113.7", "udp", "53")),
    Element("masq-services-v4", ("192.168.0.10", "tcp", "30080")),
    Element("hairpin-v4", ("10.244.1.5", "10.244.1.5")),
    Element("lb-filtered-v4", ("198.51.100.1", "tcp", "443")),
    Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "443", "192.0.2.0/24")),
    Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "443", "198.51.100.1/32")),
    Element("service-ips-v6", ("fd00:10:96::a",)),
    Element("cluster-ips-v6", ("fd00:10:96::a", "tcp", "80")),
    Element("external-ips-v6", ("2001:db8::7", "tcp", "443")),
    Element("masq-services-v6", ("2001:db8::7", "tcp", "443")),
    Element("hairpin-v6", ("fd00:10:244::5", "fd00:10:244::5")),
    Element("lb-filtered-v6", ("2001:db8::7", "tcp", "443")),
    Element("lb-source-ranges-v6", ("2001:db8::7", "tcp", "443", "2001:db8:1::/48")),
    Element("health-check-ports", ("32000",)),
]


def nft_check(text: str) -> subprocess.CompletedProcess[str]:
    nft = shutil.which("nft")
    if nft is None:
        pytest.fail("nft is not installed: install the nftables package (.ci/setup does)")
    # A namespace of our own: root needs only a new network namespace; anyone else
    # also a user namespace in which they are root.
    isolate = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "-r", "--net"]
    return subprocess.run(
        [*isolate, nft, "--check", "-f", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def accepted(text: str) -> None:
    result = nft_check(text)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "options",
    [
        NetfilterOptions(),
        NetfilterOptions(cluster_cidrs=("10.244.0.0/16", "10.245.0.0/16", "fd00:10:244::/56")),
        NetfilterOptions(masquerade_all=True),
    ],
    ids=["no cluster CIDR", "cluster CIDRs", "masquerade all"],
)
def test_the_whole_table_is_accepted(options: NetfilterOptions) -> None:
    accepted(create_transaction(static_ruleset(options), ELEMENTS))


def test_element_changes_after_it_are_accepted() -> None:
    ruleset = static_ruleset(NetfilterOptions())
    old = ELEMENTS
    new = [e for e in ELEMENTS if e.set != "hairpin-v4"] + [
        Element("hairpin-v4", ("10.244.1.6", "10.244.1.6")),
        # a source range that overlaps the one it replaces
        Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "443", "192.0.0.0/16")),
    ]
    new.remove(Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "443", "192.0.2.0/24")))
    update = update_transaction(element_changes(old, new))
    assert update.count("\n") == 4  # hairpin and source ranges: a delete and an add each
    accepted(create_transaction(ruleset, old) + update)


def test_making_the_table_again_over_itself_is_accepted() -> None:
    text = create_transaction(static_ruleset(NetfilterOptions()), ELEMENTS)
    accepted(text + text)


def test_cleanup_is_accepted_with_or_without_the_table() -> None:
    accepted(delete_transaction())
    accepted(
        create_transaction(static_ruleset(NetfilterOptions()), ELEMENTS) + delete_transaction()
    )


def test_a_kernel_refusal_shows_in_the_check() -> None:
    # The check reaches the kernel: deleting an element that is not there fails.
    text = create_transaction(static_ruleset(NetfilterOptions()), [])
    missing = "delete element inet ipvsctl service-ips-v4 { 10.96.0.99 }\n"
    result = nft_check(text + missing)
    assert result.returncode != 0 and "Error" in result.stderr
