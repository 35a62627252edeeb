"""Netfilter: what IPVS cannot do alone, in one nftables table of ipvsctl's own.

Masquerade (NodePorts, external and load-balancer IPs of Cluster-policy
Services, ClusterIP traffic from outside the cluster CIDR), hairpin,
loadBalancerSourceRanges and the service-IP port filter, as kube-proxy's IPVS
mode does them with iptables and ipsets, but in `table inet ipvsctl`:

- `desired`: the set elements the desired IPVS state implies (pure);
- `ruleset`: the table's chains, rules and sets, fixed for given options (pure);
- `table_state`: what the table holds, from `nft -j list` (pure);
- `transaction`: plans, `nft -f -` transactions and plan lines (pure);
- `nft`: running the `nft` command (the only I/O here).
"""

from ipvsctl.netfilter.desired import (
    Element,
    ElementTally,
    NetfilterOptions,
    desired_elements,
    virtual_server_elements,
)
from ipvsctl.netfilter.nft import NetfilterError, NftTable, Support
from ipvsctl.netfilter.ruleset import FAMILY, TABLE, StaticRuleset, static_ruleset
from ipvsctl.netfilter.table_state import ABSENT, TableState, parse_listing
from ipvsctl.netfilter.transaction import (
    ElementChanges,
    NetfilterPlan,
    create_transaction,
    delete_transaction,
    element_changes,
    plan_cleanup,
    plan_lines,
    plan_steps,
    plan_table,
    transaction,
    update_transaction,
)

__all__ = [
    "ABSENT",
    "FAMILY",
    "TABLE",
    "Element",
    "ElementChanges",
    "ElementTally",
    "NetfilterError",
    "NetfilterOptions",
    "NetfilterPlan",
    "NftTable",
    "StaticRuleset",
    "Support",
    "TableState",
    "create_transaction",
    "delete_transaction",
    "desired_elements",
    "element_changes",
    "parse_listing",
    "plan_cleanup",
    "plan_lines",
    "plan_steps",
    "plan_table",
    "static_ruleset",
    "transaction",
    "update_transaction",
    "virtual_server_elements",
]
