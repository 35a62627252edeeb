"""kube-proxy's IPVS expectations, part three: multi-port and multi-slice Services,
headless and ExternalName Services, and excluded CIDRs
(pkg/proxy/ipvs/proxier_test.go).
"""

from __future__ import annotations

from integration.tests.kube_proxy_objects import (
    TEST_HOSTNAME,
    Case,
    Endpoint,
    Manifest,
    Port,
    Slice,
    endpoint_slice,
    endpoints,
    service,
    table,
    vs,
)

NS, SVC = "ns1", "svc1"


def _service_maps() -> list[Case]:
    """Multi-port Services; those that get no virtual server at all."""
    udp, sctp = "UDP", "SCTP"
    somewhere = (
        service(
            "somewhere-else",
            "cluster-ip",
            ["172.16.55.4"],
            [
                Port("something", 1234, udp),
                Port("somethingelse", 1235, udp),
                Port("somesctp", 1236, sctp),
            ],
        ),
        service(
            "somewhere-else",
            "node-port",
            ["172.16.55.10"],
            [
                Port("blahblah", 345, udp, node_port=678),
                Port("moreblahblah", 344, node_port=677),
                Port("sctpblah", 343, sctp, node_port=676),
            ],
            kind="NodePort",
        ),
        service(
            "somewhere",
            "load-balancer",
            ["172.16.55.11"],
            [
                Port("foobar", 8675, udp, node_port=30061, target=7000),
                Port("baz", 8676, udp, node_port=30062, target=7001),
                Port("sctpfoo", 8677, sctp, node_port=30063, target=7002),
            ],
            kind="LoadBalancer",
            ingress=[{"ip": "10.1.2.4"}],
            spec={"loadBalancerIP": "5.6.7.8"},
        ),
        service(
            "somewhere",
            "only-local-load-balancer",
            ["172.16.55.12"],
            [
                Port("foobar2", 8677, udp, node_port=30063, target=7002),
                Port("baz", 8678, udp, node_port=30064, target=7003),
                Port("sctpbaz", 8679, sctp, node_port=30065, target=7004),
            ],
            kind="LoadBalancer",
            ingress=[{"ip": "10.1.2.3"}],
            external_local=True,
            spec={"loadBalancerIP": "5.6.7.8", "healthCheckNodePort": 345},
        ),
    )
    port1, port2 = Port("port1", 1234), Port("port2", 1235)
    return [
        Case(
            "TestBuildServiceMapAddRemove",
            "",
            somewhere,
            table(
                vs(udp, "172.16.55.4", 1234),
                vs(udp, "172.16.55.4", 1235),
                vs(sctp, "172.16.55.4", 1236),
                vs(udp, "172.16.55.10", 345),
                vs("TCP", "172.16.55.10", 344),
                vs(sctp, "172.16.55.10", 343),
                *(
                    vs(p, ip, n)
                    for ip in ("172.16.55.11", "10.1.2.4")
                    for p, n in ((udp, 8675), (udp, 8676), (sctp, 8677))
                ),
                *(
                    vs(p, ip, n)
                    for ip in ("172.16.55.12", "10.1.2.3")
                    for p, n in ((udp, 8677), (udp, 8678), (sctp, 8679))
                ),
            ),
            adapted="the Go test counts the 12 service ports; the table is what syncProxyRules "
            "programs for them on a node without addresses. The ClusterIP Service's nodePorts "
            "(refused by the API server) are left out",
        ),
        Case(
            "TestMultiPortServiceBindAddr",
            "service1, two TCP ports",
            (service(NS, SVC, ["172.16.55.4"], [port1, port2]),),
            table(vs("TCP", "172.16.55.4", 1234), vs("TCP", "172.16.55.4", 1235)),
        ),
        Case(
            "TestMultiPortServiceBindAddr",
            "service3, two TCP ports and a UDP one",
            (service(NS, SVC, ["172.16.55.4"], [port1, port2, Port("port3", 1236, udp)]),),
            table(
                vs("TCP", "172.16.55.4", 1234),
                vs("TCP", "172.16.55.4", 1235),
                vs(udp, "172.16.55.4", 1236),
            ),
        ),
        Case(
            "TestBuildServiceMapServiceHeadless",
            "",
            (
                service("somewhere-else", "headless", ["None"], [Port("rpc", 1234, udp)]),
                service("somewhere-else", "headless-without-port", ["None"], []),
                service("somewhere-else", "headless-sctp", ["None"], [Port("sip", 1235, sctp)]),
            ),
            (),
        ),
        Case(
            "TestBuildServiceMapServiceTypeExternalName",
            "",
            (
                service(
                    "somewhere-else",
                    "external-name",
                    ["172.16.55.4"],
                    [Port("blah", 1235, udp)],
                    kind="ExternalName",
                    spec={"externalName": "foo2.bar.com"},
                ),
            ),
            (),
            adapted="its nodePort (refused by the API server on an ExternalName Service) is "
            "left out; its cluster IP, which kube-proxy must ignore, is kept",
        ),
    ]


