"""Translate (pure): Services and EndpointSlices into the desired IPVS state.

`translate_service` turns one Service into its virtual servers; `translate`
loops it over every Service. No I/O here: inputs in, `DesiredState` out.
"""

from ipvsctl.translate.scheduling import KNOWN_SCHEDULERS, scheduler_problem
from ipvsctl.translate.service import is_ours, service_warnings, translate_service
from ipvsctl.translate.table import conflict_error, index_slices, translate

__all__ = [
    "KNOWN_SCHEDULERS",
    "conflict_error",
    "index_slices",
    "is_ours",
    "scheduler_problem",
    "service_warnings",
    "translate",
    "translate_service",
]
