"""`ipvsctl run`: the node agent's life, from the first list to SIGTERM.

Start: watch Services, EndpointSlices and this Node; wait until each has been
listed completely (a restart must never remove Services that simply have not
been listed yet); adopt the kernel's table with one full sync. Then one loop,
one thread: take the Services that changed (bursts fold into one sync, at most
one in flight, none sooner than --min-sync-period after the last), sync them;
a full sync every --sync-period; the drain check every few seconds while real
servers drain. The netfilter table (unless --no-netfilter) goes with each sync.
SIGTERM ends the loop and leaves the kernel as it is.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ipvsctl.agent.cluster_cache import SERVICE, Changes, ClusterCache
from ipvsctl.agent.healthcheck.proxy_health import SyncHealth, serve_healthz
from ipvsctl.agent.healthcheck.service_health import HealthCheckPorts
from ipvsctl.agent.healthcheck.service_ports import HealthPortTable
from ipvsctl.agent.logs import configure_logging, event
from ipvsctl.agent.metrics import AgentMetrics, serve_metrics
from ipvsctl.agent.rejections import Rejections
from ipvsctl.agent.sync_schedule import SyncSchedule
from ipvsctl.model.desired import TranslateConfig
from ipvsctl.model.inputs import ObjectKey
from ipvsctl.reconcile.engine import SYNC_FAILURES, NodeEngine, SyncReport
from ipvsctl.reconcile.graceful import UdpFlow
from ipvsctl.reconcile.netfilter_sync import READ_PERIOD, NetfilterSync, table_left_in_force
from ipvsctl.reconcile.options import (
    EngineOptions,
    check_options,
    netfilter_options,
    nodeport_addresses,
    translate_config,
)
from ipvsctl.reconcile.ports import HOST, NodeAccess, NodePorts, forget_udp_flow
from ipvsctl.reconcile.wanted_services import WantedServices
from ipvsctl.sources.api.client import api_client
from ipvsctl.sources.api.watch import ReflectorHooks, WatchSettings, cluster_reflectors
from ipvsctl.state.nodeport_record import NodeportRecord

log = logging.getLogger("ipvsctl.agent")


class AgentOptions(NamedTuple):
    """`run`'s flags: the engine's (shared with `apply`), then the shell's own."""

    engine: EngineOptions = EngineOptions()
    kubeconfig: str | None = None
    sync_period: float = 30.0
    min_sync_period: float = 0.0
    log_format: str = "text"
    metrics_address: str = "127.0.0.1:10249"
    healthz_address: str = "0.0.0.0:10256"
    api_idle_timeout: float = 120.0  # a watch silent this long is started again


