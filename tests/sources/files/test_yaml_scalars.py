"""The plain-scalar table kept beside PyYAML's, and the values built without PyYAML."""

from __future__ import annotations

import yaml

from ipvsctl.sources.files.yaml_scalars import (
    IMPLICIT_RESOLVERS,
    construct,
    pyyaml_agrees,
    spelling,
)


def test_the_resolver_table_is_pyyamls() -> None:
    assert spelling(IMPLICIT_RESOLVERS) == spelling(yaml.SafeLoader.yaml_implicit_resolvers)
    assert pyyaml_agrees()


def test_every_null_and_bool_spelling_is_built_as_pyyaml_builds_it() -> None:
    words = ["~", "null", "Null", "NULL", ""]
    for word in ("yes", "no", "true", "false", "on", "off"):
        words += [word, word.capitalize(), word.upper()]
    for word in words:
        tag = next(t for t, p in IMPLICIT_RESOLVERS[word[:1]] if p.match(word))
        assert construct(tag, word) == yaml.safe_load(f"k: {word}")["k"], word


def test_other_data_is_built_by_pyyaml() -> None:
    for word in ("0x1F", "017", "0b101", "1_000", "1:30", "1.5e+3", ".inf", "2001-12-14"):
        tag = next(t for t, p in IMPLICIT_RESOLVERS[word[:1]] if p.match(word))
        assert construct(tag, word) == yaml.safe_load(f"k: {word}")["k"], word


def test_an_extended_pyyaml_resolver_is_noticed() -> None:
    class Extended(yaml.SafeLoader):
        pass

    Extended.add_implicit_resolver("tag:example.com,2000:x", IMPLICIT_RESOLVERS["y"][0][1], ["x"])
    assert "x" not in yaml.SafeLoader.yaml_implicit_resolvers  # a subclass copies the table
    saved = yaml.SafeLoader.yaml_implicit_resolvers
    yaml.SafeLoader.yaml_implicit_resolvers = Extended.yaml_implicit_resolvers
    try:
        assert not pyyaml_agrees()
    finally:
        yaml.SafeLoader.yaml_implicit_resolvers = saved
