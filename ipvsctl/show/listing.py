"""The IPVS table as text, byte for byte as `ipvsadm -Ln [options]` prints it.

One layout per listing option (ipvsadm's `print_title` / `print_service_entry`
branches), picked in ipvsadm's precedence order: --stats, --rate, --thresholds,
--persistent-conn, --tun-info, plain. Only --stats and --rate change the
service line; the others change the real-server lines alone.

Pure: takes `KernelTable` / `Timeouts` values, returns strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    RATE_FIELDS,
    STATS_FIELDS,
    TOTAL_FIELDS,
    ForwardMethod,
    KernelInfo,
    KernelTable,
    RealServerEntry,
    ServiceFlag,
    ServiceKey,
    Timeouts,
    TunnelType,
    VirtualServerEntry,
)
from ipvsctl.model.names import (
    IPVSADM_CHECKSUM_NAMES,
    IPVSADM_FORWARD_NAMES,
    PROTOCOL_NAMES,
    SCHED_FLAG_NAMES,
    SCHEDULER_FLAG_NAMES,
    TUNNEL_TYPE_NAMES,
)
from ipvsctl.show.listing_address import format_address_port
from ipvsctl.show.listing_order import ipvsadm_order

__all__ = [
    "NO_SUCH_SERVICE",
    "ListingOptions",
    "format_largenum",
    "render_header",
    "render_listing",
    "render_service_listing",
    "render_timeouts",
]

# libipvs `ipvs_strerror(ESRCH)` for `ipvs_get_service`; ipvsadm prints it to stderr, exits 1.
NO_SUCH_SERVICE = "No such service"

U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class ListingOptions:
    """ipvsadm's list format flags (FMT_*). Several may be set; the first in precedence wins."""

    stats: bool = False
    rate: bool = False
    thresholds: bool = False
    persistent_conn: bool = False
    tun_info: bool = False
    exact: bool = False
    sort: bool = True  # --nosort turns it off; --sort is ipvsadm's no-op


_Cell = Callable[[RealServerEntry, ListingOptions], str]
_ServiceLine = Callable[[VirtualServerEntry, ListingOptions], str]

# print_largenum: (below this value, divide by, suffix); the last row catches the rest.
_SCALES: tuple[tuple[int, int, str], ...] = (
    (100_000_000, 1, ""),
    (1_000_000_000, 1_000, "K"),
    (100_000_000_000, 1_000_000, "M"),
    (100_000_000_000_000, 1_000_000_000, "G"),
    (U64 + 1, 1_000_000_000_000, "T"),
)


def format_largenum(value: int, exact: bool) -> str:
    """ipvsadm `print_largenum`: nine columns, scaled by K/M/G/T unless --exact."""
    value &= U64
    if exact:
        digits = str(value)
        # always at least one leading space, so wide numbers never touch
        return digits.rjust(9 if len(digits) <= 8 else len(digits) + 1)
    for limit, divisor, suffix in _SCALES:
        if value < limit:
            return f"{value // divisor:{9 - len(suffix)}d}{suffix}"
    raise AssertionError("unreachable: the last scale covers every u64")


def _c_int(value: int) -> int:
    """A u32 printed with %d (weights, fwmarks): two's complement."""
    value &= U32
    return value - (1 << 32) if value & 0x80000000 else value


# ---- service names ----------------------------------------------------------

_ANY_SCHED_FLAG = ServiceFlag.SCHED1 | ServiceFlag.SCHED2 | ServiceFlag.SCHED3


def sched_flag_names(scheduler: str, flags: int) -> list[str]:
    """ipvsadm `print_sched_flags`: sh and mh name only their own two flags (so sh+flag-3 is '')."""
    table = SCHEDULER_FLAG_NAMES.get(scheduler, SCHED_FLAG_NAMES)
    return [name for flag, name in table.items() if flags & flag]


def service_name(key: ServiceKey) -> str:
    """The `svc_name` column of print_service_entry."""
    if key.is_fwmark:
        name = f"FWM  {_c_int(key.fwmark)}"
        return f"{name} IPv6" if key.family == AF_INET6 else name
    protocol = PROTOCOL_NAMES.get(key.protocol, "?")
    name = f"{protocol:<4} {format_address_port(key.family, key.address, key.port)}"
    # ipvsadm cuts non-IPv6 names at 33 (only reachable with resolved host names)
    return name if key.family == AF_INET6 else name[:33]


