"""One reconcile of this node: validate, read, plan, apply.

Nothing is changed until every input is valid, and then only what the plan
says, in its order (see `ipvsctl.plan.node_plan`). The NodePort record is
written before the plan runs, listing the keys already recorded and those
about to be added, so that a crash half-way still knows them for ours; after
the plan it lists exactly the desired ones (and any whose delete failed).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ipvsctl.kernel import IpvsKernel
from ipvsctl.kernel.schedulers import available_schedulers
from ipvsctl.links import (
    DUMMY_KIND,
    DummyInterface,
    LinkError,
    addresses_in_cidrs,
    node_addresses,
    read_sysctls,
    running_kernel,
    wanted_sysctls,
    write_sysctl,
)
from ipvsctl.model import ServiceKey
from ipvsctl.model.changes import ChangeFailure, Op
from ipvsctl.model.desired import DesiredState, TranslateConfig
from ipvsctl.model.inputs import Inputs, ObjectError
from ipvsctl.plan import NodeFacts, Plan, nodeport_keys_to_record, plan_node
from ipvsctl.render.plan_lines import change_line
from ipvsctl.state.nodeport_record import (
    lock_record,
    read_nodeports,
    record_path,
    write_nodeports,
)
from ipvsctl.translate import scheduler_problem, translate

if TYPE_CHECKING:
    from ipvsctl.netfilter import NetfilterPlan, NftTable, TableState


class OptionError(ValueError):
    """A command-line value that cannot be used: names the flag."""


class EngineOptions(NamedTuple):
    """The command-line settings one reconcile depends on."""

    node_name: str = ""
    scheduler: str = "rr"
    interface: str = "kube-ipvs0"
    nodeport_cidrs: tuple[str, ...] = ()
    strict_arp: bool = False
    netfilter: bool = True  # False: --no-netfilter, no table is read or written
    cluster_cidrs: tuple[str, ...] = ()  # --cluster-cidr as given (parse_cluster_cidrs)
    masquerade_all: bool = False


class Outcome(NamedTuple):
    """What was done (the whole plan on a dry run; without the refused changes
    otherwise), the input problems that stopped it before anything changed,
    and one line per change the kernel refused. `netfilter` is the table's part
    (None: --no-netfilter, or its transaction was refused); `notes` are said on
    stderr and change nothing."""

    plan: Plan
    errors: tuple[ObjectError, ...] = ()
    failures: tuple[str, ...] = ()
    netfilter: NetfilterPlan | None = None
    notes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.plan.is_empty and (self.netfilter is None or self.netfilter.is_empty)


def check_options(options: EngineOptions, offered: frozenset[str]) -> None:
    """Refuse flags that cannot work, before anything is read or changed."""
    problem = scheduler_problem(options.scheduler, offered)
    if problem:
        raise OptionError(f"--scheduler: {problem}")
    for cidr in options.nodeport_cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise OptionError(f"--nodeport-addresses: {cidr!r} is not a CIDR") from None
    for cidr in options.cluster_cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise OptionError(f"--cluster-cidr: {cidr!r} is not a CIDR") from None


def desired_state(inputs: Inputs, options: EngineOptions) -> tuple[DesiredState, TranslateConfig]:
    """Translate (and what it was told of this node). Reads only the kernel's scheduler
    list and the node's addresses (one netlink dump), so bad input is reported before
    anything else is opened."""
    offered = available_schedulers() or frozenset()
    check_options(options, offered)
    local = node_addresses(options.interface)
    config = TranslateConfig(
        node_name=options.node_name,
        node_addresses=addresses_in_cidrs(local, options.nodeport_cidrs)
        if options.nodeport_cidrs
        else (),
        local_addresses=frozenset(local),
        scheduler=options.scheduler,
        schedulers=offered,
    )
    return translate(inputs.services, inputs.slices, config), config


def check_interface(links: DummyInterface, name: str) -> bool:
    """Whether our interface exists; refuses a link of that name that is no dummy.

    Every address on our interface counts as ours: were `--interface` a real
    NIC, the node's own addresses and every virtual server on them would be.
    """
    kind = links.kind(name)
    if kind is not None and kind != DUMMY_KIND:
        raise OptionError(f"--interface: {name} is a {kind or 'plain'} link, not a dummy")
    return kind is not None


def reconcile_manifests(inputs: Inputs, options: EngineOptions, *, apply: bool) -> Outcome:
    """Make this node's owned IPVS state what `inputs` imply (or only plan it)."""
    desired, config = desired_state(inputs, options)
    errors = (*inputs.errors, *desired.errors)
    if errors:
        return Outcome(plan=Plan(interface=options.interface), errors=errors)
    with DummyInterface() as links, IpvsKernel() as kernel, record_lock(apply) as record:
        exists = check_interface(links, options.interface)
        nft = netfilter_plan = None
        if options.netfilter:
            # Read (and the kernel's support checked) before anything changes.
            from ipvsctl.netfilter import NftTable

            nft = NftTable()
            netfilter_plan = plan_netfilter(nft, desired, options, config.local_addresses)
        wanted = wanted_sysctls(options.strict_arp, running_kernel())
        facts = NodeFacts(
            virtual_servers=kernel.services(),
            bound_addresses=links.bound_addresses(options.interface) if exists else frozenset(),
            nodeport_keys=read_nodeports(record),
            interface_exists=exists,
            sysctls=read_sysctls(wanted),
        )
        plan = plan_node(desired, facts, interface=options.interface, wanted_sysctls=wanted)
        if not apply:
            return Outcome(plan=plan, netfilter=netfilter_plan)
        # Recorded before the first change, so a crash half-way still knows them.
        new_nodeports = nodeport_keys_to_record(desired.virtual_servers)
        write_record(record, facts.nodeport_keys | new_nodeports)
        # First: the service-IP port filter must cover an address before it is bound.
        problems: tuple[str, ...] = ()
        if netfilter_plan is not None and (problem := carry_out_netfilter(netfilter_plan, nft)):
            problems, netfilter_plan = (problem,), None
        done, refused, link_problems = carry_out(plan, kernel, links)
        failed_changes = [failure.change for failure in refused]
        problems += link_problems
        problems += write_record_after(
            record, nodeport_keys_to_record(desired.virtual_servers, failed_changes)
        )
    return Outcome(
        plan=without(done, refused),
        failures=(*describe_all(refused), *problems),
        netfilter=netfilter_plan,
    )


