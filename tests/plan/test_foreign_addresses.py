"""External and load-balancer addresses holding foreign virtual servers are not taken."""

from __future__ import annotations

from ipvsctl.model.desired import (
    CLUSTER_IP,
    EXTERNAL_IP,
    LOAD_BALANCER,
    NODE_PORT,
    DesiredState,
    DesiredVirtualServer,
)
from ipvsctl.model.ipvs import ServiceKey, VirtualServer
from ipvsctl.plan import (
    NodeFacts,
    Ownership,
    plan_node,
    withhold_foreign_addresses,
    without_foreign_addresses,
)
from ipvsctl.render.plan_lines import plan_lines
from tests.plan.builders import have, rs, tcp, udp, want

CLUSTER, EXTERNAL, NODE = "10.96.0.10", "192.0.2.10", "192.168.1.5"
NOBODY = Ownership(frozenset(), frozenset())


def of(kind: str, vs: VirtualServer, bound: bool = True) -> DesiredVirtualServer:
    return want(vs, rs("10.244.1.5"), bound=bound)._replace(kind=kind)


def web() -> tuple[DesiredVirtualServer, ...]:
    """Service default/web: a cluster IP and an external IP, ports 80 and 443."""
    return (
        of(CLUSTER_IP, tcp(CLUSTER, 80)),
        of(CLUSTER_IP, tcp(CLUSTER, 443)),
        of(EXTERNAL_IP, tcp(EXTERNAL, 80)),
        of(EXTERNAL_IP, tcp(EXTERNAL, 443)),
    )


def keys(servers: tuple[DesiredVirtualServer, ...]) -> list[ServiceKey]:
    return [vs.key for vs in servers]


def test_any_foreign_virtual_server_on_an_external_address_withholds_every_port_on_it() -> None:
    foreign = udp(EXTERNAL, 53).key  # another port, another protocol: binding takes it all
    kept, conflicts = withhold_foreign_addresses(web(), [foreign], NOBODY)
    assert keys(kept) == [tcp(CLUSTER, 80).key, tcp(CLUSTER, 443).key]
    assert [c.key for c in conflicts] == [tcp(EXTERNAL, 80).key, tcp(EXTERNAL, 443).key]
    assert all(c.foreign == (foreign,) for c in conflicts)


def test_the_warning_names_the_service_the_field_the_port_and_the_foreign_server() -> None:
    _, conflicts = withhold_foreign_addresses(web(), [tcp(EXTERNAL, 80).key], NOBODY)
    assert str(conflicts[0]) == (
        "Service default/web: spec.externalIPs: TCP 192.0.2.10:80 skipped: 192.0.2.10 holds"
        " a virtual server ipvsctl did not create (TCP 192.0.2.10:80); it is left as it is"
    )


def test_a_load_balancer_ip_names_its_status_field_and_an_ipv6_address_has_brackets() -> None:
    wanted = (of(LOAD_BALANCER, tcp("2001:db8::10", 80)),)
    _, conflicts = withhold_foreign_addresses(wanted, [tcp("2001:db8::10", 8080).key], NOBODY)
    error = conflicts[0].error()
    assert error.field == "status.loadBalancer.ingress"
    assert error.message.startswith("TCP [2001:db8::10]:80 skipped: 2001:db8::10 holds")
    assert "(TCP [2001:db8::10]:8080)" in error.message


def test_many_foreign_servers_are_named_three_and_counted() -> None:
    foreign = [tcp(EXTERNAL, port).key for port in range(1, 6)]
    _, conflicts = withhold_foreign_addresses(web()[2:3], foreign, NOBODY)
    assert "TCP 192.0.2.10:1, TCP 192.0.2.10:2, TCP 192.0.2.10:3 and 2 more)" in str(conflicts[0])


def test_an_address_already_bound_by_us_is_ours_whatever_is_on_it() -> None:
    ours = Ownership(frozenset({EXTERNAL}), frozenset())
    kept, conflicts = withhold_foreign_addresses(web(), [udp(EXTERNAL, 53).key], ours)
    assert kept == web() and conflicts == ()


def test_a_cluster_ip_is_adopted_as_kube_proxy_does() -> None:
    kept, conflicts = withhold_foreign_addresses(web(), [tcp(CLUSTER, 80).key], NOBODY)
    assert kept == web() and conflicts == ()


def test_an_external_ip_that_is_also_a_cluster_ip_is_bound_as_the_cluster_ip_is() -> None:
    wanted = (*web(), of(CLUSTER_IP, tcp(EXTERNAL, 8080)))
    kept, conflicts = withhold_foreign_addresses(wanted, [tcp(EXTERNAL, 80).key], NOBODY)
    assert kept == wanted and conflicts == ()


def test_virtual_servers_on_other_addresses_do_not_matter() -> None:
    present = [tcp("192.0.2.11", 80).key, tcp(NODE, 80).key]
    kept, conflicts = withhold_foreign_addresses(web(), present, NOBODY)
    assert kept == web() and conflicts == ()


def test_an_external_ip_of_the_node_withholds_only_the_port_a_foreign_server_has() -> None:
    # A node address is never bound: only the virtual server of the same key is at risk.
    wanted = (of(EXTERNAL_IP, tcp(NODE, 80), bound=False), of(EXTERNAL_IP, tcp(NODE, 443), False))
    kept, conflicts = withhold_foreign_addresses(wanted, [tcp(NODE, 80).key], NOBODY)
    assert keys(kept) == [tcp(NODE, 443).key]
    assert [c.key for c in conflicts] == [tcp(NODE, 80).key]


def test_a_recorded_key_on_a_node_address_is_ours() -> None:
    wanted = (of(EXTERNAL_IP, tcp(NODE, 80), bound=False),)
    recorded = Ownership(frozenset(), frozenset({tcp(NODE, 80).key}))
    assert withhold_foreign_addresses(wanted, [tcp(NODE, 80).key], recorded) == (wanted, ())


def test_nodeports_keep_their_record_rule() -> None:
    wanted = (of(NODE_PORT, tcp(NODE, 30080), bound=False),)
    assert withhold_foreign_addresses(wanted, [tcp(NODE, 30080).key], NOBODY) == (wanted, ())


def test_a_desired_state_loses_the_withheld_servers_and_their_address() -> None:
    desired = DesiredState(web(), frozenset({CLUSTER, EXTERNAL}))
    served, conflicts = without_foreign_addresses(desired, [udp(EXTERNAL, 53).key], NOBODY)
    assert served.addresses == {CLUSTER}
    assert keys(served.virtual_servers) == [tcp(CLUSTER, 80).key, tcp(CLUSTER, 443).key]
    assert len(conflicts) == 2
    unchanged, none = without_foreign_addresses(desired, [], NOBODY)
    assert unchanged is desired and none == ()


def test_the_plan_of_what_is_served_leaves_the_foreign_server_alone() -> None:
    foreign = have(tcp(EXTERNAL, 80, scheduler="wlc"), rs("198.51.100.7", 80))
    facts = NodeFacts(virtual_servers=(foreign,))
    ours = Ownership(facts.bound_addresses, facts.nodeport_keys)
    desired = DesiredState(web(), frozenset({CLUSTER, EXTERNAL}))
    served, _ = without_foreign_addresses(desired, [foreign.service.key], ours)
    lines = plan_lines(plan_node(served, facts))
    assert not [line for line in lines if EXTERNAL in line]
    assert "addr add 10.96.0.10/32 dev kube-ipvs0" in lines