def _netmask_text(family: int, netmask: int) -> str | None:
    if family == AF_INET and netmask & U32 != U32:
        return ".".join(str((netmask >> shift) & 0xFF) for shift in (24, 16, 8, 0))
    if family == AF_INET6 and netmask != 128:
        return str(_c_int(netmask))
    return None


def _plain_service_line(entry: VirtualServerEntry, options: ListingOptions) -> str:
    service = entry.service
    line = f"{service_name(service.key)} {service.scheduler}"
    if service.flags & _ANY_SCHED_FLAG:
        line += f" ({','.join(sched_flag_names(service.scheduler, service.flags))})"
    if service.flags & ServiceFlag.PERSISTENT:
        line += f" persistent {service.timeout & U32}"
        mask = _netmask_text(service.key.family, service.netmask)
        if mask is not None:
            line += f" mask {mask}"
        # pe is printed only for persistent services, though the kernel keeps it either way
        if service.pe_name:
            line += f" pe {service.pe_name}"
    if service.flags & ServiceFlag.ONEPACKET:
        line += " ops"
    return line


def _counter_service_line(fields: tuple[str, ...]) -> _ServiceLine:
    def line(entry: VirtualServerEntry, options: ListingOptions) -> str:
        numbers = "".join(
            format_largenum(getattr(entry.stats, name), options.exact) for name in fields
        )
        # no separator: an IPv6 name longer than 33 runs straight into the numbers
        return f"{service_name(entry.service.key):<33}{numbers}"

    return line


# ---- real-server lines ------------------------------------------------------


def _forward_name(entry: RealServerEntry) -> str:
    # fwd_name returns NULL for bypass and for any method newer than ipvsadm,
    # and glibc's printf spells NULL "(null)"
    return IPVSADM_FORWARD_NAMES.get(entry.server.forward, "(null)")


def _tunnel_info(entry: RealServerEntry) -> str:
    """ipvsadm `fwd_tun_info`, or "n/a" when it returns NULL."""
    server = entry.server
    if server.forward != ForwardMethod.TUNNEL:
        return "n/a"
    kind = TUNNEL_TYPE_NAMES.get(server.tunnel_type)
    checksum = IPVSADM_CHECKSUM_NAMES.get(server.tunnel_flags, "?")
    if server.tunnel_type == TunnelType.GUE:
        return f"{kind}:{server.tunnel_port}:{checksum}"
    if server.tunnel_type == TunnelType.GRE:
        return f"{kind}:{checksum}"
    # fwd_tun_info returns NULL for a tunnel type newer than ipvsadm
    return kind or "n/a"


# A real server's counters as ipvsadm 1.31 holds them: libipvs reads a real
# server's IPVS_DEST_ATTR_STATS64 with the 32-bit parser (`ipvs_parse_stats`),
# so every counter but the byte counts keeps only its low 32 bits (on
# little-endian hosts). Services use the 64-bit parser.
_DEST_COUNTER_MASK = {
    name: U64 if name in ("inbytes", "outbytes") else U32 for name in STATS_FIELDS
}


def _dest_counter(field: str) -> Callable[[RealServerEntry], int]:
    mask = _DEST_COUNTER_MASK[field]
    return lambda entry: getattr(entry.stats, field) & mask


def _left(width: int, value: Callable[[RealServerEntry], object]) -> _Cell:
    return lambda entry, options: f" {value(entry)!s:<{width}}"


def _right(width: int, field: str) -> _Cell:
    counter = _dest_counter(field)
    return lambda entry, options: f" {counter(entry):>{width}}"


def _large(field: str) -> _Cell:
    counter = _dest_counter(field)
    return lambda entry, options: format_largenum(counter(entry), options.exact)


def _weight(entry: RealServerEntry) -> int:
    return _c_int(entry.server.weight)


def _active(entry: RealServerEntry) -> int:
    return entry.active_conns & U32


def _inactive(entry: RealServerEntry) -> int:
    return entry.inactive_conns & U32


@dataclass(frozen=True)
class _Layout:
    title: str
    service_line: _ServiceLine
    cells: tuple[_Cell, ...]


_PROT = "Prot LocalAddress:Port"
_REMOTE = "  -> RemoteAddress:Port\n"


def _counter_title(*headings: str) -> str:
    return f"{_PROT:<33}" + "".join(f" {h:>8}" for h in headings) + "\n" + _REMOTE


