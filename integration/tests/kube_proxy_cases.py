"""kube-proxy's IPVS expectations, part one: NodePorts, cluster IPs, external and
load-balancer IPs (pkg/proxy/ipvs/proxier_test.go).

kube-proxy's tests run one proxier per IP family; a dual-stack kube-proxy runs
one of each (the metaproxier) and programs the union. ipvsctl handles both
families at once, so each expectation here is that union: a single-stack
Service is ignored by the other family's proxier, so for it the union is the
Go test's own expectation.

`differs` names the entry of DIFFERENCES that explains why ipvsctl does not
(yet) make the expected table; those cases run as strict xfails.
"""

from __future__ import annotations

from typing import Any

from integration.tests.kube_proxy_objects import (
    OTHER_HOST,
    TEST_HOSTNAME,
    Case,
    Manifest,
    Port,
    Slice,
    endpoint_slice,
    endpoints,
    service,
    table,
    vs,
)

IPMODE_GATE = "ipmode-gate"
DIFFERENCES = {
    IPMODE_GATE: "documented difference (docs/services-to-ipvs.md, 'Where ipvsctl differs "
    "from kube-proxy'): no LoadBalancerIPMode feature gate, ipMode Proxy is always honoured",
}

NS, SVC, CLUSTER_IP = "ns1", "svc1", "10.20.30.41"
NODE4, NODE6 = "100.101.102.103", "2001:db8::1:1"
EP4, EP6 = "10.180.0.1", "1002:ab8::2:10"
NP80 = Port("p80", 80, node_port=3001)
UDP80 = Port("p80", 80, "UDP")


def svc1(cluster_ips: list[str] | None = None, **fields: Any) -> Manifest:
    """ns1/svc1, kube-proxy's usual Service, on 10.20.30.41 unless told."""
    return service(NS, SVC, cluster_ips or [CLUSTER_IP], **fields)


def slice1(*shape: Slice) -> tuple[Manifest, ...]:
    return tuple(endpoint_slice(NS, SVC, s) for s in shape)


V4_AND_V6_SLICES = slice1(Slice(endpoints(EP4)), Slice(endpoints(EP6), family="IPv6", number=2))
LOCAL_AND_REMOTE = endpoints(EP4, node=TEST_HOSTNAME) + endpoints("10.180.1.1", node=OTHER_HOST)


