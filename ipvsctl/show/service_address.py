"""ipvsadm's service arguments: `-t/-u/--sctp-service ADDR[:PORT]`, `-f MARK [-6]`.

Accepts exactly what ipvsadm 1.31's `parse_service` / `parse_fwmark` accept, and
fails with their words and exit status (2). Host and service names are looked up
only through resolvers the caller passes in (ipvsadm uses gethostbyname and
getservbyname); without them only numeric forms are accepted. Pure otherwise.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from ipvsctl.model import AF_INET, AF_INET6, ServiceKey, canonical_address
from ipvsctl.model.names import PROTOCOL_KEYWORDS

__all__ = [
    "ILLEGAL_SERVICE",
    "IPV6_BEFORE_FWMARK",
    "LIST_OPTIONS_CONFLICT",
    "HostResolver",
    "IpvsadmUsageError",
    "PortResolver",
    "conflict_message",
    "fwmark_service_key",
    "inet_aton",
    "multiple_options_message",
    "parse_fwmark",
    "parse_service_address",
]

ILLEGAL_SERVICE = "illegal virtual server address[:port] specified"
# ipvsadm's format string already ends in "\n" and fail() adds another.
IPV6_BEFORE_FWMARK = "-6 used before -f\n"
LIST_OPTIONS_CONFLICT = "options conflicts in the list command"

# Returns the IPv4 address for a host name, or None (gethostbyname, AF_INET only).
HostResolver = Callable[[str], str | None]
# Returns the port for (service name, "tcp" | "udp" | "sctp"), or None (getservbyname).
PortResolver = Callable[[str, str], int | None]


class IpvsadmUsageError(Exception):
    """A command line ipvsadm rejects: its stderr text (without newline) and exit status."""

    def __init__(self, message: str, exit_status: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_status = exit_status

    @property
    def stderr(self) -> str:
        return self.message + "\n"


def multiple_options_message(option: str) -> str:
    """ipvsadm `set_option`: an option given twice (`service-address` for -t then -u, ...)."""
    return f"multiple '{option}' options specified"


def conflict_message(option: str, earlier: str) -> str:
    """ipvsadm `generic_opt_check`: two exclusive list options (timeout, service-address)."""
    return f"The option '{option}' conflicts with the '{earlier}' option in the 'list' command"


# C's isspace() in the "C" locale, as strtol and inet_aton use it.
_C_SPACE = " \t\n\v\f\r"
_STRTOL_DECIMAL = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def _strtol_whole(text: str) -> int | None:
    """`strtol(s, &end, 10)` that must consume all of `s` (ipvsadm's string_to_number)."""
    match = _STRTOL_DECIMAL.fullmatch(text)
    return int(match.group(1)) if match else None


def _strtoul_prefix(text: str) -> tuple[int, str]:
    """`strtoul(s, &end, 0)` on text that starts with a digit: (value, rest)."""
    if re.match(r"0[xX][0-9a-fA-F]", text):
        digits = re.match(r"[0-9a-fA-F]*", text[2:])
        assert digits is not None
        return int(digits.group() or "0", 16), text[2 + digits.end() :]
    if text.startswith("0"):
        digits = re.match(r"[0-7]*", text)
        assert digits is not None
        return int(digits.group(), 8), text[digits.end() :]
    digits = re.match(r"[0-9]*", text)
    assert digits is not None
    return int(digits.group()), text[digits.end() :]


def inet_aton(text: str) -> str | None:
    """glibc `inet_aton`: a, a.b, a.b.c, a.b.c.d in decimal, 0octal or 0xhex; trailing junk
    after whitespace is ignored. Returns the dotted quad, or None."""
    parts: list[int] = []
    rest = text
    while True:
        if not rest or not rest[0].isdigit() or not rest[0].isascii():
            return None
        value, rest = _strtoul_prefix(rest)
        if value > 0xFFFFFFFF:
            return None
        if rest.startswith(".") and len(parts) < 3 and value <= 0xFF:
            parts.append(value)
            rest = rest[1:]
            continue
        if rest.startswith("."):
            return None
        break
    if rest and rest[0] not in _C_SPACE:
        return None
    # the last part fills whatever bytes the dotted parts left over
    if value >= 1 << (8 * (4 - len(parts))):
        return None
    number = value
    for index, part in enumerate(parts):
        number |= part << (24 - 8 * index)
    return str(ipaddress.IPv4Address(number))


def _inet_pton6(text: str) -> str | None:
    if "%" in text or not text.isascii():  # glibc knows no zone ids
        return None
    try:
        return canonical_address(str(ipaddress.IPv6Address(text)))
    except ValueError:
        return None


def _is_all_digits(text: str) -> bool:
    # str_is_digit("") is true, so an empty argument is refused here too
    return all(ch in "0123456789" for ch in text)


def _parse_port(text: str, protocol: int, resolve_port: PortResolver | None) -> int | None:
    number = _strtol_whole(text)
    if number is not None and 0 <= number <= 65535:
        return number
    db_name = PROTOCOL_KEYWORDS.get(protocol)
    if resolve_port is None or db_name is None:
        return None
    return resolve_port(text, db_name)


def parse_service_address(
    text: str,
    protocol: int,
    *,
    resolve_host: HostResolver | None = None,
    resolve_port: PortResolver | None = None,
) -> ServiceKey:
    """ipvsadm `parse_service` for `-t/-u/--sctp-service TEXT`.

    Quirks kept: a port is optional (0); an unbracketed IPv6 address never has a
    port ("::1:80" is the address ::1:80); "[1.2.3.4]:80" is 1.2.3.4 port 0;
    "[::1]" without ":PORT" is refused.
    """
    if _is_all_digits(text):
        raise IpvsadmUsageError(ILLEGAL_SERVICE)
    host, port_text = text, None
    if text.startswith("["):
        host, bracket, after = text[1:].partition("]")
        if not bracket or not after.startswith(":"):
            raise IpvsadmUsageError(ILLEGAL_SERVICE)
        port_text = after[1:]
    family, address = AF_INET6, _inet_pton6(host)
    if address is None:
        family = AF_INET
        # ipvsadm looks again for ':' inside the host part, dropping the bracketed port
        host, colon, port_text_v4 = host.rpartition(":")
        host, port_text = (host, port_text_v4) if colon else (port_text_v4, None)
        address = inet_aton(host)
        if address is None and resolve_host is not None:
            address = resolve_host(host)
    if address is None:
        raise IpvsadmUsageError(ILLEGAL_SERVICE)
    port = 0
    if port_text is not None:
        parsed = _parse_port(port_text, protocol, resolve_port)
        if parsed is None:
            raise IpvsadmUsageError(ILLEGAL_SERVICE)
        port = parsed
    return ServiceKey(family=family, protocol=protocol, address=address, port=port)


def parse_fwmark(text: str) -> int:
    """ipvsadm `parse_fwmark`: a decimal in 1..4294967295 (leading blanks and '+' allowed)."""
    number = _strtol_whole(text)
    if number is None or not 0 < number <= 0xFFFFFFFF:
        raise IpvsadmUsageError(f"invalid fwmark value `{text}' specified")
    return number


def fwmark_service_key(fwmark: int, ipv6: bool = False) -> ServiceKey:
    """`-f MARK` is an IPv4 service unless `-6` follows it."""
    return ServiceKey.for_fwmark(AF_INET6 if ipv6 else AF_INET, fwmark)
