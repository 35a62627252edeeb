"""Kubernetes objects as the engine reads them: Services and EndpointSlices
reduced to what the IPVS table and the netfilter table need.

Sources (manifest files, the API watch) produce these; translate consumes
them. They hold plain values only (never client model objects), addresses
already canonical (`canonical_address`), so the agent can keep 10,000 of them.

Every type here is an immutable tuple (NamedTuple), not a frozen dataclass:
reading 10,000 Services builds 100,000 endpoints, a frozen dataclass sets each
field through object.__setattr__ (five times slower) and is three times the
size, and creating each dataclass class costs ~2 ms of every command's start
(more in the kernel lab). `x._replace(field=...)` makes a changed copy.
"""

from __future__ import annotations

from socket import AF_INET, AF_INET6
from typing import NamedTuple

from ipvsctl.model.printable import MAX_MESSAGE, printable

# The annotations translate reads; sources keep only these.
SCHEDULER_ANNOTATION = "ipvsctl.io/scheduler"
SCHEDULER_FLAGS_ANNOTATION = "ipvsctl.io/scheduler-flags"
FORWARDING_ANNOTATION = "ipvsctl.io/forwarding-method"
OUR_ANNOTATIONS = (SCHEDULER_ANNOTATION, SCHEDULER_FLAGS_ANNOTATION, FORWARDING_ANNOTATION)
# kube-proxy leaves a Service with this label to the proxy it names.
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800

ObjectKey = tuple[str, str]  # (namespace, name) of an object; a Node's namespace is ""


class ObjectRef(NamedTuple):
    """Which Kubernetes object a value or an error is about."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        # A cluster-scoped object (a Node) has no namespace to print.
        if not self.namespace:
            return f"{printable(self.kind)} {printable(self.name)}"
        return f"{printable(self.kind)} {printable(self.namespace)}/{printable(self.name)}"


class ObjectError(NamedTuple):
    """One problem with one field of one object: the line a user sees."""

    ref: ObjectRef
    field: str
    message: str

    def __str__(self) -> str:
        # The message quotes values already cut (`show_value`); its own bound is wider.
        message = printable(self.message, MAX_MESSAGE)
        if not self.field:
            return f"{self.ref}: {message}"
        return f"{self.ref}: {printable(self.field)}: {message}"


class Refused(NamedTuple):
    """A new version of an object that cannot be used: its problems, and its
    metadata.uid (whether it is the same object as the version held before it)."""

    errors: tuple[ObjectError, ...]
    uid: str = ""


class ServicePort(NamedTuple):
    """One of a Service's ports. (A NamedTuple: translate hashes it as a cache key.)"""

    name: str
    protocol: int  # model.Protocol value
    port: int
    node_port: int = 0  # 0: none


class Service(NamedTuple):
    """A v1 Service. `cluster_ips` is empty for headless and ExternalName Services."""

    namespace: str
    name: str
    type: str = "ClusterIP"  # ClusterIP | NodePort | LoadBalancer | ExternalName
    cluster_ips: tuple[str, ...] = ()
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip
    ports: tuple[ServicePort, ...] = ()
    affinity_timeout: int = 0  # sessionAffinity ClientIP: seconds; 0: no affinity
    internal_traffic_local: bool = False
    external_traffic_local: bool = False
    annotations: tuple[tuple[str, str], ...] = ()  # OUR_ANNOTATIONS only, sorted
    proxy_name: str = ""  # SERVICE_PROXY_NAME_LABEL
    load_balancer_source_ranges: tuple[str, ...] = ()
    health_check_node_port: int = 0
    # metadata.uid ("" in a manifest that has none): a Service deleted and made again
    # under the same name is another Service.
    uid: str = ""
    # spec.ipFamilies as AF_INET / AF_INET6, in order; empty when the object has none
    # (the families of `cluster_ips` stand in: `families`).
    ip_families: tuple[int, ...] = ()

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Service", self.namespace, self.name)

    @property
    def families(self) -> frozenset[int]:
        """The IP families the Service has: spec.ipFamilies, else its cluster IPs'. Its
        external addresses and NodePorts are served only in these (kube-proxy runs one
        proxier per family, and each skips the other family's addresses)."""
        if self.ip_families:
            return frozenset(self.ip_families)
        return frozenset(AF_INET6 if ":" in address else AF_INET for address in self.cluster_ips)

    def annotation(self, key: str) -> str | None:
        for name, value in self.annotations:
            if name == key:
                return value
        return None


class EndpointPort(NamedTuple):
    name: str
    protocol: int  # model.Protocol value
    port: int


class Endpoint(NamedTuple):
    """One endpoint of a slice; conditions as the API defines them (absent ready = true)."""

    addresses: tuple[str, ...]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""
    zone: str = ""
    hints_for_nodes: tuple[str, ...] = ()
    hints_for_zones: tuple[str, ...] = ()


class EndpointSlice(NamedTuple):
    """A discovery.k8s.io/v1 EndpointSlice. `family` is AF_INET or AF_INET6 (FQDN slices are
    dropped by sources: IPVS cannot use them)."""

    namespace: str
    name: str
    service_name: str  # the kubernetes.io/service-name label
    family: int
    ports: tuple[EndpointPort, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("EndpointSlice", self.namespace, self.name)


class Inputs(NamedTuple):
    """Everything one source read: the objects, and the problems found while reading."""

    services: tuple[Service, ...] = ()
    slices: tuple[EndpointSlice, ...] = ()
    errors: tuple[ObjectError, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. "ConfigMap default/x: ignored (not a Service ...)"


class NodeInfo(NamedTuple):
    """This node as the API server describes it (the agent's own Node object).

    `addresses` are the InternalIPs then the ExternalIPs of `status.addresses`,
    canonical, each in the order listed: NodePorts are served on them. `zone`
    is the `topology.kubernetes.io/zone` label ("" when unset), for topology hints.
    """

    name: str
    addresses: tuple[str, ...] = ()
    zone: str = ""