def _node_ports() -> list[Case]:
    sctp = Port("p80", 80, "SCTP", node_port=3001)
    three_v4 = (NODE4, "100.101.102.104", "100.101.102.105")
    return [
        Case(
            "TestNodePortIPv4",
            "1 service with node port, has 2 endpoints",
            (svc1(ports=[NP80], kind="NodePort"), *V4_AND_V6_SLICES),
            table(vs("TCP", CLUSTER_IP, 80, [f"{EP4}:80"]), vs("TCP", NODE4, 3001, [f"{EP4}:80"])),
            node_addresses=(f"{NODE4}/32", f"{NODE6}/128"),
        ),
        Case(
            "TestNodePortIPv4",
            "1 UDP service with node port, has endpoints",
            (
                svc1(ports=[Port("p80", 80, "UDP", node_port=3001)], kind="NodePort"),
                *slice1(Slice(endpoints(EP4), ports=(UDP80,))),
            ),
            table(vs("UDP", CLUSTER_IP, 80, [f"{EP4}:80"]), vs("UDP", NODE4, 3001, [f"{EP4}:80"])),
            node_addresses=(f"{NODE4}/32",),
            nodeport_addresses=("0.0.0.0/0",),
        ),
        Case(
            "TestNodePortIPv4",
            "service has node port but no endpoints",
            (svc1(ports=[NP80], kind="NodePort"),),
            table(vs("TCP", CLUSTER_IP, 80), vs("TCP", NODE4, 3001)),
            node_addresses=(f"{NODE4}/32",),
        ),
        Case(
            "TestNodePortIPv4",
            "node port service with protocol sctp on a node with multiple nodeIPs",
            (
                svc1(ports=[sctp], kind="NodePort"),
                *slice1(Slice(endpoints(EP4), ports=(Port("p80", 80, "SCTP"),))),
            ),
            table(
                vs("SCTP", CLUSTER_IP, 80, [f"{EP4}:80"]),
                *(vs("SCTP", ip, 3001, [f"{EP4}:80"]) for ip in three_v4),
            ),
            node_addresses=(
                *(f"{ip}/32" for ip in three_v4),
                *(f"2001:db8::1:{n}/128" for n in (1, 2, 3)),
            ),
        ),
        Case(
            "TestNodePortIPv4",
            "node port service with protocol sctp and externalTrafficPolicy local",
            (
                svc1(ports=[sctp], kind="NodePort", external_local=True),
                *slice1(
                    Slice(
                        endpoints(EP4, node=TEST_HOSTNAME)
                        + endpoints("10.180.1.1", node="otherHost"),
                        ports=(Port("p80", 80, "SCTP"),),
                    )
                ),
            ),
            table(
                vs("SCTP", CLUSTER_IP, 80, [f"{EP4}:80", "10.180.1.1:80"]),
                vs("SCTP", NODE4, 3001, [f"{EP4}:80"]),
            ),
            node_addresses=(f"{NODE4}/32",),
        ),
        Case(
            "TestNodePortIPv6",
            "1 service with node port, has 2 endpoints",
            (svc1(["2020::1"], ports=[NP80], kind="NodePort"), *V4_AND_V6_SLICES),
            table(vs("TCP", "2020::1", 80, [f"{EP6}:80"]), vs("TCP", NODE6, 3001, [f"{EP6}:80"])),
            node_addresses=(f"{NODE4}/32", f"{NODE6}/128"),
        ),
        Case(
            "TestNodePortIPv6",
            "service has node port but no endpoints",
            (svc1(["2020::1"], ports=[NP80], kind="NodePort"),),
            table(vs("TCP", "2020::1", 80), vs("TCP", NODE6, 3001)),
            node_addresses=(f"{NODE4}/32", f"{NODE6}/128"),
        ),
        Case(
            "TestNodePortIPv6",
            "node port service with protocol sctp on a node with multiple nodeIPs",
            (
                svc1(["2020::1"], ports=[sctp], kind="NodePort"),
                *slice1(
                    Slice(endpoints("2001::1"), ports=(Port("p80", 80, "SCTP"),), family="IPv6")
                ),
            ),
            table(
                *(
                    vs("SCTP", ip, port, ["2001::1:80"])
                    for ip, port in (
                        ("2001:db8::1:1", 3001),
                        ("2001:db8::1:2", 3001),
                        ("2020::1", 80),
                    )
                )
            ),
            node_addresses=("2001:db8::1:1/128", "2001:db8::1:2/128"),
        ),
        Case(
            "TestNodePortIPv4+TestNodePortIPv6",
            "1 service with node port, has 2 endpoints, the Service dual-stack",
            (
                svc1(
                    [CLUSTER_IP, "2020::1"],
                    ports=[NP80],
                    kind="NodePort",
                    spec={"ipFamilyPolicy": "RequireDualStack"},
                ),
                *V4_AND_V6_SLICES,
            ),
            table(
                vs("TCP", CLUSTER_IP, 80, [f"{EP4}:80"]),
                vs("TCP", NODE4, 3001, [f"{EP4}:80"]),
                vs("TCP", "2020::1", 80, [f"{EP6}:80"]),
                vs("TCP", NODE6, 3001, [f"{EP6}:80"]),
            ),
            node_addresses=(f"{NODE4}/32", f"{NODE6}/128"),
            adapted="the Go tests' Service is single-stack; here it has both cluster IPs, "
            "and the table is the union of the IPv4 and the IPv6 proxier's",
        ),
        Case(
            "TestOnlyLocalNodePorts",
            "",
            (
                svc1(ports=[NP80], kind="NodePort", external_local=True),
                *slice1(Slice(LOCAL_AND_REMOTE)),
            ),
            table(
                vs("TCP", CLUSTER_IP, 80, [f"{EP4}:80", "10.180.1.1:80"]),
                vs("TCP", NODE4, 3001, [f"{EP4}:80"]),
            ),
            node_addresses=(f"{NODE4}/24", "2001:db8::/64"),
            nodeport_addresses=("100.101.102.0/24",),
        ),
    ]


def _cluster_ips() -> list[Case]:
    two = (
        svc1(),
        service("ns2", "svc2", ["1002:ab8::2:1"], [Port("p8080", 8080)]),
        *slice1(Slice(endpoints(EP4))),
        endpoint_slice(
            "ns2",
            "svc2",
            Slice(endpoints("1009:ab8::5:6"), ports=(Port("p8080", 8080),), family="IPv6"),
        ),
    )
    return [
        Case(
            "TestIPv4Proxier+TestIPv6Proxier",
            "2 services with Cluster IP, each with endpoints",
            two,
            table(
                vs("TCP", CLUSTER_IP, 80, [f"{EP4}:80"]),
                vs("TCP", "1002:ab8::2:1", 8080, ["1009:ab8::5:6:8080"]),
            ),
            adapted="one input, two Go tests: the IPv4 proxier's table and the IPv6 "
            "proxier's, which a dual-stack kube-proxy programs together",
        ),
        Case(
            "TestIPv4Proxier",
            "cluster IP service with no endpoints",
            (svc1(),),
            vs("TCP", CLUSTER_IP, 80),
        ),
        Case(
            "TestIPv6Proxier",
            "cluster IP service with no endpoints",
            (svc1(["2001::1"]),),
            vs("TCP", "2001::1", 80),
        ),
    ]


