"""Every Service into the whole desired state: a loop over `translate_service`, with the
slices indexed by Service, and the checks only the whole table can make.

Two Services may name the same virtual server (an external IP both list): the
first by namespace/name keeps it, the other gets an error for it, so the
desired state never holds a key twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter

from ipvsctl.model import Protocol, ServiceKey
from ipvsctl.model.desired import DesiredState, DesiredVirtualServer, TranslateConfig
from ipvsctl.model.inputs import EndpointSlice, ObjectError, Service
from ipvsctl.translate.service import service_warnings, translate_service

SliceIndex = dict[tuple[str, str], list[EndpointSlice]]
_NAMESPACE_NAME = attrgetter("namespace", "name")


def index_slices(slices: Iterable[EndpointSlice]) -> SliceIndex:
    """The slices by the (namespace, name) of the Service they belong to."""
    index: SliceIndex = {}
    for endpoint_slice in slices:
        key = (endpoint_slice.namespace, endpoint_slice.service_name)
        index.setdefault(key, []).append(endpoint_slice)
    return index


def translate(
    services: Sequence[Service], slices: Iterable[EndpointSlice], config: TranslateConfig
) -> DesiredState:
    """The virtual servers and bound addresses all `services` imply, every error, and the
    warnings of the Services served.

    An invalid Service contributes errors and nothing else.
    """
    index = index_slices(slices)
    owners: dict[ServiceKey, str] = {}
    desired: list[DesiredVirtualServer] = []
    addresses: set[str] = set()
    errors: list[ObjectError] = []
    warnings: list[ObjectError] = []
    for service in sorted(services, key=_NAMESPACE_NAME):
        servers, problems = translate_service(
            service, index.get((service.namespace, service.name), ()), config
        )
        errors.extend(problems)
        if not problems:
            warnings.extend(service_warnings(service))
        for server in servers:
            key = server.service.key
            owner = owners.setdefault(key, server.owner)
            if owner == server.owner:
                desired.append(server)
                if server.bound:
                    addresses.add(key.address)
            else:
                errors.append(conflict_error(service, key, owner))
    return DesiredState(tuple(desired), frozenset(addresses), tuple(errors), tuple(warnings))


def conflict_error(service: Service, key: ServiceKey, owner: str) -> ObjectError:
    """Why `service` does not get `key`: Service `owner` (namespace/name) has it."""
    where = f"{Protocol(key.protocol).name} {_endpoint(key.address, key.port)}"
    return ObjectError(service.ref, "spec", f"{where} is Service {owner}'s already; left to it")


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
