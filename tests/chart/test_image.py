"""The Dockerfile builds the image the chart runs (read, not built: CI has no engine)."""

from __future__ import annotations

import json
import re

import helm_python as helm
import yaml

import ipvsctl
from tests.chart.manifests import CHART_DIR, REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: list[tuple[str, str]] = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_chart_app_version_is_the_package_version(chart: helm.Chart) -> None:
    assert chart.metadata["appVersion"] == ipvsctl.__version__


def test_chart_default_image_names_no_registry_host() -> None:
    repository = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["image"]["repository"]
    first = repository.split("/")[0]
    # A registry host is the first component when it has a dot, a port or is localhost.
    assert "/" in repository
    assert "." not in first and ":" not in first and first != "localhost"


def test_image_is_a_slim_python_of_the_supported_version() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:3\.11-slim(-[a-z]+)?", base[1])
    assert final_stage()[0] == ("FROM", "${PYTHON_IMAGE}")


def test_image_entrypoint_is_ipvsctl() -> None:
    (entrypoint,) = [args for keyword, args in final_stage() if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["ipvsctl"]


def test_image_has_ipvsadm_and_kmod() -> None:
    runs = " ".join(args for keyword, args in final_stage() if keyword == "RUN")
    install = re.search(r"apt-get install ([^&]+)", runs)
    assert install is not None
    assert {"ipvsadm", "kmod"} <= set(install[1].split())
    assert "rm -rf /var/lib/apt/lists/*" in runs


def test_image_installs_the_package_from_the_repository() -> None:
    steps = instructions()
    assert ("COPY", "ipvsctl ./ipvsctl") in steps
    assert any(keyword == "RUN" and "pip install ." in args for keyword, args in steps)
    assert ("COPY", "--from=build /opt/ipvsctl /opt/ipvsctl") in final_stage()


def test_build_context_keeps_what_the_dockerfile_copies() -> None:
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "allow-list: everything else stays out of the context"
    kept = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for keyword, args in instructions():
        if keyword == "COPY" and not args.startswith("--from"):
            *sources, _destination = args.split()
            assert set(sources) <= kept, f"COPY {args}: not in .dockerignore's allow-list"
