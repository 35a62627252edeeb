"""What translate produces and the planner compares with the kernel."""

from __future__ import annotations

from typing import NamedTuple

from ipvsctl.model.inputs import ObjectError
from ipvsctl.model.ipvs import RealServer, ServiceKey, VirtualServer

# What a virtual server's address is to its Service (`DesiredVirtualServer.kind`): the
# netfilter table treats each differently, as kube-proxy's IPVS mode does with its
# KUBE-CLUSTER-IP, KUBE-EXTERNAL-IP, KUBE-LOAD-BALANCER and KUBE-NODE-PORT-* sets.
CLUSTER_IP = "cluster"  # spec.clusterIPs
EXTERNAL_IP = "external"  # spec.externalIPs
LOAD_BALANCER = "load-balancer"  # status.loadBalancer.ingress[].ip
NODE_PORT = "nodeport"  # a node address with spec.ports[].nodePort


class DesiredVirtualServer(NamedTuple):
    """One virtual server as the Services want it.

    `real_servers` are unique by key and sorted by it. `owner` is the
    Service's "namespace/name". `bound` is True when the address must be on
    the dummy interface (every service IP except node addresses: NodePorts).
    (A NamedTuple: translate builds one per virtual server, 10,000s at a time.)

    The rest is for the netfilter table, which IPVS alone cannot replace:
    `kind` (above); `local` when the traffic policy that chose `real_servers` is
    Local (internalTrafficPolicy for cluster IPs, externalTrafficPolicy for the
    rest: such traffic keeps its client address); `source_ranges`, the Service's
    loadBalancerSourceRanges (canonical CIDRs; load-balancer IPs only);
    `local_endpoints`, the addresses of `real_servers` that run on this node (a
    pod reaching itself through the Service needs masquerading: hairpin);
    `health_check_port`, the Service's healthCheckNodePort (load-balancer IPs of
    Local-policy Services only), which cloud health checks reach on the service IP;
    `local_fallback`, when externalTrafficPolicy is Local, no endpoint runs on this
    node and `real_servers` are the cluster's instead (as kube-proxy's IPVS mode):
    the netfilter table lets only pods and this node use them.
    """

    service: VirtualServer
    real_servers: tuple[RealServer, ...]
    owner: str
    bound: bool = True
    kind: str = CLUSTER_IP
    local: bool = False
    source_ranges: tuple[str, ...] = ()
    local_endpoints: tuple[str, ...] = ()
    health_check_port: int = 0
    local_fallback: bool = False

    @property
    def key(self) -> ServiceKey:
        return self.service.key


class TranslateConfig(NamedTuple):
    """What translation needs to know about this node and the command line.

    Addresses are canonical (`canonical_address`), as the kernel and the Node
    object's reader spell them: translate builds service keys from them as they are.
    """

    node_name: str = ""
    node_zone: str = ""  # the Node's topology.kubernetes.io/zone label, for zone hints
    node_addresses: tuple[str, ...] = ()  # NodePort addresses (already CIDR-filtered)
    # Every address the node has outside our interface: a service IP among them
    # (an external IP that is a node's) is never bound, and so never ours.
    local_addresses: frozenset[str] = frozenset()
    scheduler: str = "rr"  # --scheduler: used when a Service has no annotation
    schedulers: frozenset[str] = frozenset()  # what the kernel offers; empty: do not check


class DesiredState(NamedTuple):
    """Every virtual server the Services imply, and the addresses to bind; `errors` of the
    Services refused, `warnings` of what was left out of Services that are served."""

    virtual_servers: tuple[DesiredVirtualServer, ...] = ()
    addresses: frozenset[str] = frozenset()
    errors: tuple[ObjectError, ...] = ()
    warnings: tuple[ObjectError, ...] = ()
