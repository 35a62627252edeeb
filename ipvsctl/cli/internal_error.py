"""What an exception nobody anticipated becomes: one line and its own exit status.

`diff` gives 1 the meaning "changes pending" and 2 "bad input", so a crash must
be neither: it is EX_SOFTWARE (70, sysexits.h's "internal software error").
The traceback is for whoever debugs it (`--debug`, or IPVSCTL_DEBUG=1 where
there is no click, as in `show`).
"""

from __future__ import annotations

import os
import sys
import traceback

from ipvsctl.model.printable import MAX_MESSAGE, printable

EXIT_INTERNAL = 70
DEBUG = "ipvsctl.debug"  # the click context's meta key of --debug


def debug_from_environment() -> bool:
    return os.environ.get("IPVSCTL_DEBUG", "") not in ("", "0", "false")


def internal_error(error: BaseException, debug: bool) -> int:
    """Say so on stderr (the traceback too when `debug`); the exit status to use."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    what = printable(f"{type(error).__name__}: {error}", MAX_MESSAGE)
    hint = "" if debug else " (--debug prints the traceback)"
    print(f"ipvsctl: internal error: {what}{hint}", file=sys.stderr)
    return EXIT_INTERNAL