_PLAIN = _Layout(
    title="Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    service_line=_plain_service_line,
    cells=(_left(7, _forward_name), _left(6, _weight), _left(10, _active), _left(10, _inactive)),
)

# (option that selects it, layout), in ipvsadm's precedence order
_LAYOUTS: tuple[tuple[str, _Layout], ...] = (
    (
        "stats",
        _Layout(
            title=_counter_title("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"),
            service_line=_counter_service_line(TOTAL_FIELDS),
            cells=tuple(_large(name) for name in TOTAL_FIELDS),
        ),
    ),
    (
        "rate",
        _Layout(
            title=_counter_title("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"),
            service_line=_counter_service_line(RATE_FIELDS),
            # ipvsadm prints a real server's CPS/InPPS/OutPPS raw (%8llu), never scaled
            cells=(
                _right(8, "cps"),
                _right(8, "inpps"),
                _right(8, "outpps"),
                _large("inbps"),
                _large("outbps"),
            ),
        ),
    ),
    (
        "thresholds",
        _Layout(
            title=f"{_PROT:<33} {'Uthreshold':<10} {'Lthreshold':<10} "
            f"{'ActiveConn':<10} {'InActConn':<10}\n" + _REMOTE,
            service_line=_plain_service_line,
            cells=(
                _left(10, lambda e: e.server.upper_threshold & U32),
                _left(10, lambda e: e.server.lower_threshold & U32),
                _left(10, _active),
                _left(10, _inactive),
            ),
        ),
    ),
    (
        "persistent_conn",
        _Layout(
            title=f"{_PROT:<33} {'Weight':<9} {'PersistConn':<11} "
            f"{'ActiveConn':<10} {'InActConn':<10}\n" + _REMOTE,
            service_line=_plain_service_line,
            cells=(
                # this layout alone prints the weight unsigned (%-9u, not %-6d)
                _left(9, lambda e: e.server.weight & U32),
                _left(11, lambda e: e.persistent_conns & U32),
                _left(10, _active),
                _left(10, _inactive),
            ),
        ),
    ),
    (
        "tun_info",
        _Layout(
            title="Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
            service_line=_plain_service_line,
            cells=(
                _left(7, _forward_name),
                _left(13, _tunnel_info),
                _left(6, _weight),
                _left(10, _active),
                _left(10, _inactive),
            ),
        ),
    ),
)


def _layout(options: ListingOptions) -> _Layout:
    for option, layout in _LAYOUTS:
        if getattr(options, option):
            return layout
    return _PLAIN


def _real_server_line(
    entry: RealServerEntry, service_family: int, layout: _Layout, options: ListingOptions
) -> str:
    family = entry.server.family_in(service_family)
    name = format_address_port(family, entry.server.address, entry.server.port)
    if family != AF_INET6:
        name = name[:28]  # ipvsadm's cut, as for service names
    return f"  -> {name:<28}" + "".join(cell(entry, options) for cell in layout.cells) + "\n"


def _service_block(entry: VirtualServerEntry, layout: _Layout, options: ListingOptions) -> str:
    family = entry.service.key.family
    lines = [layout.service_line(entry, options) + "\n"]
    lines += [_real_server_line(rs, family, layout, options) for rs in entry.real_servers]
    return "".join(lines)


def render_header(info: KernelInfo) -> str:
    return f"IP Virtual Server version {info.version_text} (size={_c_int(info.conn_tab_size)})\n"


def render_listing(table: KernelTable, options: ListingOptions) -> str:
    """`ipvsadm -Ln [options]` (list_all): header, column titles, every service."""
    layout = _layout(options)
    services = ipvsadm_order(table.services, options.sort)
    body = "".join(_service_block(entry, layout, options) for entry in services)
    return render_header(table.info) + layout.title + body


def render_service_listing(entry: VirtualServerEntry, options: ListingOptions) -> str:
    """`ipvsadm -Ln -t|-u|--sctp-service|-f X` (list_service): titles, one service, no header."""
    layout = _layout(options)
    (ordered,) = ipvsadm_order((entry,), options.sort)
    return layout.title + _service_block(ordered, layout, options)


def render_timeouts(timeouts: Timeouts) -> str:
    """`ipvsadm -Ln --timeout` (list_timeout)."""
    return (
        f"Timeout (tcp tcpfin udp): {_c_int(timeouts.tcp)} "
        f"{_c_int(timeouts.tcp_fin)} {_c_int(timeouts.udp)}\n"
    )
