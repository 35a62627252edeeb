"""Benchmark: the engine's pure half (translate + plan) on a large cluster, natively.

No kernel needed: it runs on the host. For N Services x M endpoints it
measures, in CPU time (best of several runs):

- parse: reading the manifests' YAML into input values (`read_manifests`);
- translate: input values -> desired state;
- plan (converged): desired state against a kernel table that already holds it
  (what every resync of an unchanged cluster costs);
- plan (one endpoint added): the same with one Service grown by one endpoint,
  and the number of IPVS operations it plans (must be 1).

    .venv/bin/python -m integration.benchmarks.bench_plan --services 10000 --endpoints 10

Prints the figures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from integration.benchmarks.cluster_manifests import manifests
from ipvsctl.model import (
    RealServer,
    RealServerEntry,
    ServiceKey,
    VirtualServer,
    VirtualServerEntry,
)
from ipvsctl.model.desired import DesiredState, TranslateConfig
from ipvsctl.plan import NodeFacts, plan_node
from ipvsctl.reconcile.one_shot import ManifestSource
from ipvsctl.reconcile.wanted_services import WantedServices
from ipvsctl.sources import read_manifests
from ipvsctl.translate import translate

T = TypeVar("T")


def best_cpu(action: Callable[[], T], runs: int) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.process_time()
        result = action()
        best = min(best, time.process_time() - start)
    assert result is not None
    return best, result


def kernel_table(desired: DesiredState) -> tuple[VirtualServerEntry, ...]:
    """The table the kernel would dump once `desired` is applied (newest real server first)."""
    # Copies, as a dump decodes them: equal to the desired values but not the same
    # objects, so the planner compares them field by field as it does on a node.
    return tuple(
        VirtualServerEntry(
            VirtualServer(ServiceKey(*vs.key), *vs.service[1:]),
            real_servers=tuple(
                RealServerEntry(RealServer(*rs)) for rs in reversed(vs.real_servers)
            ),
        )
        for vs in desired.virtual_servers
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    text = manifests(args.services, args.endpoints)
    grown = manifests(args.services, args.endpoints, grown=args.services // 2)
    parse, inputs = best_cpu(
        lambda: read_manifests(["-"], io.StringIO(text)), max(1, args.runs // 2)
    )
    assert not inputs.errors, inputs.errors[:3]
    grown_inputs = read_manifests(["-"], io.StringIO(grown))
    gc.disable()  # as `ipvsctl apply` does once its inputs are read
    config = TranslateConfig(node_name="node-1")

    translating, desired = best_cpu(
        lambda: translate(inputs.services, inputs.slices, config), args.runs
    )

    def wanted() -> DesiredState:
        services = WantedServices(config)
        services.retranslate_all(ManifestSource(inputs), config)
        return services.desired()

    # What `apply` and `run` translate with: the same rules, plus each Service's record.
    engine_translating, engine_desired = best_cpu(wanted, args.runs)
    assert engine_desired.addresses == desired.addresses
    facts = NodeFacts(
        virtual_servers=kernel_table(desired),
        bound_addresses=desired.addresses,
        interface_exists=True,
    )
    planning, plan = best_cpu(lambda: plan_node(desired, facts), args.runs)
    assert plan.is_empty, "a converged table planned changes"

    def grown_plan() -> int:
        return len(
            plan_node(translate(grown_inputs.services, grown_inputs.slices, config), facts).ipvs
        )

    both, operations = best_cpu(grown_plan, args.runs)
    objects = len(desired.virtual_servers) + sum(
        len(vs.real_servers) for vs in desired.virtual_servers
    )
    print(f"{args.services} Services x {args.endpoints} endpoints ({objects} IPVS objects), CPU s")
    print(f"  parse YAML                      {parse:7.3f}")
    print(f"  translate                       {translating:7.3f}")
    print(f"  translate (the engine's record) {engine_translating:7.3f}")
    print(f"  plan, converged                 {planning:7.3f}")
    print(f"  translate + plan, converged     {translating + planning:7.3f}")
    print(f"  translate + plan, one endpoint  {both:7.3f}   ({operations} IPVS operation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
