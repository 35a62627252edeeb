"""One reconcile of this node: validate, read, plan, apply.

Nothing is changed until every input is valid, and then only what the plan
says, in its order (see `ipvsctl.plan.node_plan`). The NodePort record is
written before the plan runs, listing the keys already recorded and those
about to be added, so that a crash half-way still knows them for ours; after
the plan it lists exactly the desired ones (and any whose delete failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ipvsctl.kernel import IpvsKernel
from ipvsctl.kernel.schedulers import available_schedulers
from ipvsctl.links import (
    DummyInterface,
    addresses_in_cidrs,
    node_addresses,
    read_sysctls,
    wanted_sysctls,
    write_sysctl,
)
from ipvsctl.model.changes import ChangeFailure
from ipvsctl.model.desired import DesiredState, TranslateConfig
from ipvsctl.model.inputs import Inputs, ObjectError
from ipvsctl.plan import NodeFacts, Plan, nodeport_keys_to_record, plan_node
from ipvsctl.plan.lines import change_line
from ipvsctl.state.nodeport_record import read_nodeports, record_path, write_nodeports
from ipvsctl.translate import scheduler_problem, translate


class OptionError(ValueError):
    """A command-line value that cannot be used: names the flag."""


@dataclass(frozen=True)
class EngineOptions:
    """The command-line settings one reconcile depends on."""

    node_name: str = ""
    scheduler: str = "rr"
    interface: str = "kube-ipvs0"
    nodeport_cidrs: tuple[str, ...] = ()
    strict_arp: bool = False


@dataclass(frozen=True)
class Outcome:
    """What was done (the whole plan on a dry run; without the refused changes
    otherwise), the input problems that stopped it before anything changed,
    and one line per change the kernel refused."""

    plan: Plan
    errors: tuple[ObjectError, ...] = ()
    failures: tuple[str, ...] = ()


def desired_state(inputs: Inputs, options: EngineOptions) -> DesiredState:
    """Translate; reads only the kernel's scheduler list and, for NodePorts, the node's
    addresses, so bad input is reported before any netlink socket is opened."""
    offered = available_schedulers() or frozenset()
    problem = scheduler_problem(options.scheduler, offered)
    if problem:
        raise OptionError(f"--scheduler: {problem}")
    nodeport_addresses: tuple[str, ...] = ()
    if options.nodeport_cidrs:
        nodeport_addresses = addresses_in_cidrs(
            node_addresses(options.interface), options.nodeport_cidrs
        )
    config = TranslateConfig(
        node_name=options.node_name,
        node_addresses=nodeport_addresses,
        scheduler=options.scheduler,
        schedulers=offered,
    )
    return translate(inputs.services, inputs.slices, config)


def reconcile_manifests(inputs: Inputs, options: EngineOptions, *, apply: bool) -> Outcome:
    """Make this node's owned IPVS state what `inputs` imply (or only plan it)."""
    desired = desired_state(inputs, options)
    errors = (*inputs.errors, *desired.errors)
    if errors:
        return Outcome(plan=Plan(interface=options.interface), errors=errors)
    with DummyInterface() as links, IpvsKernel() as kernel:
        record = record_path()
        wanted = wanted_sysctls(options.strict_arp)
        facts = NodeFacts(
            virtual_servers=kernel.services(),
            bound_addresses=links.bound_addresses(options.interface),
            nodeport_keys=read_nodeports(record),
            interface_exists=links.exists(options.interface),
            sysctls=read_sysctls(wanted),
        )
        plan = plan_node(desired, facts, interface=options.interface, wanted_sysctls=wanted)
        if not apply:
            return Outcome(plan=plan)
        new_nodeports = nodeport_keys_to_record(desired.virtual_servers)
        write_nodeports(record, facts.nodeport_keys | new_nodeports)
        refused = carry_out(plan, kernel, links)
        failed_changes = [failure.change for failure in refused]
        write_nodeports(record, nodeport_keys_to_record(desired.virtual_servers, failed_changes))
    return Outcome(plan=without(plan, refused), failures=describe_all(refused))


def without(plan: Plan, refused: Sequence[ChangeFailure]) -> Plan:
    """The plan less the IPVS changes the kernel refused: what was carried out."""
    if not refused:
        return plan
    failed = {id(failure.change) for failure in refused}
    return replace(plan, ipvs=tuple(c for c in plan.ipvs if id(c) not in failed))


def describe_all(refused: Sequence[ChangeFailure]) -> tuple[str, ...]:
    return tuple(
        f"{change_line(failure.change)}: {failure.message} (errno {failure.errno})"
        for failure in refused
    )


def carry_out(plan: Plan, kernel: IpvsKernel, links: DummyInterface) -> list[ChangeFailure]:
    """Apply the plan in its order; returns the IPVS changes the kernel refused."""
    if plan.create_interface:
        links.create(plan.interface)
    links.add_addresses(plan.interface, plan.addresses_add)
    for name, value in plan.sysctls:
        write_sysctl(name, value)
    refused = kernel.apply(plan.ipvs)
    links.delete_addresses(plan.interface, plan.addresses_del)
    return refused


def cleanup(options: EngineOptions, *, apply: bool) -> Outcome:
    """Remove every owned virtual server, our addresses and our interface; nothing else."""
    with DummyInterface() as links, IpvsKernel() as kernel:
        record = record_path()
        exists = links.exists(options.interface)
        facts = NodeFacts(
            virtual_servers=kernel.services(),
            bound_addresses=links.bound_addresses(options.interface) if exists else frozenset(),
            nodeport_keys=read_nodeports(record),
            interface_exists=True,
        )
        plan = plan_node(DesiredState(), facts, interface=options.interface)
        plan = Plan(
            interface=plan.interface,
            ipvs=plan.ipvs,
            addresses_del=plan.addresses_del,
            delete_interface=exists,
        )
        if not apply:
            return Outcome(plan=plan)
        refused = kernel.apply(plan.ipvs)
        if not refused:
            links.delete_addresses(plan.interface, plan.addresses_del)
            if exists:
                links.delete(plan.interface)
            done = plan
        else:
            # Keep the addresses (and so the ownership) of what could not be deleted.
            done = replace(without(plan, refused), addresses_del=(), delete_interface=False)
        failed_changes = [failure.change for failure in refused]
        write_nodeports(record, nodeport_keys_to_record((), failed_changes))
    return Outcome(plan=done, failures=describe_all(refused))
