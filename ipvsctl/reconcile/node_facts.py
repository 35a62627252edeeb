"""What the node has now, read once per full sync (and by `cleanup`): the IPVS table,
our interface and its addresses, the NodePort record's keys, the sysctls."""

from __future__ import annotations

from collections.abc import Mapping

from ipvsctl.links import DUMMY_KIND
from ipvsctl.model.ipvs import ServiceKey
from ipvsctl.plan import NodeFacts
from ipvsctl.reconcile.options import OptionError
from ipvsctl.reconcile.ports import Links, NodePorts


def check_interface(links: Links, name: str) -> bool:
    """Whether our interface exists; refuses a link of that name that is no dummy.

    Every address on our interface counts as ours: were `--interface` a real
    NIC, the node's own addresses and every virtual server on them would be.
    """
    kind = links.kind(name)
    if kind is not None and kind != DUMMY_KIND:
        raise OptionError(f"--interface: {name} is a {kind or 'plain'} link, not a dummy")
    return kind is not None


def read_node_facts(
    ports: NodePorts,
    interface: str,
    recorded: frozenset[ServiceKey],
    sysctls: Mapping[str, str] | None = None,
    timeouts: bool = False,
) -> NodeFacts:
    """One dump of the IPVS table, the interface's addresses, the current values of
    `sysctls` (the names the plan wants set), and the IPVS timeouts when `timeouts`."""
    exists = check_interface(ports.links, interface)
    return NodeFacts(
        virtual_servers=tuple(ports.ipvs.services()),
        bound_addresses=ports.links.bound_addresses(interface) if exists else frozenset(),
        nodeport_keys=recorded,
        interface_exists=exists,
        sysctls=ports.sysctls.read(sysctls) if sysctls else {},
        timeouts=ports.ipvs.timeouts() if timeouts else None,
    )
