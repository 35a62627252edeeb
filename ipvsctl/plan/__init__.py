"""Plan: desired state vs what the node has -> the ordered changes that close the gap. Pure.

`plan_node` builds a whole `Plan`; `plan_ipvs_changes`, `plan_addresses` and
`plan_sysctls` are its parts.
"""

from ipvsctl.plan.foreign_addresses import (
    AddressConflict,
    withhold_foreign_addresses,
    without_foreign_addresses,
)
from ipvsctl.plan.ipvs_changes import plan_ipvs_changes
from ipvsctl.plan.node_plan import (
    DEFAULT_INTERFACE,
    AddressPlan,
    NodeFacts,
    Plan,
    plan_addresses,
    plan_node,
    plan_sysctls,
    plan_timeouts,
)
from ipvsctl.plan.ownership import Ownership, excluded_networks, nodeport_keys_to_record
from ipvsctl.plan.real_servers import RealServerKey, drains_gracefully, plan_real_servers

__all__ = [
    "DEFAULT_INTERFACE",
    "AddressConflict",
    "AddressPlan",
    "NodeFacts",
    "Ownership",
    "Plan",
    "RealServerKey",
    "drains_gracefully",
    "excluded_networks",
    "nodeport_keys_to_record",
    "plan_addresses",
    "plan_ipvs_changes",
    "plan_node",
    "plan_real_servers",
    "plan_sysctls",
    "plan_timeouts",
    "withhold_foreign_addresses",
    "without_foreign_addresses",
]
