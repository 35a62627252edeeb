"""The engine: this node's IPVS table, addresses, NodePort record and netfilter table
kept as the Services want them. `apply -f` seeds it from a file and runs one
full sync; `run` feeds it from the watch, one changed Service at a time.

The engine keeps what each Service wants (translated once per change) and a
copy of the kernel's table. A changed Service is translated again and planned
against the copy of its own virtual servers only, so one endpoint change is
one netlink operation whatever the cluster's size. A full sync (the whole of
`apply`; at the agent's start, and every sync period) dumps the kernel once and
plans everything against it: it adopts what a previous run left (no flush:
counters survive), and repairs drift (`ipvsadm -D`, an unbound address), at
zero operations when there is none. A Service's external or load-balancer address
that holds a virtual server ipvsctl did not create is neither bound nor programmed
(`plan.foreign_addresses`): those virtual servers are withheld, with a warning for
each, until a full sync finds the address free. Graceful termination is `graceful.py`'s;
the netfilter table is kept the same way, element by element
(`netfilter_sync.py`). Everything it changes goes through its ports (`ports.py`).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ipvsctl.kernel import KernelError
from ipvsctl.links import LinkError
from ipvsctl.model.changes import ChangeFailure, IpvsChange, Op
from ipvsctl.model.desired import DesiredState, DesiredVirtualServer, TranslateConfig
from ipvsctl.model.inputs import ObjectError, ObjectKey
from ipvsctl.model.ipvs import ServiceKey
from ipvsctl.plan import (
    AddressConflict,
    NodeFacts,
    Ownership,
    Plan,
    excluded_networks,
    nodeport_keys_to_record,
    plan_ipvs_changes,
    plan_node,
    withhold_foreign_addresses,
    without_foreign_addresses,
)
from ipvsctl.reconcile.carry_out import addresses_to_unbind, carry_out, carry_out_netfilter
from ipvsctl.reconcile.graceful import Drains, UdpFlow, forgotten_udp_flows
from ipvsctl.reconcile.node_facts import read_node_facts
from ipvsctl.reconcile.options import EngineOptions, OptionError
from ipvsctl.reconcile.ports import NodePorts
from ipvsctl.reconcile.table_copy import TableCopy
from ipvsctl.reconcile.wanted_services import ServiceSource, WantedServices
from ipvsctl.state.nodeport_record import NodeportRecord

if TYPE_CHECKING:
    from ipvsctl.netfilter import NetfilterPlan, TableState
    from ipvsctl.reconcile.netfilter_sync import NetfilterSync

ForgetFlow = Callable[[UdpFlow], None]


# What a sync as a whole may fail with: the kernel or a link unusable (a netlink
# socket gone, a /proc/sys file). Anything else is a bug.
SYNC_FAILURES: tuple[type[Exception], ...] = (KernelError, LinkError, OSError)

# Answers that mean the kernel's table is not what the copy says: read it again.
_COPY_MAY_BE_WRONG = frozenset({errno.EEXIST, errno.ENOENT, errno.ESRCH, errno.ENOBUFS})


class SyncReport(NamedTuple):
    """One sync: what was sent, what the kernel refused, other failures (one line each),
    and whether the copy of the table may be wrong (the next sync must be a full one).

    `done` is what was carried out of the plan's link, address and sysctl steps (its
    IPVS changes are `changes`, less `refused`)."""

    changes: tuple[IpvsChange, ...] = ()
    refused: tuple[ChangeFailure, ...] = ()
    problems: tuple[str, ...] = ()
    must_resync: bool = False
    netfilter: NetfilterPlan | None = None  # the table's transaction, when one was sent
    netfilter_refused: bool = False
    done: Plan = Plan()
    record_failed: bool = False  # the NodePort record could not be written (see problems)


class FullPlan(NamedTuple):
    """A full sync's plan, before anything is carried out (what `diff` prints).
    `desired` is what the plan serves: the Services' wants less `conflicts`, the virtual
    servers withheld from addresses that hold foreign ones."""

    plan: Plan
    netfilter: NetfilterPlan | None
    facts: NodeFacts
    desired: DesiredState
    netfilter_unread: str = ""  # why the netfilter table could not be read, if it could not
    conflicts: tuple[AddressConflict, ...] = ()


class NodeEngine:
    """Not thread-safe: one thread (the agent's loop, or `apply`) calls it."""

    def __init__(
        self,
        ports: NodePorts,
        options: EngineOptions,
        services: WantedServices,
        record: NodeportRecord,
        netfilter: NetfilterSync | None = None,
        forget_flow: ForgetFlow | None = None,
        all_or_nothing: bool = False,
    ) -> None:
        self.ports, self.options, self.services = ports, options, services
        self.record = record
        self.netfilter = netfilter  # None: --no-netfilter
        self.forget_flow, self.clock = forget_flow, ports.clock
        # apply: a record that cannot be written before the first change stops it all.
        self.all_or_nothing = all_or_nothing
        self.table = TableCopy()
        self.bound: set[str] = set()
        # Wanted virtual servers not programmed: their address holds foreign ones.
        self.withheld: dict[ServiceKey, AddressConflict] = {}
        self.drains = Drains(options.graceful_period)
        self.excluded = excluded_networks(options.exclude_cidrs)

    # --- what the Services want (see WantedServices) ------------------------------

    @property
    def config(self) -> TranslateConfig:
        return self.services.config

    @property
    def by_key(self) -> dict[ServiceKey, DesiredVirtualServer]:
        return self.services.by_key

    @property
    def rejected(self) -> dict[ObjectKey, tuple[ObjectError, ...]]:
        return self.services.rejected

    @property
    def conflicts(self) -> dict[ObjectKey, tuple[ObjectError, ...]]:
        """One warning per withheld virtual server, by Service: told to the user, while
        the rest of the Service is served (unlike `rejected`)."""
        by_service: dict[ObjectKey, list[ObjectError]] = {}
        for key in sorted(self.withheld):
            error = self.withheld[key].error()
            by_service.setdefault((error.ref.namespace, error.ref.name), []).append(error)
        return {service: tuple(errors) for service, errors in by_service.items()}

    @property
    def warned(self) -> dict[ObjectKey, tuple[ObjectError, ...]]:
        return self.services.warned

    @property
    def real_servers(self) -> int:
        return self.services.real_servers

    def _served(self) -> Mapping[ServiceKey, DesiredVirtualServer]:
        """What the Services want, less the withheld virtual servers."""
        if not self.withheld:
            return self.by_key
        return {key: vs for key, vs in self.by_key.items() if key not in self.withheld}

    def retranslate(self, keys: Iterable[ObjectKey], source: ServiceSource) -> set[ServiceKey]:
        return self.services.retranslate(keys, source)

    def retranslate_all(self, source: ServiceSource, config: TranslateConfig) -> None:
        self.services.retranslate_all(source, config)

    # --- syncs ------------------------------------------------------------------------

    def sync_services(self, affected: Collection[ServiceKey]) -> SyncReport:
        """Carry out what the retranslated Services changed: `affected` virtual servers only,
        planned against the copy of the table (no dump)."""
        addresses = {key.address for key in affected if not key.is_fwmark}
        users = self.services.users
        add = sorted(a for a in addresses if a in users and a not in self.bound)
        delete = sorted(a for a in addresses if a not in users and a in self.bound)
        if delete:
            # Everything on an address we unbind is ours until then (someone's ipvsadm
            # -A on our VIP included): it goes first, or it would be left foreign.
            leaving = set(delete)
            affected = {*affected, *(key for key in self.table.entries if key.address in leaving)}
        wanted = [self.by_key[key] for key in sorted(affected) if key in self.by_key]
        table = self.table.entries
        for key in affected:
            self.withheld.pop(key, None)
        # Judged against the copy: a foreign virtual server made since the last dump is
        # seen by the next full sync only.
        ours = Ownership(frozenset(a for a in addresses if a in self.bound), self.record.keys)
        kept, conflicts = withhold_foreign_addresses(wanted, table, ours)
        if conflicts:
            self.withheld.update((conflict.key, conflict) for conflict in conflicts)
            serving = {vs.key.address for vs in kept if vs.bound}
            left_out = {c.key.address for c in conflicts} - serving
            add = [a for a in add if a not in left_out]
            wanted = list(kept)
        ownership = Ownership(
            bound_addresses=frozenset(a for a in addresses if a in self.bound or a in add),
            nodeport_keys=self.record.keys,
            excluded=self.excluded,
        )
        present = [table[key] for key in affected if key in table]
        # Counts in the copy are old: every TCP leaver drains, and the drain check
        # (with fresh counts) deletes it once idle.
        changes = plan_ipvs_changes(wanted, present, ownership, counts_known=False)
        plan = Plan(
            interface=self.options.interface,
            addresses_add=tuple(add),
            ipvs=changes,
            addresses_del=tuple(delete),
        )
        served = {vs.key: vs for vs in wanted}  # `affected` less the withheld
        netfilter = self.netfilter.plan_changed(affected, served) if self.netfilter else None
        report = self._carry_out(plan, wanted, netfilter)
        self.drains.refresh(table, served, affected, self.clock())
        return report

    def plan_full(self, read_netfilter: bool | TableState = True) -> FullPlan:
        """Dump the kernel once and plan everything against it; changes nothing. The
        netfilter table is planned against a listing only when `read_netfilter` (see
        `netfilter_sync`)."""
        interface = self.options.interface
        sysctls = self.ports.sysctls.wanted(self.options.strict_arp)
        timeouts = self.options.ipvs_timeouts
        facts = read_node_facts(
            self.ports, interface, self.record.keys, sysctls, timeouts=any(timeouts)
        )
        # What we bound at the last sync is still ours if someone has unbound it since:
        # the virtual servers on it are ours to repair, not foreign.
        ours = Ownership(facts.bound_addresses | self.bound, facts.nodeport_keys)
        present = (entry.service.key for entry in facts.virtual_servers)
        desired, conflicts = without_foreign_addresses(self.services.desired(), present, ours)
        plan = plan_node(
            desired,
            facts,
            interface=interface,
            wanted_sysctls=sysctls,
            wanted_timeouts=timeouts,
            excluded=self.excluded,
            expired_drains=self.drains.expired(self.clock()),
        )
        unread, netfilter = "", None
        if self.netfilter is not None:
            # Here, not at the top: --no-netfilter (and apply's start-up) pays for no nft room.
            from ipvsctl.netfilter import NetfilterError

            try:
                netfilter = self.netfilter.plan_all(desired.virtual_servers, read_netfilter)
            except NetfilterError as error:
                unread = str(error)
        return FullPlan(plan, netfilter, facts, desired, unread, conflicts)

    def full_sync(self, read_netfilter: bool | TableState = True) -> SyncReport:
        """`plan_full`, carried out."""
        return self.carry_out_full(self.plan_full(read_netfilter))

    def carry_out_full(self, full: FullPlan) -> SyncReport:
        """Carry a full sync's plan out, and take the dump it was planned on as the copy."""
        plan, facts, desired = full.plan, full.facts, full.desired
        self.table = TableCopy(facts.virtual_servers)
        self.bound = set(facts.bound_addresses)
        self.withheld = {conflict.key: conflict for conflict in full.conflicts}
        report = self._carry_out(plan, desired.virtual_servers, full.netfilter)
        if full.netfilter_unread:  # IPVS goes on; the table waits for the next (repair) sync
            report = report._replace(
                problems=(*report.problems, full.netfilter_unread), must_resync=True
            )
        # Now exactly the desired NodePorts, and those whose delete failed (still ours).
        recorded = nodeport_keys_to_record(desired.virtual_servers) | {
            key for key in self.record.keys if key in self.table
        }
        if recorded != self.record.keys and (problem := self.record.write(recorded)):
            if problem not in report.problems:
                report = report._replace(problems=(*report.problems, problem))
            report = report._replace(record_failed=True)
        table = self.table.entries
        self.drains.refresh(table, self._served(), {*table, *self.drains.since}, self.clock())
        return report

    def check_drains(self) -> SyncReport:
        """Delete the drained real servers that are idle or past the grace period, with
        fresh counts of the virtual servers that have some (one dump each)."""
        keys = self.drains.services()
        table = self.table.entries
        for key in keys:
            entry = table.get(key)
            if entry is not None:
                fresh = tuple(self.ports.ipvs.real_servers(key))
                table[key] = entry._replace(real_servers=fresh)
        ownership = Ownership(
            bound_addresses=frozenset(k.address for k in keys if k.address in self.bound),
            nodeport_keys=self.record.keys,
            excluded=self.excluded,
        )
        withheld = self.withheld
        wanted = [self.by_key[k] for k in sorted(keys) if k in self.by_key and k not in withheld]
        present = [table[key] for key in keys if key in table]
        changes = plan_ipvs_changes(
            wanted, present, ownership, expired_drains=self.drains.expired(self.clock())
        )
        report = self._carry_out(Plan(interface=self.options.interface, ipvs=changes), wanted)
        self.drains.refresh(table, self.by_key, keys, self.clock())
        return report

    # --- carrying a plan out ----------------------------------------------------------

    def _carry_out(
        self,
        plan: Plan,
        wanted: Sequence[DesiredVirtualServer],
        netfilter: NetfilterPlan | None = None,
    ) -> SyncReport:
        """Carry the plans out: the NodePort record first (`_record_nodeports`), then the
        netfilter table, then the rest (`_carry_out_ipvs`)."""
        nft = self.ports.nft
        send_netfilter = netfilter is not None and nft is not None and not netfilter.is_empty
        if plan.is_empty and not send_netfilter:
            return SyncReport()
        plan, record_problem = self._record_nodeports(plan, wanted)
        if send_netfilter:
            assert netfilter is not None and nft is not None
            problem = carry_out_netfilter(netfilter, nft)
            report = self._carry_out_ipvs(plan)
            # A refused transaction leaves the tally ahead of the table: a full sync reads
            # it (a repair).
            report = report._replace(netfilter=netfilter, netfilter_refused=bool(problem))
            report = self._with_problem(report, problem, resync=True)
        else:
            report = self._carry_out_ipvs(plan)
        # NodePorts held back for the record need no repair (the copy of the table is
        # right): the next full sync writes the record and adds them.
        report = self._with_problem(report, record_problem, resync=False)
        return report._replace(record_failed=bool(record_problem))

    def _record_nodeports(
        self, plan: Plan, wanted: Sequence[DesiredVirtualServer]
    ) -> tuple[Plan, str]:
        """Record the NodePorts about to be added before the first change, so a crash
        half-way still knows them ours. A record that cannot be written holds back those
        NodePorts alone (the plan less their changes, and a problem line): every other
        Service is still programmed. `all_or_nothing` (apply) writes it whatever the
        plan adds, and a failure stops everything (OptionError, exit 2)."""
        nodeports = nodeport_keys_to_record(wanted)
        if nodeports <= self.record.keys and not self.all_or_nothing:
            return plan, ""
        problem = self.record.write(self.record.keys | nodeports)
        if not problem:
            return plan, ""
        if self.all_or_nothing:
            raise OptionError(problem)
        unrecorded = nodeports - self.record.keys
        going_ahead = tuple(c for c in plan.ipvs if c.service.key not in unrecorded)
        return plan._replace(ipvs=going_ahead), problem

    @staticmethod
    def _with_problem(report: SyncReport, problem: str, resync: bool) -> SyncReport:
        if not problem:
            return report
        return report._replace(
            problems=(problem, *report.problems), must_resync=report.must_resync or resync
        )

    def _carry_out_ipvs(self, plan: Plan) -> SyncReport:
        """Carry the plan out as `apply` does (interface and addresses, sysctls, IPVS, then
        address removals), keeping the copy of the table, the bound addresses and the
        NodePort record in step with what the kernel accepted."""
        if plan.is_empty:
            return SyncReport()
        table = self.table.entries
        before = {c.service.key: table[c.service.key] for c in plan.ipvs if c.service.key in table}
        done, refused, link_problems = carry_out(plan, self.ports)
        problems = list(link_problems)
        refused_ids = {id(failure.change) for failure in refused}
        accepted = [change for change in plan.ipvs if id(change) not in refused_ids]
        copy_agrees = self.table.apply_accepted(accepted)
        self.bound |= set(done.addresses_add)
        self.bound -= set(done.addresses_del)
        # A refused -D keeps its key recorded (carry_out keeps its address), so a later
        # sync deletes it rather than losing it.
        gone = {c.service.key for c in accepted if c.op is Op.DELETE_SERVICE}
        if gone & self.record.keys:
            problem = self.record.write(self.record.keys - gone)
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
        resync = (
            links_failed
            or not copy_agrees
            or any(failure.errno in _COPY_MAY_BE_WRONG for failure in refused)
        )
        return SyncReport(tuple(plan.ipvs), tuple(refused), tuple(problems), resync, done=done)
