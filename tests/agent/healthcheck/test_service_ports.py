"""Which Services get a health check node port, and the count it answers with."""

from __future__ import annotations

from ipvsctl.agent.healthcheck.service_ports import health_check_port
from ipvsctl.model import AF_INET, Protocol
from ipvsctl.model.inputs import Endpoint, EndpointPort, EndpointSlice, Service, ServicePort

LB = Service(
    "shop",
    "web",
    type="LoadBalancer",
    cluster_ips=("10.96.0.1",),
    ports=(ServicePort("http", int(Protocol.TCP), 80, 30080),),
    external_traffic_local=True,
    health_check_node_port=32000,
)
SLICE = EndpointSlice(
    "shop",
    "web-1",
    "web",
    AF_INET,
    (EndpointPort("http", int(Protocol.TCP), 8080),),
    (
        Endpoint(("10.244.1.1",), node_name="node-1"),
        Endpoint(("10.244.1.2",), node_name="node-1", ready=False),
        Endpoint(("10.244.2.1",), node_name="node-2"),
    ),
)


def test_a_local_load_balancer_counts_this_nodes_ready_endpoints() -> None:
    assert health_check_port(LB, [SLICE], "node-1") == (32000, LB.ref, 1)
    assert health_check_port(LB, [SLICE], "node-3") == (32000, LB.ref, 0)


def test_only_local_load_balancers_with_a_port_get_one() -> None:
    assert health_check_port(LB._replace(external_traffic_local=False), [SLICE], "node-1") is None
    assert health_check_port(LB._replace(type="NodePort"), [SLICE], "node-1") is None
    assert health_check_port(LB._replace(health_check_node_port=0), [SLICE], "node-1") is None
