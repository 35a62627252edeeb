"""Reconcile: the one engine, which joins the pure rooms (translate, plan) to the I/O
rooms (kernel, links, netfilter, state) through narrow ports.

- `wanted_services`: what the Services want, translated once per change;
- `engine`: `NodeEngine`, planning against the kernel (a full sync) or against
  its copy of the table (one changed Service), and carrying the plan out;
- `carry_out`, `graceful`, `netfilter_sync`, `table_copy`, `node_facts`: its parts;
- `options`: the one options record, checked once;
- `ports`: the protocols of what the engine drives (IPVS, links, sysctls, nft, clock);
- `one_shot`: `apply`/`diff` (the engine seeded from a file, one full sync) and `cleanup`.

`ipvsctl run` feeds the same engine from the API watch and its timers (`ipvsctl.agent`).
"""

from ipvsctl.reconcile.one_shot import Outcome, cleanup, reconcile_manifests
from ipvsctl.reconcile.options import EngineOptions, OptionError
from ipvsctl.reconcile.ports import HOST, NodeAccess

__all__ = [
    "HOST",
    "EngineOptions",
    "NodeAccess",
    "OptionError",
    "Outcome",
    "cleanup",
    "reconcile_manifests",
]