def plan_netfilter(
    nft: NftTable, desired: DesiredState, options: EngineOptions, local: frozenset[str]
) -> NetfilterPlan:
    """The netfilter table's plan; OptionError (exit 2) when this kernel cannot hold the
    table, or nft cannot be run, before anything is changed."""
    from ipvsctl.netfilter import (
        NetfilterOptions,
        desired_elements,
        parse_cluster_cidrs,
        plan_table,
        static_ruleset,
    )

    # Canonical (10.244.1.0/16 is 10.244.0.0/16): check_options let host bits through.
    cidrs = parse_cluster_cidrs(options.cluster_cidrs)
    netfilter_options = NetfilterOptions(cidrs, options.masquerade_all, local)
    state = read_netfilter(nft)
    ruleset = static_ruleset(netfilter_options)
    return plan_table(state, ruleset, desired_elements(desired.virtual_servers, netfilter_options))


def read_netfilter(nft: NftTable) -> TableState:
    """Our table as it is; OptionError when this kernel (or this node's nft) cannot hold
    it. A table that exists needs no probe: it was made here."""
    from ipvsctl.netfilter import NetfilterError

    try:
        state = nft.read()
        if not state.exists:
            support = nft.supported()
            if not support.ok:
                raise OptionError(unsupported_netfilter(support.reason))
    except NetfilterError as error:
        raise OptionError(unsupported_netfilter(error.first)) from None
    return state


def plan_netfilter_cleanup() -> tuple[NftTable | None, NetfilterPlan | None, tuple[str, ...]]:
    """Our table's deletion when there is one, and notes. A table nft cannot read (a
    kernel without nf_tables) or no nft at all stops nothing else: the IPVS side is
    cleaned up all the same, and the note says what was not looked at."""
    from ipvsctl.netfilter import NetfilterError, NftTable, plan_cleanup

    nft = NftTable()
    if not nft.installed():
        return None, None, ("nft not found: no nftables table was looked for",)
    try:
        return nft, plan_cleanup(nft.read()), ()
    except NetfilterError as error:
        return None, None, (f"netfilter table not read: {error.first}",)


def unsupported_netfilter(reason: str) -> str:
    return (
        f"netfilter: this kernel cannot hold ipvsctl's nftables table ({reason}); "
        "pass --no-netfilter where the CNI masquerades and filters service traffic"
    )


@contextmanager
def record_lock(apply: bool) -> Iterator[Path]:
    """The NodePort record, locked while it is read, the plan applied and it is rewritten
    (when applying): two applies at once would otherwise each drop the other's keys."""
    path = record_path()
    if not apply:
        yield path
        return
    try:
        with lock_record(path):
            yield path
    except OSError as error:
        raise OptionError(record_problem(path, error)) from None


def record_problem(path: Path, error: OSError) -> str:
    return f"NodePort record {path}: {error.strerror or error}"


def write_record(path: Path, keys: frozenset[ServiceKey]) -> None:
    """Write the record before any change: a failure stops everything (exit 2)."""
    try:
        write_nodeports(path, keys)
    except OSError as error:
        raise OptionError(record_problem(path, error)) from None


