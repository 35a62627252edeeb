"""translate: every Service into the whole desired state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ipvsctl.model import AF_INET, AF_INET6, Protocol
from ipvsctl.model.desired import DesiredState, TranslateConfig
from ipvsctl.model.inputs import (
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Service,
    ServicePort,
)
from ipvsctl.translate import index_slices, translate, translate_service

TCP, UDP = int(Protocol.TCP), int(Protocol.UDP)
CONFIG = TranslateConfig(node_name="node-1", node_addresses=("192.168.0.10",))


def service(name: str, address: str, **fields: object) -> Service:
    base = Service("shop", name, cluster_ips=(address,), ports=(ServicePort("http", TCP, 80),))
    return base._replace(**fields)  # type: ignore[arg-type]


def slice_for(name: str, *addresses: str) -> EndpointSlice:
    members = tuple(Endpoint((address,)) for address in addresses)
    return EndpointSlice(
        "shop", f"{name}-1", name, AF_INET, (EndpointPort("http", TCP, 8080),), members
    )


def test_translate_is_translate_service_per_service() -> None:
    services = [service("web", "10.96.0.20"), service("api", "10.96.0.30")]
    slices = [slice_for("web", "10.244.1.5"), slice_for("api", "10.244.2.7")]
    state = translate(services, slices, CONFIG)
    each = [translate_service(s, slices, CONFIG)[0] for s in sorted(services, key=lambda s: s.name)]
    assert state.virtual_servers == each[0] + each[1]
    assert state.errors == ()


def test_bound_addresses_are_service_ips_never_node_addresses() -> None:
    web = service(
        "web",
        "10.96.0.20",
        type="NodePort",
        external_ips=("192.168.0.10", "203.0.113.7"),
        ports=(ServicePort("http", TCP, 80, 30080),),
    )
    state = translate([web], [], CONFIG)
    assert state.addresses == frozenset({"10.96.0.20", "203.0.113.7"})
    assert len(state.virtual_servers) == 4


def test_an_invalid_service_is_skipped_and_the_others_kept() -> None:
    bad = service("bad", "10.96.0.40", annotations=(("ipvsctl.io/scheduler", "fastest"),))
    state = translate([bad, service("web", "10.96.0.20")], [], CONFIG)
    assert [server.owner for server in state.virtual_servers] == ["shop/web"]
    assert state.addresses == frozenset({"10.96.0.20"})
    assert [error.ref.name for error in state.errors] == ["bad"]


def test_a_virtual_server_two_services_claim_stays_with_the_first() -> None:
    first = service("a", "10.96.0.20", external_ips=("203.0.113.7",))
    second = service("b", "10.96.0.30", external_ips=("203.0.113.7",))
    state = translate([second, first], [], CONFIG)
    assert [(s.owner, s.key.address) for s in state.virtual_servers] == [
        ("shop/a", "10.96.0.20"),
        ("shop/a", "203.0.113.7"),
        ("shop/b", "10.96.0.30"),
    ]
    assert [str(error) for error in state.errors] == [
        "Service shop/b: spec: TCP 203.0.113.7:80 is Service shop/a's already; left to it"
    ]


def test_a_conflicting_ipv6_virtual_server_is_named_with_brackets() -> None:
    first = service("a", "fd00::20")
    second = service("b", "fd00::20")
    (error,) = translate([first, second], [], CONFIG).errors
    assert error.message == "TCP [fd00::20]:80 is Service shop/a's already; left to it"


def test_nothing_in_nothing_out() -> None:
    assert translate([], [], CONFIG) == DesiredState()


def test_slices_are_indexed_by_their_service() -> None:
    web, api = slice_for("web", "10.244.1.5"), slice_for("api", "10.244.2.7")
    assert index_slices([web, api]) == {("shop", "web"): [web], ("shop", "api"): [api]}


# --- properties ------------------------------------------------------------------------

octet = st.integers(1, 4)
pod_addresses = st.lists(st.builds("10.244.{}.{}".format, octet, octet), max_size=6)
pod6_addresses = st.lists(st.builds("fd00:10:244::{}".format, octet), max_size=3)
conditions = st.tuples(st.booleans(), st.booleans(), st.booleans())


@st.composite
def slices_of(draw: st.DrawFn, name: str) -> list[EndpointSlice]:
    found = []
    for index, (family, addresses) in enumerate(
        draw(
            st.lists(
                st.one_of(
                    st.tuples(st.just(AF_INET), pod_addresses),
                    st.tuples(st.just(AF_INET6), pod6_addresses),
                ),
                max_size=3,
            )
        )
    ):
        members = tuple(
            Endpoint(
                (address,), *draw(conditions), node_name=draw(st.sampled_from(["node-1", "node-2"]))
            )
            for address in addresses
        )
        ports = (
            EndpointPort("http", TCP, draw(st.sampled_from([8080, 8081]))),
            EndpointPort("dns", UDP, 53),
        )
        found.append(EndpointSlice("shop", f"{name}-{index}", name, family, ports, members))
    return found


@st.composite
def services_and_slices(draw: st.DrawFn) -> tuple[list[Service], list[EndpointSlice]]:
    services, slices = [], []
    for index in range(draw(st.integers(0, 4))):
        name = f"s{index}"
        cluster = draw(
            st.sampled_from(
                [("10.96.0.1",), (f"10.96.0.{index + 2}",), (f"10.96.0.{index + 2}", "fd00::1")]
            )
        )
        services.append(
            Service(
                "shop",
                name,
                type=draw(st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"])),
                cluster_ips=cluster,
                external_ips=tuple(
                    draw(st.lists(st.sampled_from(["203.0.113.7", "192.168.0.10"]), max_size=2))
                ),
                ports=(ServicePort("http", TCP, 80, 30000 + index), ServicePort("dns", UDP, 53)),
                internal_traffic_local=draw(st.booleans()),
                external_traffic_local=draw(st.booleans()),
            )
        )
        slices.extend(draw(slices_of(name)))
    return services, slices


@settings(max_examples=50, deadline=None)
@given(services_and_slices())
def test_translate_never_yields_a_key_or_a_real_server_twice(
    inputs: tuple[list[Service], list[EndpointSlice]],
) -> None:
    state = translate(*inputs, CONFIG)
    keys = [server.key for server in state.virtual_servers]
    assert len(keys) == len(set(keys))
    for server in state.virtual_servers:
        real_keys = [real.key for real in server.real_servers]
        assert real_keys == sorted(set(real_keys))


@settings(max_examples=50, deadline=None)
@given(services_and_slices())
def test_every_bound_address_is_a_virtual_servers_and_no_node_address(
    inputs: tuple[list[Service], list[EndpointSlice]],
) -> None:
    state = translate(*inputs, CONFIG)
    bound = {server.key.address for server in state.virtual_servers if server.bound}
    assert state.addresses == bound
    assert not state.addresses & set(CONFIG.node_addresses)


@settings(max_examples=50, deadline=None)
@given(services_and_slices())
def test_real_servers_are_of_the_virtual_servers_family(
    inputs: tuple[list[Service], list[EndpointSlice]],
) -> None:
    for server in translate(*inputs, CONFIG).virtual_servers:
        families = {AF_INET6 if ":" in real.address else AF_INET for real in server.real_servers}
        assert families <= {server.key.family}
