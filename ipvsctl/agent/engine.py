"""The agent's reconcile: this node's IPVS table, addresses and NodePort record kept
as the cached Services want them, one changed Service at a time.

The engine keeps what each Service wants (translated once per change) and a
copy of the kernel's table. A changed Service is translated again and planned
against the copy of its own virtual servers only, so one endpoint change is
one netlink operation whatever the cluster's size. A full sync (at start, and
every sync period) dumps the kernel once and plans everything against it: it
adopts what a previous run left (no flush: counters survive), and repairs
drift (`ipvsadm -D`, an unbound address), at zero operations when there is
none. Graceful termination is `graceful.py`'s; the netfilter table is kept the
same way, element by element (`netfilter_sync.py`).
"""

from __future__ import annotations

import errno
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ipvsctl.agent.cluster_cache import ClusterCache, ObjectKey
from ipvsctl.agent.graceful import Drains, UdpFlow, forgotten_udp_flows
from ipvsctl.kernel import IpvsKernel
from ipvsctl.links import (
    DummyInterface,
    read_sysctls,
    running_kernel,
    wanted_sysctls,
)
from ipvsctl.model.changes import ChangeFailure, IpvsChange, Op
from ipvsctl.model.desired import DesiredState, DesiredVirtualServer, TranslateConfig
from ipvsctl.model.inputs import ObjectError, Service
from ipvsctl.model.ipvs import ServiceKey, VirtualServerEntry
from ipvsctl.netfilter.nft import NetfilterError
from ipvsctl.plan import NodeFacts, Ownership, Plan, plan_ipvs_changes, plan_node
from ipvsctl.plan.table_copy import apply_to_copy
from ipvsctl.reconcile.node_reconcile import (
    addresses_to_unbind,
    carry_out,
    carry_out_netfilter,
    check_interface,
)
from ipvsctl.state.nodeport_record import (
    lock_record,
    read_nodeports,
    record_path,
    write_nodeports,
)
from ipvsctl.translate import conflict_error, translate_service

if TYPE_CHECKING:
    from ipvsctl.agent.netfilter_sync import NetfilterSync
    from ipvsctl.netfilter import NetfilterPlan

ForgetFlow = Callable[[UdpFlow], None]


# Answers that mean the kernel's table is not what the copy says: read it again.
_COPY_MAY_BE_WRONG = frozenset({errno.EEXIST, errno.ENOENT, errno.ESRCH, errno.ENOBUFS})


class EngineSettings(NamedTuple):
    interface: str = "kube-ipvs0"
    strict_arp: bool = False
    graceful_period: float = 900.0


class SyncReport(NamedTuple):
    """One sync: what was sent, what the kernel refused, other failures (one line each),
    and whether the copy of the table may be wrong (the next sync must be a full one)."""

    changes: tuple[IpvsChange, ...] = ()
    refused: tuple[ChangeFailure, ...] = ()
    problems: tuple[str, ...] = ()
    must_resync: bool = False
    netfilter: NetfilterPlan | None = None  # the table's transaction, when one was sent
    netfilter_refused: bool = False


