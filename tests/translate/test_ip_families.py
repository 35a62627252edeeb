"""A Service is served only in its own IP families (spec.ipFamilies, else its cluster
IPs'), as kube-proxy's per-family proxiers serve it: NodePorts on node addresses
of those families only, and an external or load-balancer IP of another family
skipped with a warning, never bound, while the rest of the Service is served."""

from __future__ import annotations

from socket import AF_INET, AF_INET6

from ipvsctl.model import Protocol
from ipvsctl.model.desired import TranslateConfig
from ipvsctl.model.inputs import Service, ServicePort
from ipvsctl.reconcile.wanted_services import WantedServices
from ipvsctl.translate import service_warnings, translate, translate_service

SCTP, TCP = int(Protocol.SCTP), int(Protocol.TCP)
DUAL_STACK_NODE = TranslateConfig(
    node_name="node-1", node_addresses=("192.0.2.10", "2001:db8::1:1")
)
SIGNAL = Service(
    namespace="tel",
    name="signal",
    type="NodePort",
    cluster_ips=("10.96.0.40",),
    ports=(ServicePort("sig", SCTP, 3000, 3001),),
)


def addresses(service: Service, config: TranslateConfig = DUAL_STACK_NODE) -> list[str]:
    servers, errors = translate_service(service, (), config)
    assert errors == ()
    return [server.key.address for server in servers]


def test_an_ipv4_only_nodeport_gets_no_virtual_server_on_ipv6_node_addresses() -> None:
    assert addresses(SIGNAL) == ["10.96.0.40", "192.0.2.10"]


def test_a_dual_stack_nodeport_gets_both_families_of_node_addresses() -> None:
    service = SIGNAL._replace(cluster_ips=("10.96.0.40", "fd00:96::40"))
    assert addresses(service) == ["10.96.0.40", "fd00:96::40", "192.0.2.10", "2001:db8::1:1"]


def test_ip_families_decide_over_the_cluster_ips() -> None:
    # An IPv6-only Service (ipFamilies) serves its NodePort on IPv6 node addresses only.
    service = SIGNAL._replace(cluster_ips=("fd00:96::40",), ip_families=(AF_INET6,))
    assert addresses(service) == ["fd00:96::40", "2001:db8::1:1"]
    assert SIGNAL._replace(ip_families=(AF_INET, AF_INET6)).families == {AF_INET, AF_INET6}


def test_an_external_ip_of_another_family_is_skipped_with_a_warning() -> None:
    service = SIGNAL._replace(type="ClusterIP", external_ips=("203.0.113.7", "2001:db8::77"))
    assert addresses(service) == ["10.96.0.40", "203.0.113.7"]
    (warning,) = service_warnings(service)
    assert str(warning) == (
        "Service tel/signal: spec.externalIPs: 2001:db8::77 is IPv6, not a family of the"
        " Service (IPv4): skipped"
    )


def test_a_load_balancer_ip_of_another_family_is_skipped_with_a_warning() -> None:
    service = SIGNAL._replace(type="LoadBalancer", load_balancer_ips=("2001:db8::88",))
    assert "2001:db8::88" not in addresses(service)
    (warning,) = service_warnings(service)
    assert warning.field == "status.loadBalancer.ingress"


def test_a_service_of_its_own_families_has_no_warning() -> None:
    assert service_warnings(SIGNAL._replace(external_ips=("203.0.113.7",))) == ()


def test_the_whole_table_collects_warnings_and_never_binds_the_skipped_address() -> None:
    service = SIGNAL._replace(external_ips=("2001:db8::77",))
    state = translate([service], (), DUAL_STACK_NODE)
    assert state.errors == ()
    assert "2001:db8::77" not in state.addresses
    assert [warning.ref.name for warning in state.warnings] == ["signal"]


class Source:
    def __init__(self, *services: Service) -> None:
        self.services = {(s.namespace, s.name): s for s in services}

    def slices_of(self, key: tuple[str, str]) -> tuple[()]:
        return ()


def test_a_warned_service_is_served_not_rejected_and_the_warning_goes_once_fixed() -> None:
    wanted = WantedServices(DUAL_STACK_NODE)
    warned = SIGNAL._replace(external_ips=("203.0.113.7", "2001:db8::77"))
    wanted.retranslate_all(Source(warned), DUAL_STACK_NODE)
    assert wanted.rejected == {}
    assert "203.0.113.7" in wanted.desired().addresses
    assert [w.field for w in wanted.warnings()] == ["spec.externalIPs"]
    wanted.retranslate([("tel", "signal")], Source(SIGNAL))
    assert wanted.warned == {}
