"""kube-proxy's IPVS expectations, part two: which endpoints serve (session
affinity, terminating endpoints, traffic policies)
(pkg/proxy/ipvs/proxier_test.go).

Several Go tests here give a Service port no number (`Port: 0`, which the API
server refuses) and a target port of 80; port 80 stands for it, as their real
servers are on 80.
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

                adapted=""
                if external
                else "the ClusterIP Service's nodePort (refused by the API server) is left out",
            )
        )
    return cases


CASES: tuple[Case, ...] = (
    *_affinity_and_e2e(),
    *_internal_traffic_policy(),
    *_terminating(),
    *_no_endpoints_metric(),
)
