"""`ipvsctl show`'s arguments, read as ipvsadm's list command reads them.

ipvsadm's answers depend on the order of its options (`-6` must follow `-f`,
the second service option is the one refused, a repeated flag is an error),
which an option parser that collects values first cannot reproduce; so this
small reader walks argv in order, as popt does. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ipvsctl.model import Protocol, ServiceKey
from ipvsctl.show.listing import ListingOptions
from ipvsctl.show.listing_command import ShowRequest
from ipvsctl.show.service_address import (
    IPV6_BEFORE_FWMARK,
    HostResolver,
    IpvsadmUsageError,
    PortResolver,
    fwmark_service_key,
    multiple_options_message,
    parse_fwmark,
    parse_service_address,
)

# flag -> (ListingOptions field or request field, ipvsadm's name for it)
_FLAGS = {
    "--stats": ("stats", "stats"),
    "--rate": ("rate", "rate"),
    "--thresholds": ("thresholds", "thresholds"),
    "--persistent-conn": ("persistent_conn", "persistent-conn"),
    "--tun-info": ("tun_info", "tun-info"),
    "--exact": ("exact", "exact"),
    "-X": ("exact", "exact"),
    "--nosort": ("nosort", "nosort"),
    "--timeout": ("timeout", "timeout"),
}
_IGNORED = {"--sort", "-n", "--numeric", "--json"}
_SERVICES = {
    "-t": Protocol.TCP,
    "--tcp-service": Protocol.TCP,
    "-u": Protocol.UDP,
    "--udp-service": Protocol.UDP,
    "--sctp-service": Protocol.SCTP,
}
_FWMARK = {"-f", "--fwmark-service"}
_IPV6 = {"-6", "--ipv6"}

USAGE = """\
Usage: ipvsctl show [-t|-u|--sctp-service ADDRESS[:PORT] | -f MARK [-6]]
                    [--stats | --rate | --thresholds | --persistent-conn | --tun-info]
                    [--exact] [--nosort] [--timeout] [--json]

  Print the kernel's IPVS table exactly as `ipvsadm -Ln` does with the same
  options (every service, whoever created it), or as JSON with --json.
"""


@dataclass
class _Reading:
    flags: set[str] = field(default_factory=set)
    service: ServiceKey | None = None
    fwmark: int | None = None
    ipv6: bool = False
    json: bool = False


def _split(argv: Sequence[str], takes_value: set[str]) -> Iterator[tuple[str, str | None]]:
    """(option, value) pairs, accepting `--opt=value`, `--opt value`, `-tVALUE`, `-t VALUE`."""
    args = iter(argv)
    for arg in args:
        name, value = arg, None
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        elif len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and arg[:2] in takes_value:
            name, value = arg[:2], arg[2:]
        if name in takes_value and value is None:
            value = next(args, None)
            if value is None:
                raise IpvsadmUsageError(f"{name}: missing argument")
        yield name, value


def parse_show_arguments(
    argv: Sequence[str],
    resolve_host: HostResolver | None = None,
    resolve_port: PortResolver | None = None,
) -> ShowRequest:
    """The request, or IpvsadmUsageError with ipvsadm's words for what it refuses."""
    reading = _Reading()
    for name, value in _split(argv, {*_SERVICES, *_FWMARK}):
        if name in _FLAGS:
            flag, ipvsadm_name = _FLAGS[name]
            if flag in reading.flags:
                raise IpvsadmUsageError(multiple_options_message(ipvsadm_name))
            reading.flags.add(flag)
        elif name in _SERVICES or name in _FWMARK:
            if reading.service is not None or reading.fwmark is not None:
                raise IpvsadmUsageError(multiple_options_message("service-address"))
            assert value is not None
            if name in _FWMARK:
                reading.fwmark = parse_fwmark(value)
            else:
                reading.service = parse_service_address(
                    value, _SERVICES[name], resolve_host=resolve_host, resolve_port=resolve_port
                )
        elif name in _IPV6:
            if reading.fwmark is None:
                raise IpvsadmUsageError(IPV6_BEFORE_FWMARK)
            reading.ipv6 = True
        elif name in _IGNORED:
            reading.json = reading.json or name == "--json"
        else:
            raise IpvsadmUsageError(f"{name}: unknown option")
    return _request(reading)


def _request(reading: _Reading) -> ShowRequest:
    flags = reading.flags
    options = ListingOptions(
        stats="stats" in flags,
        rate="rate" in flags,
        thresholds="thresholds" in flags,
        persistent_conn="persistent_conn" in flags,
        tun_info="tun_info" in flags,
        exact="exact" in flags,
        sort="nosort" not in flags,
    )
    service = reading.service
    if reading.fwmark is not None:
        service = fwmark_service_key(reading.fwmark, reading.ipv6)
    return ShowRequest(options, service, timeout="timeout" in flags, json=reading.json)
