"""The chart's fixtures: the sandbox is tested on what the chart renders."""

from tests.chart.conftest import chart, render_chart  # noqa: F401
