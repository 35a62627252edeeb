"""Carrying a plan out on the node, in the plan's order, going on past failures.

The netfilter table goes first (its port filter must cover an address before
the address is bound) as one transaction, all of it or none of it; then the
interface and addresses, the sysctls, the IPVS timeouts, the IPVS changes (batched),
and last the
addresses no longer wanted (see `ipvsctl.plan.node_plan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ipvsctl.kernel import KernelError
from ipvsctl.links import LinkError
from ipvsctl.model.changes import ChangeFailure, Op
from ipvsctl.plan import Plan
from ipvsctl.reconcile.ports import NodePorts
from ipvsctl.render.plan_lines import change_line

if TYPE_CHECKING:
    from ipvsctl.netfilter import NetfilterPlan
    from ipvsctl.reconcile.ports import Nft


def carry_out(plan: Plan, ports: NodePorts) -> tuple[Plan, list[ChangeFailure], tuple[str, ...]]:
    """Apply the plan in its order, going on past failures (as the contract asks).

    Returns what was done of the link, address and sysctl steps, the IPVS
    changes the kernel refused, and one line per link, address or sysctl
    step that failed. A `-D` the kernel refused leaves a virtual server that
    is still ours: its address stays bound (and so it stays ours), for a
    later plan to delete it rather than forget it as foreign.
    """
    links = ports.links
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
            ports.sysctls.write(name, value)
            written.append((name, value))
        except LinkError as error:
            problems.append(str(error))
    done = done._replace(sysctls=tuple(written))
    if plan.timeouts is not None:
        try:
            ports.ipvs.set_timeouts(plan.timeouts)
        except KernelError as error:
            problems.append(f"--set: {error}")
            done = done._replace(timeouts=None)
    refused = list(ports.ipvs.apply(plan.ipvs))
    unbind = addresses_to_unbind(plan, refused)
    try:
        links.delete_addresses(plan.interface, unbind)
        done = done._replace(addresses_del=unbind)
    except LinkError as error:
        problems.append(str(error))
        done = done._replace(addresses_del=())
    return done, refused, tuple(problems)


def carry_out_netfilter(plan: NetfilterPlan, nft: Nft) -> str:
    """One nft transaction (all of it or none of it); a failure line, or ""."""
    from ipvsctl.netfilter import NetfilterError, transaction

    if plan.is_empty:
        return ""
    try:
        nft.apply(transaction(plan))
    except NetfilterError as error:
        return str(error)
    return ""


def addresses_to_unbind(plan: Plan, refused: Sequence[ChangeFailure]) -> tuple[str, ...]:
    """The plan's address removals, less those still carrying a virtual server whose `-D`
    the kernel refused."""
    kept = {f.change.service.key.address for f in refused if f.change.op is Op.DELETE_SERVICE}
    return tuple(address for address in plan.addresses_del if address not in kept)


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
