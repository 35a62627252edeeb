"""Reconcile: read the node, plan against the desired state, carry the plan out.

The one place that joins the pure rooms (translate, plan) to the I/O rooms
(kernel, links, state). `apply -f` uses it once; the node agent will use it
on every change.
"""

from ipvsctl.reconcile.node_reconcile import (
    EngineOptions,
    OptionError,
    Outcome,
    cleanup,
    reconcile_manifests,
)

__all__ = ["EngineOptions", "OptionError", "Outcome", "cleanup", "reconcile_manifests"]
