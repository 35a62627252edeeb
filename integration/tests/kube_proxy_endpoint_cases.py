"""kube-proxy's IPVS expectations, part two: which endpoints serve (session
affinity, terminating endpoints, traffic policies), multi-port and multi-slice
Services, headless and ExternalName Services, and excluded CIDRs
(pkg/proxy/ipvs/proxier_test.go).

Several Go tests here give a Service port no number (`Port: 0`, which the API
server refuses) and a target port of 80; port 80 stands for it, as their real
servers are on 80.
"""

from __future__ import annotations

from integration.tests.kube_proxy_cases import EXCLUDE_CIDRS, LOCAL_FALLBACK
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
VIP = "172.20.1.1"
# The port of the Go tests' unnamed, numberless Service port (see above).
UNNAMED = Port("", 80)
PORT_ZERO = "Service port 0 (refused by the API server) is 80 here"


def ready(address: str, node: str) -> Endpoint:
    return Endpoint(address, node, ready=True)


def conditions(address: str, node: str, ready: bool, serving: bool, terminating: bool) -> Endpoint:
    return Endpoint(address, node, ready, serving, terminating)


def reals(*hosts: int) -> list[str]:
    """10.0.1.HOST:80, the endpoints of the Go tests that use 172.20.1.1."""
    return [f"10.0.1.{host}:80" for host in hosts]


def svc1_slice(*members: Endpoint, port: Port = UNNAMED) -> Manifest:
    return endpoint_slice(NS, SVC, Slice(members, ports=(port,)))


def _affinity_and_e2e() -> list[Case]:
    return [
        Case(
            "TestSessionAffinity",
            "",
            (
                service(
                    NS,
                    SVC,
                    ["10.20.30.41"],
                    [Port("p80", 80, node_port=3001)],
                    kind="NodePort",
                    external_ips=["50.60.70.81"],
                    affinity_timeout=10800,
                ),
            ),
            table(
                vs("TCP", "10.20.30.41", 80, persistent=10800),
                vs("TCP", "50.60.70.81", 80, persistent=10800),
                vs("TCP", "100.101.102.103", 3001, persistent=10800),
            ),
            node_addresses=("100.101.102.103/32",),
        ),
        Case(
            "TestEndpointSliceE2E",
            "",
            (
                service(NS, SVC, [VIP], [UNNAMED]),
                svc1_slice(
                    ready("10.0.1.1", TEST_HOSTNAME),
                    ready("10.0.1.2", "node2"),
                    ready("10.0.1.3", "node3"),
                    Endpoint("10.0.1.4", "node3", ready=False),
                ),
            ),
            vs("TCP", VIP, 80, reals(1, 2, 3)),
            adapted=PORT_ZERO,
        ),
    ]


def _internal_traffic_policy() -> list[Case]:
    here = (
        ready("10.0.1.1", TEST_HOSTNAME),
        ready("10.0.1.2", "host1"),
        ready("10.0.1.3", "host2"),
    )
    away = (ready("10.0.1.1", "host0"), *here[1:])
    return [
        Case(
            "TestTestInternalTrafficPolicyE2E",
            f"internalTrafficPolicy is {policy} with {count} local endpoints",
            (service(NS, SVC, [VIP], [UNNAMED], internal_local=local), svc1_slice(*members)),
            vs("TCP", VIP, 80, expected),
            adapted=PORT_ZERO,
        )
        for policy, local, count, members, expected in (
            ("cluster", False, "non-zero", here, reals(1, 2, 3)),
            ("cluster", False, "zero", away, reals(1, 2, 3)),
            ("local", True, "non-zero", here, reals(1)),
            # kube-proxy's fallback to the cluster's endpoints (kubernetes#97081)
            # needs a Cluster policy somewhere: a ClusterIP Service has none.
            ("local", True, "zero", away, []),
        )
    ]