def _endpoints_maps() -> list[Case]:
    """Test_updateEndpointsMap checks the endpoints map of Services it never makes: here
    each expected service port becomes a UDP Service port of the same number, and its
    expected endpoints the real servers."""
    udp = "UDP"

    def ports(*numbers: int) -> tuple[Port, ...]:
        return tuple(Port(f"p{n}", n, udp) for n in numbers)

    def one_slice(
        ns: str, name: str, number: int, members: tuple[Endpoint, ...], *n: int
    ) -> Manifest:
        return endpoint_slice(ns, name, Slice(members, ports=ports(*n), number=number))

    local = TEST_HOSTNAME
    return [
        Case(
            "Test_updateEndpointsMap",
            "no change, multiple endpoints, subsets, IPs, and ports",
            (
                service("ns1", "ep1", ["172.16.1.1"], ports(11, 12, 13, 14)),
                service("ns2", "ep2", ["172.16.2.2"], ports(21, 22)),
                one_slice(
                    "ns1",
                    "ep1",
                    1,
                    (*endpoints("1.1.1.1"), *endpoints("1.1.1.2", node=local)),
                    11,
                    12,
                ),
                one_slice(
                    "ns1",
                    "ep1",
                    2,
                    (*endpoints("1.1.1.3"), *endpoints("1.1.1.4", node=local)),
                    13,
                    14,
                ),
                one_slice(
                    "ns2",
                    "ep2",
                    1,
                    (*endpoints("2.2.2.1"), *endpoints("2.2.2.2", node=local)),
                    21,
                    22,
                ),
            ),
            table(
                *(vs(udp, "172.16.1.1", n, [f"1.1.1.1:{n}", f"1.1.1.2:{n}"]) for n in (11, 12)),
                *(vs(udp, "172.16.1.1", n, [f"1.1.1.3:{n}", f"1.1.1.4:{n}"]) for n in (13, 14)),
                *(vs(udp, "172.16.2.2", n, [f"2.2.2.1:{n}", f"2.2.2.2:{n}"]) for n in (21, 22)),
            ),
            adapted="Services added (see _endpoints_maps)",
        ),
        Case(
            "Test_updateEndpointsMap",
            "complex add and remove",
            (
                service("ns1", "ep1", ["172.16.1.1"], ports(11, 12, 122)),
                service("ns3", "ep3", ["172.16.3.3"], ports(33)),
                service("ns4", "ep4", ["172.16.4.4"], ports(44)),
                one_slice("ns1", "ep1", 1, endpoints("1.1.1.1", "1.1.1.11"), 11),
                one_slice("ns1", "ep1", 2, endpoints("1.1.1.2"), 12, 122),
                one_slice("ns3", "ep3", 1, endpoints("3.3.3.3"), 33),
                one_slice("ns4", "ep4", 1, endpoints("4.4.4.4", node=local), 44),
            ),
            table(
                vs(udp, "172.16.1.1", 11, ["1.1.1.1:11", "1.1.1.11:11"]),
                vs(udp, "172.16.1.1", 12, ["1.1.1.2:12"]),
                vs(udp, "172.16.1.1", 122, ["1.1.1.2:122"]),
                vs(udp, "172.16.3.3", 33, ["3.3.3.3:33"]),
                vs(udp, "172.16.4.4", 44, ["4.4.4.4:44"]),
            ),
            adapted="the slices after the change (complexAfter); Services added (see "
            "_endpoints_maps)",
        ),
    ]


def _excluded_cidrs() -> list[Case]:
    virtual = ("-u", "4.4.4.4:56")
    return [
        Case(
            "TestCleanLegacyRealServersExcludeCIDRs",
            "",
            (service(NS, SVC, ["10.20.30.41"]),),
            table(
                vs("UDP", "4.4.4.4", 56, ["10.10.10.10:56", "11.11.11.11:56"], weight=0),
                vs("TCP", "10.20.30.41", 80),
            ),
            before=(
                ("ip", "link", "add", "kube-ipvs0", "type", "dummy"),
                ("ip", "addr", "add", "4.4.4.4/32", "dev", "kube-ipvs0"),
                ("ipvsadm", "-A", *virtual, "-s", "rr"),
                ("ipvsadm", "-a", *virtual, "-r", "10.10.10.10:56", "-m", "-w", "0"),
                ("ipvsadm", "-a", *virtual, "-r", "11.11.11.11:56", "-m", "-w", "0"),
            ),
            flags=("--ipvs-exclude-cidrs", "4.4.4.4/32"),
            adapted="its virtual server on kube-ipvs0 is made with ip and ipvsadm; one Service "
            "(ns1/svc1, no endpoints) is in the input so that apply syncs at all",
        ),
    ]


CASES: tuple[Case, ...] = (*_service_maps(), *_endpoints_maps(), *_excluded_cidrs())
