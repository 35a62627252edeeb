"""The order ipvsadm lists services and real servers in.

libipvs's `ipvs_cmp_services` / `ipvs_cmp_dests` compare unsigned 32-bit
fields by subtracting them and keeping the result in an `int`, so a difference
of 2**31 or more changes sign: 192.168.0.1 sorts *before* 10.0.0.1, and a
fwmark service with mark >= 0x80000001 sorts before the non-fwmark services.
That comparison is not a total order, so the result also depends on the sort
algorithm: glibc's `qsort` is a top-down merge sort (msort.c) that takes the
left element on ties. We replay both exactly; Python's `sorted` would not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ipvsctl.model import AF_INET6, RealServerEntry, VirtualServerEntry
from ipvsctl.show.listing_address import address_words

__all__ = ["compare_real_servers", "compare_services", "glibc_qsort", "ipvsadm_order"]

T = TypeVar("T")


def _c_int_difference(a: int, b: int) -> int:
    """`(int)(a - b)` for two C `u32` values."""
    difference = (a - b) & 0xFFFFFFFF
    return difference - (1 << 32) if difference & 0x80000000 else difference


def _compare_words(first: str, second: str, word_count: int) -> int:
    words_a, words_b = address_words(first), address_words(second)
    result = 0
    for index in range(word_count):
        result = _c_int_difference(words_a[index], words_b[index])
        if result:
            break
    return result


def compare_services(a: VirtualServerEntry, b: VirtualServerEntry) -> int:
    """libipvs `ipvs_cmp_services`."""
    key_a, key_b = a.service.key, b.service.key
    result = _c_int_difference(key_a.fwmark, key_b.fwmark)
    if result:
        return result
    result = key_a.family - key_b.family
    if result:
        return result
    result = key_a.protocol - key_b.protocol
    if result:
        return result
    words = 4 if key_a.family == AF_INET6 else 1
    result = _compare_words(key_a.address, key_b.address, words)
    if result:
        return result
    return key_a.port - key_b.port


def compare_real_servers(service_family: int) -> Callable[[RealServerEntry, RealServerEntry], int]:
    """libipvs `ipvs_cmp_dests`: the *first* server's family decides how many words count."""

    def compare(a: RealServerEntry, b: RealServerEntry) -> int:
        family = a.server.family_in(service_family)
        words = 4 if family == AF_INET6 else 1
        result = _compare_words(a.server.address, b.server.address, words)
        if result:
            return result
        return a.server.port - b.server.port

    return compare


def glibc_qsort(items: Sequence[T], compare: Callable[[T, T], int]) -> list[T]:
    """glibc 2.36 `qsort`: `msort_with_tmp`, n1 = n / 2 on the left, ties go left."""
    if len(items) <= 1:
        return list(items)
    middle = len(items) // 2
    left = glibc_qsort(items[:middle], compare)
    right = glibc_qsort(items[middle:], compare)
    merged: list[T] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if compare(left[i], right[j]) <= 0:
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    merged.extend(left[i:])
    merged.extend(right[j:])
    return merged


def ipvsadm_order(
    services: Sequence[VirtualServerEntry], sort: bool = True
) -> list[VirtualServerEntry]:
    """Services, each with its real servers, in the order `ipvsadm -L [--nosort]` prints them."""
    if not sort:
        return list(services)
    ordered = glibc_qsort(services, compare_services)
    return [_with_sorted_real_servers(entry) for entry in ordered]


def _with_sorted_real_servers(entry: VirtualServerEntry) -> VirtualServerEntry:
    compare = compare_real_servers(entry.service.key.family)
    real_servers = tuple(glibc_qsort(entry.real_servers, compare))
    return VirtualServerEntry(service=entry.service, stats=entry.stats, real_servers=real_servers)