class Agent:
    """The loop and what it drives; `run` until `stop` is set."""

    def __init__(
        self, options: AgentOptions, stop: threading.Event, node: NodeAccess = HOST
    ) -> None:
        self.options, self.stop, self.node = options, stop, node
        self.metrics = AgentMetrics()
        self.cache = ClusterCache()
        self.offered = node.schedulers() or frozenset()
        self.engine_options = check_options(options.engine, self.offered)
        # Before anything is watched or changed: a kernel that cannot hold the table
        # stops the agent with one line naming --no-netfilter.
        self.netfilter: NetfilterSync | None = None
        if self.engine_options.netfilter:
            self.netfilter = NetfilterSync(
                node.nft(), netfilter_options(self.engine_options, frozenset())
            )
            self.netfilter.check()
        elif table_left_in_force(node.nft()):
            # --no-netfilter writes nothing, so a table an earlier run made stays in force
            # (its port filter and source ranges no longer follow the Services).
            event(
                log,
                "--no-netfilter: an earlier run's table is still in force; "
                "`nft delete table inet ipvsctl` removes it",
                level=logging.WARNING,
            )
        self.client = api_client(options.kubeconfig)
        node_name = options.engine.node_name
        self.rejections = Rejections(self.client, node_name, self.metrics)
        hooks = ReflectorHooks(
            on_watch_restart=self.metrics.watch_restarted,
            on_relist=self.metrics.relisted,
            on_api_error=self.metrics.api_error,
            on_reconnect=self.cache.reconnected,
        )
        settings = WatchSettings(idle_timeout=options.api_idle_timeout)
        self.reflectors = cluster_reflectors(
            self.client, node_name, self.cache, stop, hooks, settings
        )
        self.health = SyncHealth(
            options.sync_period, stale=lambda: any(r.stale for r in self.reflectors)
        )
        # kube-proxy serves them on the --nodeport-addresses addresses, else on all.
        bind: tuple[str, ...] = ()
        if self.engine_options.nodeport_cidrs:
            local = node.addresses(self.engine_options.interface)
            bind = nodeport_addresses(self.engine_options, local)
        self.health_ports = HealthCheckPorts(self.health.is_healthy, bind)
        self.health_table = HealthPortTable()
        self.listeners = [
            serve_metrics(options.metrics_address, self.metrics),
            serve_healthz(options.healthz_address, self.health),
        ]
        self.problems: frozenset[str] = frozenset()  # told already: each is logged once
        self.waiting: dict[ObjectKey, float] = {}  # changes a repair sync has yet to land
        self.netfilter_read = 0.0  # when a full sync last read the netfilter table

    def run(self) -> int:
        # The loop may be waiting for a change: a stop must end that wait at once.
        threading.Thread(target=self._wake_on_stop, name="stop", daemon=True).start()
        try:
            for reflector in self.reflectors:
                reflector.start()
            if not self._wait_for_lists():
                return 0
            with self.node.open_ports(False) as ports:
                # The nft port is the one `check` read at start.
                nft = self.netfilter.nft if self.netfilter is not None else None
                self._loop(self._engine(ports._replace(nft=nft)))
            return 0
        finally:
            self.cache.wake()
            self.health_ports.close()
            for listener in self.listeners:
                listener.close()

    def _wake_on_stop(self) -> None:
        self.stop.wait()
        self.cache.wake()

    def _wait_for_lists(self) -> bool:
        """Until every first list is complete, and (when NodePorts follow it) this Node is
        known: planning without it would delete every NodePort we serve."""
        event(log, "waiting for the first list", resources=len(self.reflectors))
        for reflector in self.reflectors:
            while not reflector.synced.wait(0.2):
                if self.stop.is_set():
                    return False
        told = False
        while not self.options.engine.nodeport_cidrs and self.cache.node is None:
            if not told:
                event(
                    log,
                    "waiting for this node's Node object",
                    level=logging.WARNING,
                    node=self.options.engine.node_name,
                )
                told = True
            if self.stop.wait(0.2):
                return False
        return not self.stop.is_set()

    def _config(self) -> TranslateConfig:
        local = self.node.addresses(self.engine_options.interface)
        return translate_config(self.engine_options, self.cache.node, local, self.offered)

    def _engine(self, ports: NodePorts) -> NodeEngine:
        config = self._config()
        if self.netfilter is not None:
            self.netfilter.set_node_addresses(config.local_addresses)
        return NodeEngine(
            ports,
            self.engine_options,
            WantedServices(config),
            NodeportRecord(),
            self.netfilter,
            forget_flow=_forget_udp_flow,
        )

    def _loop(self, engine: NodeEngine) -> None:
        options = self.options
        # Marks are dropped before everything is translated, not after: a change that
        # arrives meanwhile is marked again, and synced by the loop.
        self.rejections.report_malformed(self.cache.take_changes(0).invalid)
        engine.retranslate_all(self.cache, engine.config)
        self._serve_health_ports(engine, None)
        schedule = SyncSchedule(
            options.sync_period,
            options.min_sync_period,
            started_ok=self._full_sync(engine, "start"),
            clock=engine.clock,
        )
        while not self.stop.is_set():
            changes = self.cache.take_changes(schedule.timeout(bool(engine.drains)))
            if self.stop.is_set():
                break
            if not changes.empty and schedule.folds:
                changes = self._fold(changes, schedule)
            self.rejections.report_malformed(changes.invalid)
            if changes.node and self._reconfigure(engine):
                schedule.node_changed()
            if changes.reconnected:
                schedule.full_now()
            if changes.services:
                schedule.sync_starts()
                if schedule.repairing:  # translated now, carried out by the repair sync
                    engine.retranslate(changes.services, self.cache)
                    self.waiting = {**changes.services, **self.waiting}
                else:
                    schedule.incremental_done(self._sync_services(engine, changes.services))
                self._serve_health_ports(engine, changes.services)
            if schedule.full_due():
                schedule.sync_starts()
                repair = schedule.repairing or self._reconfigure(engine)
                schedule.full_done(self._full_sync(engine, "repair" if repair else "period"))
            if schedule.drain_due(bool(engine.drains)):
                healthy = not schedule.repairing
                drained = self._run_sync(engine, engine.check_drains, "drains", healthy)
                schedule.drain_done(drained is not None and not drained.must_resync)
        event(log, "stopping; the kernel's table is left as it is")

    def _reconfigure(self, engine: NodeEngine) -> bool:
        """Read this node's addresses and Node again; True (all translated anew) when the
        translation depends on something that changed."""
        config = self._config()
        if config == engine.config:
            return False
        event(log, "node changed; translating every Service again")
        if engine.netfilter is not None:
            engine.netfilter.set_node_addresses(config.local_addresses)
        engine.retranslate_all(self.cache, config)
        self._serve_health_ports(engine, None)
        return True

    def _fold(self, changes: Changes, schedule: SyncSchedule) -> Changes:
        """Wait out --min-sync-period, folding the changes that arrive meanwhile."""
        while (wait := schedule.fold_wait()) > 0 and not self.stop.is_set():
            self.stop.wait(wait)
        more = self.cache.take_changes(0)
        services = dict(more.services)
        services.update(changes.services)  # the earlier arrival time stands
        return Changes(
            services,
            changes.node or more.node,
            changes.invalid + more.invalid,
            changes.reconnected or more.reconnected,
        )

    def _sync_services(self, engine: NodeEngine, services: dict[ObjectKey, float]) -> bool:
        started = time.monotonic()
        affected = engine.retranslate(services, self.cache)
        report = self._run_sync(engine, lambda: engine.sync_services(affected), "incremental")
        done = time.monotonic()
        ok = report is not None and not report.must_resync
        if ok:
            self._observe_latency(services, done)
        else:
            self.waiting = {**services, **self.waiting}
        if report is not None:
            latency = max(done - arrived for arrived in services.values())
            event(
                log,
                "synced",
                sync="incremental",
                services=len(services),
                operations=len(report.changes),
                nft_elements=_elements(report),
                latency_ms=round(latency * 1000, 3),
            )
        self.metrics.observe_reconcile("incremental", done - started)
        self._report_services(engine)
        return ok

    def _full_sync(self, engine: NodeEngine, why: str) -> bool:
        started = time.monotonic()
        # The table is read at start, on repairs and hourly; other periods trust the tally.
        read = why != "period" or time.monotonic() - self.netfilter_read >= READ_PERIOD
        if read:
            self.netfilter_read = time.monotonic()
        report = self._run_sync(engine, lambda: engine.full_sync(read), f"full ({why})")
        # The cache, the desired state and the table copy are a million long-lived,
        # acyclic objects (10,000 Services): without this, the cyclic collector
        # walks them all again and again while the next dump allocates.
        # Refcounting still frees them when they are replaced.
        gc.freeze()
        done = time.monotonic()
        ok = report is not None and not report.must_resync
        if report is not None and (report.changes or report.netfilter or why == "start"):
            event(
                log,
                "synced",
                sync="full",
                why=why,
                operations=len(report.changes),
                nft_elements=_elements(report),
            )
        if ok and self.waiting:
            self._observe_latency(self.waiting, done)
            self.waiting = {}
        self.metrics.observe_reconcile("full", done - started)
        self._report_services(engine)
        return ok

    def _report_services(self, engine: NodeEngine) -> None:
        malformed = self.cache.malformed(SERVICE)
        self.rejections.report_services(engine.rejected, malformed, engine.conflicts)
        self.rejections.report_warnings(engine.warned)

    def _observe_latency(self, arrivals: dict[ObjectKey, float], done: float) -> None:
        for arrived in arrivals.values():
            self.metrics.observe_latency(done - arrived)

    def _run_sync(
        self,
        engine: NodeEngine,
        sync: Callable[[], SyncReport],
        what: str,
        may_be_healthy: bool = True,
    ) -> SyncReport | None:
        """Run one sync; None when it failed as a whole (logged)."""
        try:
            report = sync()
        except SYNC_FAILURES as error:
            event(log, "sync failed", level=logging.ERROR, sync=what, error=str(error))
            return None
        self.metrics.count_operations(report.changes, report.refused)
        if report.record_failed:
            self.metrics.record_write_failed()
        if report.netfilter is not None:
            changes = report.netfilter.changes
            self.metrics.count_element_changes(
                len(changes.add), len(changes.delete), not report.netfilter_refused
            )
        for failure in report.refused:
            event(log, "change refused", level=logging.WARNING, change=str(failure))
        for problem in set(report.problems) - self.problems:
            event(log, "sync problem", level=logging.WARNING, problem=problem)
        if what.startswith("full"):
            self.problems = frozenset(report.problems)
        virtual, real = len(engine.by_key), engine.real_servers
        self.metrics.set_owned(virtual, real)
        # Healthy means in step with the API server too: while a watch fails, the
        # kernel is only as new as the last change seen (healthz turns 503 after
        # 2 x --sync-period of that, as the contract asks).
        healthy = may_be_healthy and not report.must_resync
        if healthy and not any(r.failing for r in self.reflectors):
            self.health.record_sync(virtual=virtual, real=real)
            self.metrics.synced(time.time())
        return report

    def _serve_health_ports(self, engine: NodeEngine, changed: Iterable[ObjectKey] | None) -> None:
        ports = self.health_table.update(self.cache, engine.config.node_name, changed)
        self.health_ports.sync(ports)


def _elements(report: SyncReport) -> int:
    """Set elements the sync's nft transaction added or deleted (0: none was sent)."""
    if report.netfilter is None:
        return 0
    return len(report.netfilter.changes.add) + len(report.netfilter.changes.delete)


def _forget_udp_flow(flow: UdpFlow) -> None:
    try:
        forget_udp_flow(*flow)
    except Exception as error:  # a courtesy to clients: never worth the agent's life
        event(log, "conntrack cleanup failed", level=logging.WARNING, error=str(error))


def run_agent(options: AgentOptions, stop: threading.Event) -> int:
    configure_logging(options.log_format)
    agent = Agent(options, stop)
    return agent.run()
