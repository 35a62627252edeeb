from __future__ import annotations

from collections.abc import Iterator

import helm_python as helm
import pytest

from tests.chart.manifests import CHART_DIR, Manifest, Render, Values, render


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render_chart(chart: helm.Chart) -> Render:
    """render_chart(values, name=..., namespace=...) -> the rendered objects."""

    def _render(values: Values | None = None, **release: str) -> list[Manifest]:
        return render(chart, values, **release)

    return _render


@pytest.fixture(scope="session")
def defaults(render_chart: Render) -> list[Manifest]:
    """The objects a plain `helm install ipvsctl charts/ipvsctl -n kube-system` creates."""
    return render_chart()
