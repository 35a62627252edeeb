"""The engine run once: `apply -f` and `diff` (seeded from manifest files, one full
sync) and `cleanup` (everything ours removed).

Nothing is changed until every input is valid, and then only what the plan
says, in its order (see `ipvsctl.plan.node_plan`). The NodePort record is
locked from the first read to the last rewrite; it is written before the plan
runs, listing the keys already recorded and those about to be added, so that a
crash half-way still knows them for ours; after the plan it lists exactly the
desired ones (and any whose delete failed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, NamedTuple

from ipvsctl.links import LinkError
from ipvsctl.model.desired import DesiredState
from ipvsctl.model.inputs import EndpointSlice, Inputs, ObjectError, ObjectKey, Service
from ipvsctl.plan import Plan, nodeport_keys_to_record, plan_node
from ipvsctl.reconcile.carry_out import carry_out_netfilter, describe_all, without
from ipvsctl.reconcile.engine import NodeEngine
from ipvsctl.reconcile.node_facts import read_node_facts
from ipvsctl.reconcile.options import (
    EngineOptions,
    OptionError,
    check_interface,
    check_options,
    netfilter_options,
    translate_config,
)
from ipvsctl.reconcile.ports import HOST, Nft, NodeAccess, NodePorts
from ipvsctl.reconcile.scheduler_modules import unloadable_schedulers
from ipvsctl.reconcile.wanted_services import WantedServices
from ipvsctl.state.nodeport_record import NodeportRecord
from ipvsctl.translate import index_slices

if TYPE_CHECKING:
    from ipvsctl.netfilter import NetfilterPlan
    from ipvsctl.reconcile.netfilter_sync import NetfilterSync


class Outcome(NamedTuple):
    """What was done (the whole plan on a dry run; without the refused changes
    otherwise), the input problems that stopped it before anything changed,
    and one line per change the kernel refused. `netfilter` is the table's part
    (None: --no-netfilter, or its transaction was refused); `notes` are said on
    stderr and change nothing; `warnings` tell what was left out of Services that
    are served all the same (an address of another family; an address that holds
    virtual servers ipvsctl did not create): said on stderr, they stop nothing."""

    plan: Plan
    errors: tuple[ObjectError, ...] = ()
    failures: tuple[str, ...] = ()
    netfilter: NetfilterPlan | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[ObjectError, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.plan.is_empty and (self.netfilter is None or self.netfilter.is_empty)


class ManifestSource:
    """A manifest file's Services and EndpointSlices, as the engine reads a source."""

    def __init__(self, inputs: Inputs) -> None:
        self.services: Mapping[ObjectKey, Service] = {
            (service.namespace, service.name): service for service in inputs.services
        }
        self._slices = index_slices(inputs.slices)

    def slices_of(self, key: ObjectKey) -> Sequence[EndpointSlice]:
        return self._slices.get(key, ())


# The contract: an input with no Service at all deletes nothing unless asked for.
NO_SERVICE = (
    "no Service in the input: this would delete every virtual server and address "
    "ipvsctl owns; pass --allow-empty if that is meant (or run ipvsctl cleanup)"
)


def reconcile_manifests(
    inputs: Inputs,
    options: EngineOptions,
    *,
    apply: bool,
    node: NodeAccess = HOST,
    allow_empty: bool = False,
) -> Outcome:
    """Make this node's owned state what `inputs` imply (or only plan it): the engine,
    seeded from the file, running one full sync. An input without a Service (an empty
    file, a download cut short) is refused (OptionError) unless `allow_empty`."""
    # Read first (the scheduler list, the node's addresses): bad input is reported
    # before anything else is opened.
    offered = node.schedulers() or frozenset()
    options = check_options(options, offered)
    config = translate_config(options, None, node.addresses(options.interface), offered)
    services = WantedServices(config)
    services.retranslate_all(ManifestSource(inputs), config)
    errors = (*inputs.errors, *services.errors())
    warnings = services.warnings()
    if errors:
        return Outcome(plan=Plan(interface=options.interface), errors=errors, warnings=warnings)
    if not inputs.services and not allow_empty:
        raise OptionError(NO_SERVICE)
    with node.open_ports(options.netfilter) as ports, _record(apply) as record:
        netfilter = _netfilter(ports, options, config.local_addresses)
        # Read (and the kernel's support checked) before anything changes.
        listing = netfilter.check() if netfilter is not None else False
        engine = NodeEngine(ports, options, services, record, netfilter, all_or_nothing=True)
        full = engine.plan_full(listing)
        warnings += tuple(conflict.error() for conflict in full.conflicts)
        if not apply:
            return Outcome(plan=full.plan, netfilter=full.netfilter, warnings=warnings)
        unloadable = unloadable_schedulers(
            full.plan, inputs.services, options.scheduler, node.load_scheduler
        )
        if unloadable:
            return Outcome(plan=Plan(interface=options.interface), errors=unloadable)
        report = engine.carry_out_full(full)
    done = report.done._replace(ipvs=report.changes)
    return Outcome(
        plan=without(done, report.refused),
        failures=(*describe_all(report.refused), *report.problems),
        netfilter=None if report.netfilter_refused else full.netfilter,
        warnings=warnings,
    )