def _terminating() -> list[Case]:
    """Test_EndpointSlice*: a NodePort Service without a nodePort, external IP 1.2.3.4."""
    mixed = (
        conditions("10.0.1.1", TEST_HOSTNAME, True, True, False),
        conditions("10.0.1.2", TEST_HOSTNAME, True, True, False),
        conditions("10.0.1.3", TEST_HOSTNAME, False, True, True),
        conditions("10.0.1.4", TEST_HOSTNAME, False, False, True),
        conditions("10.0.1.5", "another-host", True, True, False),
    )
    only_terminating = (
        conditions("10.0.1.1", TEST_HOSTNAME, False, True, True),
        conditions("10.0.1.2", TEST_HOSTNAME, False, True, True),
        conditions("10.0.1.3", TEST_HOSTNAME, False, False, True),
        conditions("10.0.1.4", "another-host", False, True, True),
    )
    cases = []
    for name, members, local, cluster_reals, external_reals in (
        ("Test_EndpointSliceReadyAndTerminatingCluster", mixed, False, (1, 2, 5), (1, 2, 5)),
        ("Test_EndpointSliceReadyAndTerminatingLocal", mixed, True, (1, 2, 5), (1, 2)),
        (
            "Test_EndpointSliceOnlyReadyAndTerminatingCluster",
            (*only_terminating, conditions("10.0.1.5", "another-host", False, False, False)),
            False,
            (1, 2, 4),
            (1, 2, 4),
        ),
        (
            "Test_EndpointSliceOnlyReadyAndTerminatingLocal",
            (*only_terminating, conditions("10.0.1.5", "another-host", True, True, False)),
            True,
            (5,),
            (1, 2),
        ),
    ):
        svc = service(
            NS,
            SVC,
            [VIP],
            [UNNAMED],
            kind="NodePort",
            external_ips=["1.2.3.4"],
            external_local=local,
        )
        cases.append(
            Case(
                name,
                "",
                (svc, svc1_slice(*members)),
                table(
                    vs("TCP", VIP, 80, reals(*cluster_reals)),
                    vs("TCP", "1.2.3.4", 80, reals(*external_reals)),
                ),
                adapted=PORT_ZERO,
            )
        )
    return cases


def _no_endpoints_metric() -> list[Case]:
    """TestNoEndpointsMetric: node 10.0.0.1, NodePort 30000 when an external policy is set."""
    here = (
        ready("10.0.1.1", TEST_HOSTNAME),
        ready("10.0.1.2", "host1"),
        ready("10.0.1.3", "host2"),
    )
    away = (ready("10.0.1.1", "host0"), *here[1:])
    cases = []
    for name, internal, external, members, cluster, node_port in (
        ("internalTrafficPolicy is set and there are local endpoints", True, None, here, (1,), ()),
        (
            "externalTrafficPolicy is set and there are local endpoints",
            False,
            True,
            here,
            (1, 2, 3),
            (1,),
        ),
        ("both policies are set and there are local endpoints", True, True, here, (1,), (1,)),
        ("internalTrafficPolicy is set and there are no local endpoints", True, None, away, (), ()),
        (
            "externalTrafficPolicy is set and there are no local endpoints",
            False,
            True,
            away,
            (1, 2, 3),
            (1, 2, 3),
        ),
        ("Both policies are set and there are no local endpoints", True, True, away, (), ()),
        ("Both policies are set and there are no endpoints at all", True, True, (), (), ()),
    ):
        port = Port("p80", 80, node_port=30000 if external else None)
        servers = [vs("TCP", VIP, 80, reals(*cluster))]
        if external:
            servers.append(vs("TCP", "10.0.0.1", 30000, reals(*node_port)))
        needs_fallback = external and not internal and members is away
        cases.append(
            Case(
                "TestNoEndpointsMetric",
                name,
                (
                    service(
                        NS,
                        SVC,
                        [VIP],
                        [port],
                        kind="NodePort" if external else "ClusterIP",
                        internal_local=internal,
                        external_local=bool(external),
                    ),
                    svc1_slice(*members, port=Port("p80", 80)),
                ),
                table(*servers),
                node_addresses=("10.0.0.1/32",),
                differs=LOCAL_FALLBACK if needs_fallback else None,
                adapted=""
                if external
                else "the ClusterIP Service's nodePort (refused by the API server) is left out",
            )
        )
    return cases


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
            differs=EXCLUDE_CIDRS,
            adapted="its virtual server on kube-ipvs0 is made with ip and ipvsadm; one Service "
            "(ns1/svc1, no endpoints) is in the input so that apply syncs at all",
        ),
    ]


CASES: tuple[Case, ...] = (
    *_affinity_and_e2e(),
    *_internal_traffic_policy(),
    *_terminating(),
    *_no_endpoints_metric(),
    *_service_maps(),
    *_endpoints_maps(),
    *_excluded_cidrs(),
)
