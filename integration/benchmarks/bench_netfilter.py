"""Benchmark: ipvsctl's nftables table at cluster scale, in a kernel with IP nftables.

    python -m integration.kernel_lab --qemu -- \
        .venv/bin/python -m integration.benchmarks.bench_netfilter

A cluster of `--services` Services (a quarter NodePort, one in twenty a
LoadBalancer with loadBalancerSourceRanges) with `--endpoints` endpoints
each, one of them on this node, is translated as `apply` and `run` do. Then,
with the real `nft`:

- the cold transaction that makes the whole table (elements, bytes, seconds);
- reading it back (`nft -j list table`, parsed): what a full sync costs;
- one endpoint change as the agent plans it (`NetfilterSync.plan_changed`):
  a pod on another node (no element, no nft run) and a pod on this node
  (hairpin: one element), each carried out by `nft -f -`.

Prints figures; asserts nothing about speed. Under QEMU's TCG everything is
emulated: compare figures of one run with each other, not with other machines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from integration.kernel_lab.netns import in_initial_network_namespace
from ipvsctl.model import AF_INET, Protocol, ServiceKey
from ipvsctl.model.desired import DesiredVirtualServer, TranslateConfig
from ipvsctl.model.inputs import Endpoint, EndpointPort, EndpointSlice, Service, ServicePort
from ipvsctl.netfilter import (
    NetfilterOptions,
    NftTable,
    create_transaction,
    desired_elements,
    static_ruleset,
    transaction,
)
from ipvsctl.reconcile.netfilter_sync import NetfilterSync
from ipvsctl.translate import translate
from ipvsctl.translate.service import translate_service

NODE, OTHER = "node-a", "node-b"
CONFIG = TranslateConfig(node_name=NODE, node_addresses=("192.168.50.1",))
OPTIONS = NetfilterOptions(cluster_cidrs=("10.128.0.0/10",), node_addresses=frozenset())
TCP = int(Protocol.TCP)


def pod(index: int, endpoint: int) -> str:
    return f"10.{128 + index // 256 % 64}.{index % 256}.{endpoint + 1}"


def cluster_service(index: int) -> Service:
    ip = f"10.96.{index // 250}.{index % 250 + 1}"
    port = ServicePort("http", TCP, 80, node_port=30000 + index % 2768)
    if index % 20 == 0:
        return Service(
            "bench",
            f"svc-{index}",
            "LoadBalancer",
            (ip,),
            load_balancer_ips=(f"203.0.{index // 250 % 256}.{index % 250 + 1}",),
            ports=(port,),
            load_balancer_source_ranges=("192.168.0.0/16",),
        )
    kind = "NodePort" if index % 4 == 0 else "ClusterIP"
    return Service("bench", f"svc-{index}", kind, (ip,), ports=(port,))


def endpoints_of(index: int, endpoints: int, extra: tuple[str, str] | None = None) -> EndpointSlice:
    """`endpoints` pods, the first on this node; `extra`: one more (address, node)."""
    members = [Endpoint((pod(index, 0),), node_name=NODE)]
    members += [Endpoint((pod(index, j),), node_name=OTHER) for j in range(1, endpoints)]
    if extra is not None:
        members.append(Endpoint((extra[0],), node_name=extra[1]))
    port = (EndpointPort("http", TCP, 8080),)
    return EndpointSlice("bench", f"svc-{index}-1", f"svc-{index}", AF_INET, port, tuple(members))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def one_change(
    sync: NetfilterSync,
    wanted: dict[ServiceKey, DesiredVirtualServer],
    index: int,
    endpoints: int,
    extra: tuple[str, str],
) -> tuple[int, int, float]:
    """Add one endpoint to Service `index`: (elements changed, bytes, seconds of nft)."""
    service = cluster_service(index)
    translated, _ = translate_service(service, [endpoints_of(index, endpoints, extra)], CONFIG)
    for vs in translated:
        wanted[vs.key] = vs
    plan = sync.plan_changed([vs.key for vs in translated], wanted)
    text = transaction(plan)
    seconds = timed(lambda: sync.nft.apply(text)) if text else 0.0
    return len(plan.changes.add) + len(plan.changes.delete), len(text), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    if in_initial_network_namespace():
        # It deletes and rewrites `table inet ipvsctl`: on a node, the agent's own.
        parser.error("refusing to run in the host's network namespace: run it in the kernel lab")

    services = [cluster_service(i) for i in range(args.services)]
    slices = [endpoints_of(i, args.endpoints) for i in range(args.services)]
    started = time.perf_counter()
    desired = translate(services, slices, CONFIG)
    translate_s = time.perf_counter() - started
    started = time.perf_counter()
    elements = desired_elements(desired.virtual_servers, OPTIONS)
    elements_s = time.perf_counter() - started
    ruleset = static_ruleset(OPTIONS)
    text = create_transaction(ruleset, elements)

    nft = NftTable(timeout=600)
    nft.delete()
    cold_s = timed(lambda: nft.apply(text))
    read_s = timed(nft.read)
    print(
        f"services {args.services} x {args.endpoints} endpoints: "
        f"{len(desired.virtual_servers)} virtual servers, translate {translate_s:.2f} s"
    )
    print(f"table elements: {len(elements)} (computed in {elements_s:.2f} s)")
    print(
        f"cold transaction: {len(text.splitlines())} lines, {len(text) / 1e6:.2f} MB, "
        f"nft -f - {cold_s:.2f} s"
    )
    print(f"read back (nft -j list table + parse): {read_s:.2f} s")

    sync = NetfilterSync(nft, OPTIONS)
    started = time.perf_counter()
    plan = sync.plan_all(desired.virtual_servers)
    print(
        f"full-sync plan (read + diff): {time.perf_counter() - started:.2f} s, "
        f"{len(plan.changes.add) + len(plan.changes.delete)} element changes"
    )
    wanted = {vs.key: vs for vs in desired.virtual_servers}
    for label, node in (("pod on another node", OTHER), ("pod on this node", NODE)):
        sizes, lengths, seconds = [], [], []
        for change in range(args.changes):
            index = change * (args.services // args.changes)
            extra = (pod(index, args.endpoints + 1), node)
            size, length, took = one_change(sync, wanted, index, args.endpoints, extra)
            sizes.append(size)
            lengths.append(length)
            seconds.append(took)
        print(
            f"one endpoint change, {label}: elements {sorted(set(sizes))}, "
            f"transaction {max(lengths)} bytes, "
            f"nft median {statistics.median(seconds) * 1e3:.1f} ms "
            f"(max {max(seconds) * 1e3:.1f} ms) over {args.changes}"
        )
    nft.delete()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