def write_record_after(path: Path, keys: frozenset[ServiceKey]) -> tuple[str, ...]:
    """Rewrite the record after changes were made: a failure is one more failure line."""
    try:
        write_nodeports(path, keys)
    except OSError as error:
        return (record_problem(path, error),)
    return ()


def without(plan: Plan, refused: Sequence[ChangeFailure]) -> Plan:
    """The plan less the IPVS changes the kernel refused: what was carried out."""
    if not refused:
        return plan
    failed = {id(failure.change) for failure in refused}
    return plan._replace(ipvs=tuple(c for c in plan.ipvs if id(c) not in failed))


def describe_all(refused: Sequence[ChangeFailure]) -> tuple[str, ...]:
    return tuple(
        f"{change_line(failure.change)}: {failure.message} (errno {failure.errno})"
        for failure in refused
    )


def carry_out(
    plan: Plan, kernel: IpvsKernel, links: DummyInterface
) -> tuple[Plan, list[ChangeFailure], tuple[str, ...]]:
    """Apply the plan in its order, going on past failures (as the contract asks).

    Returns what was done of the link, address and sysctl steps, the IPVS
    changes the kernel refused, and one line per link, address or sysctl
    step that failed. A `-D` the kernel refused leaves a virtual server that
    is still ours: its address stays bound (and so it stays ours), for a
    later plan to delete it rather than forget it as foreign.
    """
    problems: list[str] = []
    done = plan
    try:
        if plan.create_interface:
            links.create(plan.interface)
        links.add_addresses(plan.interface, plan.addresses_add)
    except LinkError as error:
        problems.append(str(error))
        done = done._replace(create_interface=False, addresses_add=())
    written = []
    for name, value in plan.sysctls:
        try:
            write_sysctl(name, value)
            written.append((name, value))
        except LinkError as error:
            problems.append(str(error))
    done = done._replace(sysctls=tuple(written))
    refused = kernel.apply(plan.ipvs)
    unbind = addresses_to_unbind(plan, refused)
    try:
        links.delete_addresses(plan.interface, unbind)
        done = done._replace(addresses_del=unbind)
    except LinkError as error:
        problems.append(str(error))
        done = done._replace(addresses_del=())
    return done, refused, tuple(problems)


def carry_out_netfilter(plan: NetfilterPlan, nft: NftTable | None) -> str:
    """One nft transaction (all of it or none of it); a failure line, or ""."""
    from ipvsctl.netfilter import NetfilterError, NftTable, transaction

    if plan.is_empty:
        return ""
    try:
        (nft or NftTable()).apply(transaction(plan))
    except NetfilterError as error:
        return str(error)
    return ""


def addresses_to_unbind(plan: Plan, refused: Sequence[ChangeFailure]) -> tuple[str, ...]:
    """The plan's address removals, less those still carrying a virtual server whose `-D`
    the kernel refused."""
    kept = {f.change.service.key.address for f in refused if f.change.op is Op.DELETE_SERVICE}
    return tuple(address for address in plan.addresses_del if address not in kept)


def cleanup(options: EngineOptions, *, apply: bool) -> Outcome:
    """Remove every owned virtual server, our addresses and our interface; nothing else."""
    with DummyInterface() as links, IpvsKernel() as kernel, record_lock(apply) as record:
        exists = check_interface(links, options.interface)
        facts = NodeFacts(
            virtual_servers=kernel.services(),
            bound_addresses=links.bound_addresses(options.interface) if exists else frozenset(),
            nodeport_keys=read_nodeports(record),
            interface_exists=True,
        )
        owned = plan_node(DesiredState(), facts, interface=options.interface)
        nft, netfilter_plan, notes = plan_netfilter_cleanup()
        plan = Plan(
            interface=owned.interface,
            ipvs=owned.ipvs,
            addresses_del=owned.addresses_del,
            delete_interface=exists,
        )
        if not apply:
            return Outcome(plan=plan, netfilter=netfilter_plan, notes=notes)
        problems: tuple[str, ...] = ()
        refused = kernel.apply(plan.ipvs)
        if refused:
            # Keep the addresses (and so the ownership) of what could not be deleted.
            done = without(plan, refused)._replace(addresses_del=(), delete_interface=False)
        else:
            done = plan
            try:
                links.delete_addresses(plan.interface, plan.addresses_del)
                if exists:
                    links.delete(plan.interface)
            except LinkError as error:
                problems += (str(error),)
                done = done._replace(addresses_del=(), delete_interface=False)
        failed_changes = [failure.change for failure in refused]
        problems += write_record_after(record, nodeport_keys_to_record((), failed_changes))
        # Last: the port filter covers the service IPs until they are gone.
        if netfilter_plan is not None and (problem := carry_out_netfilter(netfilter_plan, nft)):
            problems, netfilter_plan = (*problems, problem), None
    return Outcome(
        plan=done,
        failures=(*describe_all(refused), *problems),
        netfilter=netfilter_plan,
        notes=notes,
    )