class NodeEngine:
    """Not thread-safe: one thread (the agent's loop) calls it."""

    def __init__(
        self,
        kernel: IpvsKernel,
        links: DummyInterface,
        settings: EngineSettings,
        config: TranslateConfig,
        forget_flow: ForgetFlow | None = None,
        clock: Callable[[], float] = time.monotonic,
        record: Path | None = None,
        netfilter: NetfilterSync | None = None,
    ) -> None:
        self.kernel, self.links, self.settings, self.config = kernel, links, settings, config
        self.netfilter = netfilter  # None: --no-netfilter
        self.forget_flow, self.clock = forget_flow, clock
        self.wanted: dict[ObjectKey, tuple[DesiredVirtualServer, ...]] = {}
        self.by_key: dict[ServiceKey, DesiredVirtualServer] = {}
        self.owner: dict[ServiceKey, ObjectKey] = {}
        self.waiting: dict[ServiceKey, set[ObjectKey]] = {}  # refused a key someone else has
        self.rejected: dict[ObjectKey, tuple[ObjectError, ...]] = {}
        self.users: Counter[str] = Counter()  # bound address -> virtual servers on it
        self.real_servers = 0
        self.table: dict[ServiceKey, VirtualServerEntry] = {}
        self.bound: set[str] = set()
        self.record = record or record_path()
        self.recorded: frozenset[ServiceKey] = read_nodeports(self.record)
        self.drains = Drains(settings.graceful_period)

    # --- what the Services want -----------------------------------------------------

    def retranslate(self, keys: Iterable[ObjectKey], cache: ClusterCache) -> set[ServiceKey]:
        """Translate the Services `keys` again; the virtual server keys that may change.

        A Service refused a key another one has is translated again once that
        key is free.
        """
        affected: set[ServiceKey] = set()
        queue = deque(sorted(set(keys)))
        while queue:
            key = queue.popleft()
            # A waiter is translated again even if it was already: each requeue follows
            # a real release of a key, so this ends.
            queue.extend(sorted(self._translate_one(key, cache.services.get(key), cache, affected)))
        return affected

    def _translate_one(
        self,
        key: ObjectKey,
        service: Service | None,
        cache: ClusterCache,
        affected: set[ServiceKey],
    ) -> set[ObjectKey]:
        servers: tuple[DesiredVirtualServer, ...] = ()
        errors: list[ObjectError] = []
        if service is not None:
            translated, problems = translate_service(service, cache.slices_of(key), self.config)
            errors.extend(problems)
            kept = []
            for server in translated:
                owner = self.owner.get(server.key, key)
                if owner == key:
                    kept.append(server)
                else:
                    errors.append(conflict_error(service, server.key, "/".join(owner)))
                    self.waiting.setdefault(server.key, set()).add(key)
            servers = tuple(kept)
        if errors:
            self.rejected[key] = tuple(errors)
        else:
            self.rejected.pop(key, None)
        old = self.wanted.pop(key, ())
        kept_keys = {server.key for server in servers}
        freed: set[ObjectKey] = set()
        for server in old:
            affected.add(server.key)
            del self.by_key[server.key], self.owner[server.key]
            self._count(server, -1)
            if server.key not in kept_keys:  # released: whoever waits for it may have it
                freed |= self.waiting.pop(server.key, set())
        for server in servers:
            affected.add(server.key)
            self.by_key[server.key] = server
            self.owner[server.key] = key
            self._count(server, +1)
        if servers:
            self.wanted[key] = servers
        return freed

    def _count(self, server: DesiredVirtualServer, step: int) -> None:
        self.real_servers += step * len(server.real_servers)
        if server.bound:
            self.users[server.key.address] += step
            if self.users[server.key.address] <= 0:
                del self.users[server.key.address]

    def retranslate_all(self, cache: ClusterCache, config: TranslateConfig) -> None:
        """Start over with `config` (this node's addresses or zone changed)."""
        self.config = config
        self.wanted.clear()
        self.by_key.clear()
        self.owner.clear()
        self.waiting.clear()
        self.rejected.clear()
        self.users.clear()
        self.real_servers = 0
        self.retranslate(list(cache.services), cache)

    # --- syncs ------------------------------------------------------------------------

    def sync_services(self, affected: Collection[ServiceKey]) -> SyncReport:
        """Carry out what the retranslated Services changed: `affected` virtual servers only,
        planned against the copy of the table (no dump)."""
        addresses = {key.address for key in affected if not key.is_fwmark}
        add = sorted(a for a in addresses if a in self.users and a not in self.bound)
        delete = sorted(a for a in addresses if a not in self.users and a in self.bound)
        if delete:
            # Everything on an address we unbind is ours until then (someone's ipvsadm
            # -A on our VIP included): it goes first, or it would be left foreign.
            leaving = set(delete)
            affected = {*affected, *(key for key in self.table if key.address in leaving)}
        ownership = Ownership(
            bound_addresses=frozenset(a for a in addresses if a in self.bound or a in add),
            nodeport_keys=self.recorded,
        )
        wanted = [self.by_key[key] for key in sorted(affected) if key in self.by_key]
        present = [self.table[key] for key in affected if key in self.table]
        # Counts in the copy are old: every TCP leaver drains, and the drain check
        # (with fresh counts) deletes it once idle.
        changes = plan_ipvs_changes(wanted, present, ownership, counts_known=False)
        plan = Plan(
            interface=self.settings.interface,
            addresses_add=tuple(add),
            ipvs=changes,
            addresses_del=tuple(delete),
        )
        netfilter = self.netfilter.plan_changed(affected, self.by_key) if self.netfilter else None
        report = self._carry_out(plan, wanted, netfilter)
        self.drains.refresh(self.table, self.by_key, affected, self.clock())
        return report

    def full_sync(self, read_netfilter: bool = True) -> SyncReport:
        """Dump the kernel once, plan everything against it, carry it out. The netfilter
        table is planned against a listing only when `read_netfilter` (see
        `netfilter_sync`)."""
        dump = self.kernel.services()
        interface = self.settings.interface
        exists = check_interface(self.links, interface)
        sysctls = wanted_sysctls(self.settings.strict_arp, running_kernel())
        facts = NodeFacts(
            virtual_servers=dump,
            bound_addresses=self.links.bound_addresses(interface) if exists else frozenset(),
            nodeport_keys=self.recorded,
            interface_exists=exists,
            sysctls=read_sysctls(sysctls),
        )
        desired = DesiredState(tuple(self.by_key.values()), frozenset(self.users))
        plan = plan_node(
            desired,
            facts,
            interface=interface,
            wanted_sysctls=sysctls,
            expired_drains=self.drains.expired(self.clock()),
        )
        unread, netfilter = "", None
        if self.netfilter is not None:
            try:
                netfilter = self.netfilter.plan_all(desired.virtual_servers, read_netfilter)
            except NetfilterError as error:
                unread = str(error)
        self.table = {entry.service.key: entry for entry in dump}
        self.bound = set(facts.bound_addresses)
        report = self._carry_out(plan, desired.virtual_servers, netfilter)
        if unread:  # IPVS goes on; the table waits for the next (repair) sync
            report = report._replace(problems=(*report.problems, unread), must_resync=True)
        # Now exactly the desired NodePorts, and those whose delete failed (still ours).
        nodeports = {vs.key for vs in desired.virtual_servers if not vs.bound or vs.key.is_fwmark}
        recorded = frozenset(nodeports | {key for key in self.recorded if key in self.table})
        if recorded != self.recorded and (problem := self._write_record(recorded)):
            report = report._replace(problems=(*report.problems, problem))
        self.drains.refresh(
            self.table, self.by_key, {*self.table, *self.drains.since}, self.clock()
        )
        return report

    def check_drains(self) -> SyncReport:
        """Delete the drained real servers that are idle or past the grace period, with
        fresh counts of the virtual servers that have some (one dump each)."""
        keys = self.drains.services()
        for key in keys:
            entry = self.table.get(key)
            if entry is not None:
                fresh = self.kernel.real_servers(key)
                self.table[key] = entry._replace(real_servers=fresh)
        ownership = Ownership(
            bound_addresses=frozenset(k.address for k in keys if k.address in self.bound),
            nodeport_keys=self.recorded,
        )
        wanted = [self.by_key[key] for key in sorted(keys) if key in self.by_key]
        present = [self.table[key] for key in keys if key in self.table]
        changes = plan_ipvs_changes(
            wanted, present, ownership, expired_drains=self.drains.expired(self.clock())
        )
        report = self._carry_out_ipvs(Plan(interface=self.settings.interface, ipvs=changes), wanted)
        self.drains.refresh(self.table, self.by_key, keys, self.clock())
        return report

    # --- carrying a plan out ----------------------------------------------------------

    def _carry_out(
        self,
        plan: Plan,
        wanted: Sequence[DesiredVirtualServer],
        netfilter: NetfilterPlan | None,
    ) -> SyncReport:
        """Carry the plans out as `apply` does: the netfilter table, then the rest
        (`_carry_out_ipvs`)."""
        if netfilter is None or self.netfilter is None or netfilter.is_empty:
            return self._carry_out_ipvs(plan, wanted)
        problem = carry_out_netfilter(netfilter, self.netfilter.nft)
        report = self._carry_out_ipvs(plan, wanted)
        # A refused transaction leaves the tally ahead of the table: a full sync reads it.
        return report._replace(
            problems=(problem, *report.problems) if problem else report.problems,
            must_resync=report.must_resync or bool(problem),
            netfilter=netfilter,
            netfilter_refused=bool(problem),
        )

    def _carry_out_ipvs(self, plan: Plan, wanted: Sequence[DesiredVirtualServer]) -> SyncReport:
        """Carry the plan out as `apply` does (interface and addresses, sysctls, IPVS, then
        address removals), keeping the copy of the table, the bound addresses and the
        NodePort record in step with what the kernel accepted."""
        if plan.is_empty:
            return SyncReport()
        # Recorded before the first change, so a crash half-way still knows them ours;
        # a record that cannot be written stops everything, as with `apply`.
        nodeports = {vs.key for vs in wanted if not vs.bound or vs.key.is_fwmark}
        if not nodeports <= self.recorded:
            problem = self._write_record(self.recorded | nodeports)
            if problem:
                return SyncReport(problems=(problem,), must_resync=True)
        before = {
            c.service.key: self.table[c.service.key]
            for c in plan.ipvs
            if c.service.key in self.table
        }
        done, refused, link_problems = carry_out(plan, self.kernel, self.links)
        problems = list(link_problems)
        refused_ids = {id(failure.change) for failure in refused}
        accepted = [change for change in plan.ipvs if id(change) not in refused_ids]
        apply_to_copy(self.table, accepted)
        self.bound |= set(done.addresses_add)
        self.bound -= set(done.addresses_del)
        # A refused -D keeps its key recorded (carry_out keeps its address), so a later
        # sync deletes it rather than losing it.
        gone = {c.service.key for c in accepted if c.op is Op.DELETE_SERVICE}
        if gone & self.recorded:
            problem = self._write_record(self.recorded - gone)
            problems += [problem] if problem else []
        if self.forget_flow is not None:
            for flow in forgotten_udp_flows(accepted, before):
                self.forget_flow(flow)
        # Addresses that could not be bound or unbound need the next full sync; so does
        # the copy of the table when the kernel's answer says it may be wrong (a refusal
        # is otherwise left out of the copy, which stays right).
        links_failed = (done.create_interface, done.addresses_add) != (
            plan.create_interface,
            plan.addresses_add,
        ) or done.addresses_del != addresses_to_unbind(plan, refused)
        resync = links_failed or any(failure.errno in _COPY_MAY_BE_WRONG for failure in refused)
        return SyncReport(tuple(plan.ipvs), tuple(refused), tuple(problems), resync)

    def _write_record(self, keys: frozenset[ServiceKey]) -> str:
        """Rewrite the NodePort record (under its lock, as `apply` does); a problem, or ""."""
        try:
            with lock_record(self.record):
                write_nodeports(self.record, keys)
        except OSError as error:
            return f"NodePort record {self.record}: {error.strerror or error}"
        self.recorded = keys
        return ""
