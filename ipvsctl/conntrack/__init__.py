"""The conntrack room: the entries of UDP flows whose real server is gone, deleted.

`udp_flows` finds them over ctnetlink (pyroute2) and deletes them, as
kube-proxy does when a UDP endpoint goes; a failure is a `links.LinkError`,
as for the node's other netlink changes. Only the agent imports this room,
so `apply` never pays for it, and pyroute2 is loaded only when a table is
first used.
"""

from ipvsctl.conntrack.udp_flows import ConntrackTable, UdpNatFlow, delete_udp_flows, udp_nat_flow

__all__ = ["ConntrackTable", "UdpNatFlow", "delete_udp_flows", "udp_nat_flow"]
