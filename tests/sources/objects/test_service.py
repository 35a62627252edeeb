"""service_from_dict: a parsed v1 Service into an input Service, or every problem in it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ipvsctl.model import Protocol
from ipvsctl.model.inputs import Service, ServicePort
from ipvsctl.sources import service_from_dict

TCP, UDP, SCTP = int(Protocol.TCP), int(Protocol.UDP), int(Protocol.SCTP)


def api_service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "clusterIP": "10.96.0.30",
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            **spec,
        },
    }


def converted(obj: dict[str, Any]) -> Service:
    result = service_from_dict(obj)
    assert isinstance(result, Service), [str(error) for error in result]
    return result


def problems(obj: dict[str, Any]) -> list[str]:
    result = service_from_dict(obj)
    assert isinstance(result, list), result
    return [str(error) for error in result]


def with_metadata(**metadata: Any) -> dict[str, Any]:
    obj = api_service()
    obj["metadata"] = metadata
    return obj


def test_a_plain_cluster_ip_service() -> None:
    assert converted(api_service()) == Service(
        namespace="shop",
        name="api",
        cluster_ips=("10.96.0.30",),
        ports=(ServicePort("http", TCP, 80),),
    )


def test_a_service_without_namespace_is_in_default() -> None:
    assert converted(with_metadata(name="api")).namespace == "default"


def test_every_field_ipvsctl_reads() -> None:
    obj = api_service(
        type="LoadBalancer",
        clusterIPs=["10.96.0.30", "FD00:10:96:0::30"],
        externalIPs=["203.0.113.7"],
        ports=[
            {"name": "http", "port": 80, "nodePort": 30080},
            {"name": "dns", "protocol": "UDP", "port": 53},
            {"name": "sig", "protocol": "SCTP", "port": 3868},
        ],
        sessionAffinity="ClientIP",
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}},
        internalTrafficPolicy="Local",
        externalTrafficPolicy="Local",
        loadBalancerSourceRanges=["192.0.2.0/24", "198.51.100.7/32"],
        healthCheckNodePort=32000,
    )
    obj["metadata"]["annotations"] = {
        "ipvsctl.io/scheduler": "sh",
        "ipvsctl.io/forwarding-method": "route",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    obj["metadata"]["labels"] = {"service.kubernetes.io/service-proxy-name": "other"}
    obj["status"] = {
        "loadBalancer": {
            "ingress": [
                {"ip": "198.51.100.1", "ipMode": "VIP"},
                {"hostname": "lb.example.com"},
                # Proxied to the node: kube-proxy programs nothing for it.
                {"ip": "198.51.100.2", "ipMode": "Proxy"},
            ]
        }
    }
    assert converted(obj) == Service(
        namespace="shop",
        name="api",
        type="LoadBalancer",
        cluster_ips=("10.96.0.30", "fd00:10:96::30"),
        external_ips=("203.0.113.7",),
        load_balancer_ips=("198.51.100.1",),
        ports=(
            ServicePort("http", TCP, 80, 30080),
            ServicePort("dns", UDP, 53),
            ServicePort("sig", SCTP, 3868),
        ),
        affinity_timeout=600,
        internal_traffic_local=True,
        external_traffic_local=True,
        annotations=(
            ("ipvsctl.io/forwarding-method", "route"),
            ("ipvsctl.io/scheduler", "sh"),
        ),
        proxy_name="other",
        load_balancer_source_ranges=("192.0.2.0/24", "198.51.100.7/32"),
        health_check_node_port=32000,
    )


def test_client_ip_affinity_defaults_to_three_hours() -> None:
    assert converted(api_service(sessionAffinity="ClientIP")).affinity_timeout == 10800


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"clusterIP": "None", "ports": []}, id="headless"),
        pytest.param({"clusterIP": "None", "clusterIPs": ["None"]}, id="headless, both fields"),
        pytest.param(
            {"type": "ExternalName", "externalName": "db.example.com", "clusterIP": None},
            id="ExternalName",
        ),
        pytest.param({"clusterIP": None}, id="no cluster IP"),
    ],
)
def test_services_without_cluster_ips(spec: dict[str, Any]) -> None:
    assert converted(api_service(**spec)).cluster_ips == ()


P = "Service shop/api: "


@pytest.mark.parametrize(
    ("obj", "messages"),
    [
        pytest.param(
            api_service(ports=[{"port": 70000}]),
            [P + "spec.ports[0].port: 70000 is not a port (1-65535)"],
            id="port too big",
        ),
        pytest.param(
            api_service(ports=[{"port": 0}]),
            [P + "spec.ports[0].port: 0 is not a port (1-65535)"],
            id="port 0",
        ),
        pytest.param(
            api_service(ports=[{"port": "80"}]),
            [P + 'spec.ports[0].port: "80" is not a port (1-65535)'],
            id="port as text",
        ),
        pytest.param(
            api_service(ports=[{"port": True}]),
            [P + "spec.ports[0].port: true is not a port (1-65535)"],
            id="port as a YAML boolean",
        ),
        pytest.param(
            api_service(ports=[{"name": "x"}]),
            [P + "spec.ports[0].port: missing (must be a port, 1-65535)"],
            id="port missing",
        ),
        pytest.param(
            api_service(type="NodePort", ports=[{"port": 80, "nodePort": 70000}]),
            [P + "spec.ports[0].nodePort: 70000 is not a port (1-65535)"],
            id="node port out of range",
        ),
        pytest.param(
            api_service(ports=[{"port": 80, "nodePort": 30080}]),
            [P + "spec.ports[0].nodePort: 30080: a ClusterIP Service has none"],
            id="node port on a ClusterIP Service",
        ),
        pytest.param(
            api_service(ports=[{"port": 80, "protocol": "ICMP"}]),
            [P + 'spec.ports[0].protocol: "ICMP" is not a protocol (TCP, UDP, SCTP)'],
            id="bad protocol",
        ),
        pytest.param(
            api_service(ports=[]),
            [P + "spec.ports: missing (a Service with a cluster IP needs a port)"],
            id="no ports",
        ),
        pytest.param(
            api_service(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}]),
            [P + 'spec.ports[1].name: "a" names an earlier port too'],
            id="duplicate port name",
        ),
        pytest.param(
            api_service(ports=[{"name": "a", "port": 80}, {"port": 81}]),
            [P + "spec.ports[1].name: missing (required when a Service has several ports)"],
            id="unnamed port among several",
        ),
        pytest.param(
            api_service(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
            [P + "spec.ports[1].port: 80/TCP is listed twice"],
            id="duplicate port",
        ),
        pytest.param(
            api_service(clusterIP="10.0.0.300"),
            [P + 'spec.clusterIP: "10.0.0.300" is not an IP address'],
            id="cluster IP not an IP",
        ),
        pytest.param(
            api_service(clusterIP=None, clusterIPs=["10.96.0.30", "10.0.0.300"]),
            [P + 'spec.clusterIPs[1]: "10.0.0.300" is not an IP address'],
            id="second cluster IP not an IP",
        ),
        pytest.param(
            api_service(clusterIPs=["10.96.0.31"]),
            [P + 'spec.clusterIP: "10.96.0.30" differs from spec.clusterIPs[0] "10.96.0.31"'],
            id="clusterIP and clusterIPs disagree",
        ),
        pytest.param(
            api_service(clusterIP=None, clusterIPs=["10.96.0.30", "10.96.0.31"]),
            [P + "spec.clusterIPs: two addresses of the same family (dual-stack)"],
            id="two IPv4 cluster IPs",
        ),
        pytest.param(
            api_service(clusterIP=None, clusterIPs=["10.96.0.30", "fd00::1", "10.96.0.31"]),
            [P + "spec.clusterIPs: at most two addresses (one IPv4, one IPv6)"],
            id="three cluster IPs",
        ),
        pytest.param(
            api_service(externalIPs=["example.com"]),
            [P + 'spec.externalIPs[0]: "example.com" is not an IP address'],
            id="external IP not an IP",
        ),
        pytest.param(
            api_service(externalIPs="203.0.113.7"),
            [P + 'spec.externalIPs: "203.0.113.7" is not a list'],
            id="external IPs not a list",
        ),
        pytest.param(
            api_service(type="Balanced"),
            [
                P + 'spec.type: "Balanced" is not one of ClusterIP, NodePort, LoadBalancer, '
                "ExternalName"
            ],
            id="bad type",
        ),
        pytest.param(
            api_service(
                sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86401}},
            ),
            [
                P + "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 86401 is not "
                "a timeout in seconds (1-86400)"
            ],
            id="affinity timeout too long",
        ),
        pytest.param(
            api_service(
                sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}},
            ),
            [
                P + "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is not "
                "a timeout in seconds (1-86400)"
            ],
            id="affinity timeout 0",
        ),
        pytest.param(
            api_service(sessionAffinity="Cookie"),
            [P + 'spec.sessionAffinity: "Cookie" is not one of None, ClientIP'],
            id="bad affinity",
        ),
        pytest.param(
            api_service(externalTrafficPolicy="Nearby"),
            [P + 'spec.externalTrafficPolicy: "Nearby" is not one of Cluster, Local'],
            id="bad traffic policy",
        ),
        pytest.param(
            api_service(loadBalancerSourceRanges=["192.0.2.0/33"]),
            [P + 'spec.loadBalancerSourceRanges[0]: "192.0.2.0/33" is not a CIDR'],
            id="bad source range",
        ),
        pytest.param(
            api_service(healthCheckNodePort=-1),
            [P + "spec.healthCheckNodePort: -1 is not a port (1-65535)"],
            id="bad health check port",
        ),
        pytest.param(
            {**api_service(), "status": {"loadBalancer": {"ingress": [{"ip": "lb"}]}}},
            [P + 'status.loadBalancer.ingress[0].ip: "lb" is not an IP address'],
            id="bad load-balancer IP",
        ),
        pytest.param(
            with_metadata(namespace="shop"),
            ["Service shop/(unnamed): metadata.name: missing"],
            id="no name",
        ),
        pytest.param(
            with_metadata(name="api", namespace=7),
            [P.replace("shop", "default") + "metadata.namespace: 7 is not a namespace name"],
            id="namespace not a string",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}},
            [
                "Service default/api: spec: missing",
            ],
            id="no spec",
        ),
        pytest.param(
            api_service(ports=[{"port": 0, "protocol": "ICMP"}], clusterIP="x"),
            [
                P + 'spec.clusterIP: "x" is not an IP address',
                P + 'spec.ports[0].protocol: "ICMP" is not a protocol (TCP, UDP, SCTP)',
                P + "spec.ports[0].port: 0 is not a port (1-65535)",
            ],
            id="every problem at once",
        ),
    ],
)
def test_every_problem_is_one_line_naming_object_field_and_value(
    obj: dict[str, Any], messages: list[str]
) -> None:
    assert problems(obj) == messages
    assert all("\n" not in message for message in messages)


def test_an_annotation_that_is_not_text_is_a_problem() -> None:
    obj = api_service()
    obj["metadata"]["annotations"] = {"ipvsctl.io/scheduler": 5}
    assert problems(obj) == [P + 'metadata.annotations["ipvsctl.io/scheduler"]: 5 is not a string']


def test_conversion_does_not_change_the_object() -> None:
    obj = api_service(externalIPs=["203.0.113.7"])
    before = copy.deepcopy(obj)
    converted(obj)
    assert obj == before


# --- spec.ipFamilies --------------------------------------------------------------------


def test_ip_families_are_read_in_order() -> None:
    from socket import AF_INET, AF_INET6

    service = converted(
        api_service(
            clusterIPs=["fd00::30", "10.96.0.30"], clusterIP="fd00::30", ipFamilies=["IPv6", "IPv4"]
        )
    )
    assert service.ip_families == (AF_INET6, AF_INET)


def test_a_cluster_ip_of_a_family_ip_families_does_not_give_it_is_refused() -> None:
    assert problems(api_service(clusterIP="fd00::20", ipFamilies=["IPv4"])) == [
        "Service shop/api: spec.clusterIP: fd00::20 is IPv6, but spec.ipFamilies[0] is IPv4"
    ]


def test_a_second_cluster_ip_without_a_family_is_refused() -> None:
    obj = api_service(clusterIPs=["10.96.0.30", "fd00::30"], ipFamilies=["IPv4"])
    assert problems(obj) == [
        "Service shop/api: spec.clusterIPs[1]: fd00::30 is IPv6, and spec.ipFamilies has no"
        " family for it"
    ]


def test_an_unknown_or_repeated_ip_family_names_its_index() -> None:
    assert problems(api_service(ipFamilies=["IPv4", "IPv4"])) == [
        'Service shop/api: spec.ipFamilies[1]: "IPv4" is listed twice'
    ]
    assert problems(api_service(ipFamilies=["IPv5"])) == [
        'Service shop/api: spec.ipFamilies[0]: "IPv5" is not one of IPv4, IPv6'
    ]