def _external_ips() -> list[Case]:
    three = ["50.60.70.81", "2012::51", "127.0.0.1"]
    return [
        Case(
            "TestExternalIPsNoEndpoint",
            "",
            (svc1(external_ips=["50.60.70.81"]),),
            table(vs("TCP", CLUSTER_IP, 80), vs("TCP", "50.60.70.81", 80)),
        ),
        Case(
            "TestExternalIPs",
            "",
            # The slice's port is UDP, the Service's TCP: no endpoint serves it.
            (svc1(external_ips=three), *slice1(Slice(endpoints(EP4), ports=(UDP80,)))),
            table(
                vs("TCP", CLUSTER_IP, 80), vs("TCP", "50.60.70.81", 80), vs("TCP", "127.0.0.1", 80)
            ),
        ),
        Case(
            "TestOnlyLocalExternalIPs",
            "",
            (
                svc1(external_ips=three, kind="NodePort", external_local=True),
                *slice1(Slice(LOCAL_AND_REMOTE)),
            ),
            table(
                vs("TCP", CLUSTER_IP, 80, [f"{EP4}:80", "10.180.1.1:80"]),
                vs("TCP", "50.60.70.81", 80, [f"{EP4}:80"]),
                vs("TCP", "127.0.0.1", 80, [f"{EP4}:80"]),
            ),
            adapted="no nodePort, as in the Go test (its node has no address for one)",
        ),
    ]


def _load_balancers() -> list[Case]:
    lb = [{"ip": "1.2.3.4"}]
    cases = [
        Case(
            "TestLoadBalancer",
            "",
            (
                svc1(ports=[NP80], kind="LoadBalancer", ingress=lb),
                *slice1(Slice(endpoints(EP4), ports=(UDP80,))),
            ),
            table(vs("TCP", CLUSTER_IP, 80), vs("TCP", "1.2.3.4", 80)),
        ),
        Case(
            "TestLoadBalancerSourceRanges",
            "",
            (
                svc1(
                    kind="LoadBalancer",
                    ingress=lb,
                    spec={"loadBalancerSourceRanges": ["10.0.0.0/8"]},
                ),
                *slice1(Slice(endpoints(EP4))),
            ),
            table(
                vs("TCP", CLUSTER_IP, 80, [f"{EP4}:80"]), vs("TCP", "1.2.3.4", 80, [f"{EP4}:80"])
            ),
        ),
        Case(
            "TestOnlyLocalLoadBalancing",
            "",
            (
                svc1(ports=[NP80], kind="LoadBalancer", ingress=lb, external_local=True),
                *slice1(Slice(LOCAL_AND_REMOTE)),
            ),
            table(
                vs("TCP", CLUSTER_IP, 80, [f"{EP4}:80", "10.180.1.1:80"]),
                vs("TCP", "1.2.3.4", 80, [f"{EP4}:80"]),
            ),
        ),
        Case(
            "TestAcceptIPVSTraffic",
            "",
            (
                service(NS, "svc1", ["10.20.30.40"], external_ips=["5.6.7.8"]),
                service(
                    NS,
                    "svc2",
                    ["10.20.30.41"],
                    [Port("p80", 80, node_port=80)],
                    kind="LoadBalancer",
                    ingress=lb,
                ),
                service(
                    NS, "svc3", ["10.20.30.42"], [Port("p80", 80, node_port=80)], kind="NodePort"
                ),
            ),
            table(
                vs("TCP", "10.20.30.40", 80),
                vs("TCP", "5.6.7.8", 80),
                vs("TCP", "10.20.30.41", 80),
                vs("TCP", "1.2.3.4", 80),
                vs("TCP", "10.20.30.42", 80),
            ),
            adapted="the Go test checks iptables only; the table is what its syncProxyRules "
            "programs. Its ClusterIP Service's nodePort (refused by the API server) and its "
            "slices (labelled for no Service) are left out",
        ),
    ]
    for enabled, mode, number, expect_lb in (
        (True, "Proxy", 1, False),
        (True, "VIP", 2, True),
        (True, None, 3, True),
        (False, "Proxy", 1, True),
    ):
        vip, lb_ip = f"10.20.30.4{number}", f"1.2.3.{3 + number}"
        gate = "enabled" if enabled else "disabled"
        ingress = {"ip": lb_ip, **({"ipMode": mode} if mode else {})}
        servers = [vs("TCP", vip, 80, [f"{EP4}:80"])]
        if expect_lb:
            servers.append(vs("TCP", lb_ip, 80, [f"{EP4}:80"]))
        cases.append(
            Case(
                "TestLoadBalancerIngressRouteTypeProxy",
                f"LoadBalancerIPMode {gate}, ipMode {mode or 'nil'}",
                (
                    svc1([vip], ports=[NP80], kind="LoadBalancer", ingress=[ingress]),
                    *slice1(Slice(endpoints(EP4))),
                ),
                table(*servers),
                differs=None if enabled else IPMODE_GATE,
            )
        )
    return cases


CASES: tuple[Case, ...] = (*_node_ports(), *_cluster_ips(), *_external_ips(), *_load_balancers())
