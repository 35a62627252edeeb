"""Fixtures of the sources' tests: an emulated API server, and a sink to read."""

from __future__ import annotations

from collections.abc import Iterator

import kmock
import pytest

from tests.sources.kube_api import KubeApi
from tests.sources.recording_sink import RecordingSink


@pytest.fixture
def api() -> Iterator[KubeApi]:
    """An API server with a real one's semantics (resourceVersions, resumable watches)."""
    with KubeApi() as running:
        yield running


@pytest.fixture
def kmock_api() -> Iterator[KubeApi]:
    """kmock's own emulator: no resourceVersions; every watch replays every object."""
    with KubeApi(kmock.KubernetesEmulator) as running:
        yield running


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()