def _netfilter(
    ports: NodePorts, options: EngineOptions, local: frozenset[str]
) -> NetfilterSync | None:
    if ports.nft is None:
        return None
    # Imported only when used: --no-netfilter needs none of the nft room.
    from ipvsctl.reconcile.netfilter_sync import NetfilterSync

    return NetfilterSync(ports.nft, netfilter_options(options, local))


@contextmanager
def _record(apply: bool) -> Iterator[NodeportRecord]:
    """The NodePort record, locked while it is read, the plan applied and it is rewritten
    (when applying)."""
    record = NodeportRecord()
    with ExitStack() as stack:
        if apply:
            try:
                stack.enter_context(record.held())
            except OSError as error:
                raise OptionError(record.problem(error)) from None
        yield record


def cleanup(options: EngineOptions, *, apply: bool, node: NodeAccess = HOST) -> Outcome:
    """Remove every owned virtual server, our addresses and our interface; nothing else."""
    check_interface(options.interface)
    with node.open_ports(False) as ports, _record(apply) as record:
        facts = read_node_facts(ports, options.interface, record.keys)
        exists = facts.interface_exists
        owned = plan_node(
            DesiredState(), facts._replace(interface_exists=True), interface=options.interface
        )
        nft, netfilter_plan, notes = _plan_netfilter_cleanup(node.nft())
        plan = Plan(
            interface=owned.interface,
            ipvs=owned.ipvs,
            addresses_del=owned.addresses_del,
            delete_interface=exists,
        )
        if not apply:
            return Outcome(plan=plan, netfilter=netfilter_plan, notes=notes)
        problems: tuple[str, ...] = ()
        refused = list(ports.ipvs.apply(plan.ipvs))
        if refused:
            # Keep the addresses (and so the ownership) of what could not be deleted.
            done = without(plan, refused)._replace(addresses_del=(), delete_interface=False)
        else:
            done = plan
            try:
                ports.links.delete_addresses(plan.interface, plan.addresses_del)
                if exists:
                    ports.links.delete(plan.interface)
            except LinkError as error:
                problems += (str(error),)
                done = done._replace(addresses_del=(), delete_interface=False)
        failed_changes = [failure.change for failure in refused]
        if problem := record.write(nodeport_keys_to_record((), failed_changes)):
            problems += (problem,)
        # Last: the port filter covers the service IPs until they are gone.
        if (
            netfilter_plan is not None
            and nft is not None
            and (problem := carry_out_netfilter(netfilter_plan, nft))
        ):
            problems, netfilter_plan = (*problems, problem), None
    return Outcome(
        plan=done,
        failures=(*describe_all(refused), *problems),
        netfilter=netfilter_plan,
        notes=notes,
    )


def _plan_netfilter_cleanup(
    nft: Nft,
) -> tuple[Nft | None, NetfilterPlan | None, tuple[str, ...]]:
    """Our table's deletion when there is one, and notes. A table nft cannot read (a
    kernel without nf_tables) or no nft at all stops nothing else: the IPVS side is
    cleaned up all the same, and the note says what was not looked at."""
    from ipvsctl.netfilter import NetfilterError, plan_cleanup

    if not nft.installed():
        return None, None, ("nft not found: no nftables table was looked for",)
    try:
        return nft, plan_cleanup(nft.read()), ()
    except NetfilterError as error:
        return None, None, (f"netfilter table not read: {error.first}",)
