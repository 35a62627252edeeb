"""The agent's Prometheus metrics, behind a typed facade.

Everything lives on a private `CollectorRegistry`, never prometheus_client's
global one: two agents in one process (tests, mostly) would otherwise clash
on registration, and the exposition holds only what the agent means to show.
The rest of the agent calls `AgentMetrics` methods with plain values and
never sees a prometheus_client type.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import MetricsHandler

from ipvsctl.agent.http_listener import REQUEST_TIMEOUT, HttpListener, parse_listen_address
from ipvsctl.model.changes import ChangeFailure, IpvsChange, Op

ReconcileKind = Literal["incremental", "full"]

# One Service change reaches the kernel in a few milliseconds when all is
# well and in seconds under a burst (--min-sync-period) or a slow API server:
# fine steps at the low end, where regressions show first.
LATENCY_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
    0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0,
)  # fmt: skip
# A full resync of 10,000 Services reads and plans the whole table: seconds.
RECONCILE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class AgentMetrics:
    """The agent's metrics on their own registry (`registry`), fed through methods."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._reconcile = Histogram(
            "ipvsctl_reconcile_duration_seconds",
            "Time one reconcile took, from reading state to the last kernel answer; "
            "kind is incremental (changed Services only) or full (the whole table).",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self._latency = Histogram(
            "ipvsctl_event_to_kernel_latency_seconds",
            "Time from the API event (Service or EndpointSlice change) reaching the agent "
            "to the kernel having applied the resulting IPVS changes.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._operations = Counter(
            "ipvsctl_netlink_operations",
            "IPVS changes sent to the kernel, by ipvsadm option "
            "(-A -E -D services, -a -e -d real servers) and result (ok or error).",
            ["op", "result"],
            registry=r,
        )
        self._elements = Counter(
            "ipvsctl_netfilter_element_changes",
            "Set elements of ipvsctl's nftables table changed by nft transactions, by op "
            "(add, delete) and result (ok, or error: the whole transaction was refused).",
            ["op", "result"],
            registry=r,
        )
        self._virtual = Gauge(
            "ipvsctl_owned_virtual_servers",
            "IPVS virtual servers ipvsctl owns on this node after the last sync.",
            registry=r,
        )
        self._real = Gauge(
            "ipvsctl_owned_real_servers",
            "Real servers in the virtual servers ipvsctl owns, after the last sync.",
            registry=r,
        )
        self._rejected = Gauge(
            "ipvsctl_rejected_services",
            "Services whose latest version is refused for invalid fields or annotations "
            "(served from their last good version, if they had one; see the logs and the "
            "Services' Events).",
            registry=r,
        )
        self._record_failures = Counter(
            "ipvsctl_nodeport_record_failures",
            "Syncs whose NodePort record could not be written (its new NodePorts held back).",
            registry=r,
        )
        self._watch_restarts = Counter(
            "ipvsctl_watch_restarts",
            "Kubernetes watches restarted, by resource and reason (expired, closed, error, "
            "silent).",
            ["resource", "reason"],
            registry=r,
        )
        self._relists = Counter(
            "ipvsctl_relists",
            "Full lists of a resource from the API server (at start and after an expired watch).",
            ["resource"],
            registry=r,
        )
        self._api_errors = Counter(
            "ipvsctl_api_errors",
            "Failed requests to the Kubernetes API server, by resource.",
            ["resource"],
            registry=r,
        )
        self._last_sync = Gauge(
            "ipvsctl_last_successful_sync_timestamp_seconds",
            "Unix time of the last reconcile that completed without a kernel error "
            "(0 before the first).",
            registry=r,
        )
        # Every fixed label value exists from the start, at zero: rate() only sees
        # an increase on a series that was already there, so the first error counts.
        for op in Op:
            for result in ("ok", "error"):
                self._operations.labels(op=op.value, result=result)
        for kind in ("incremental", "full"):
            self._reconcile.labels(kind=kind)

    def observe_reconcile(self, kind: ReconcileKind, seconds: float) -> None:
        self._reconcile.labels(kind=kind).observe(seconds)

    def observe_latency(self, seconds: float) -> None:
        """One event's time from the API server's word to the kernel's acknowledgement."""
        self._latency.observe(seconds)

    def count_operations(
        self,
        changes: Sequence[IpvsChange],
        failures: Iterable[ChangeFailure | IpvsChange] = (),
    ) -> None:
        """Count `changes` (everything sent) by op: as errors those among `failures`
        (what the kernel refused, as `IpvsKernel.apply` returns it), as ok the rest."""
        sent = Tally(change.op for change in changes)
        failed = Tally((f.change if isinstance(f, ChangeFailure) else f).op for f in failures)
        for op, count in sent.items():
            ok = count - failed[op]
            if ok > 0:
                self._operations.labels(op=op.value, result="ok").inc(ok)
        for op, count in failed.items():
            self._operations.labels(op=op.value, result="error").inc(count)

    def count_element_changes(self, added: int, deleted: int, ok: bool) -> None:
        result = "ok" if ok else "error"
        for op, count in (("add", added), ("delete", deleted)):
            if count:
                self._elements.labels(op=op, result=result).inc(count)

    def set_owned(self, virtual: int, real: int) -> None:
        self._virtual.set(virtual)
        self._real.set(real)

    def set_rejected(self, services: int) -> None:
        self._rejected.set(services)

    def record_write_failed(self) -> None:
        self._record_failures.inc()

    def watch_restarted(self, resource: str, reason: str) -> None:
        self._watch_restarts.labels(resource=resource, reason=reason).inc()

    def relisted(self, resource: str) -> None:
        self._relists.labels(resource=resource).inc()

    def api_error(self, resource: str) -> None:
        self._api_errors.labels(resource=resource).inc()

    def synced(self, at: float) -> None:
        """A reconcile succeeded at `at` (Unix time, seconds)."""
        self._last_sync.set(at)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric, as a scrape sees it."""
        return generate_latest(self.registry)


def serve_metrics(address: str, metrics: AgentMetrics) -> HttpListener:
    """Serve `metrics` on `--metrics-address` (`host:port`, `[v6]:port`, `:port`), any path.

    prometheus_client's own handler answers, so content negotiation
    (OpenMetrics), gzip and `name[]` filters behave as on any exporter.
    Raises ValueError for a malformed address, OSError when it cannot bind.
    """
    try:
        host, port = parse_listen_address(address)
    except ValueError as error:
        raise ValueError(f"--metrics-address: {error}") from None
    handler: type[BaseHTTPRequestHandler] = _MetricsHandler.factory(metrics.registry)
    return HttpListener(host, port, handler)


class _MetricsHandler(MetricsHandler):
    # prometheus_client's handler waits forever for a silent client.
    timeout = REQUEST_TIMEOUT
