"""The `ipvsctl` console script."""

from __future__ import annotations

import sys


def main() -> None:
    # `show` reads its own arguments (ipvsadm's order-dependent rules) and so
    # needs nothing of click, whose import alone costs ~0.1 s in the kernel
    # lab: a tenth of what ipvsadm -Ln takes for a 22,000-object table.
    if sys.argv[1:2] == ["show"]:
        from ipvsctl.cli.show import show_main

        try:
            status = show_main(sys.argv[2:])
        except Exception as error:  # as the command group does for the others
            from ipvsctl.cli.internal_error import debug_from_environment, internal_error

            status = internal_error(error, debug_from_environment())
        sys.exit(status)
    from ipvsctl.cli.commands import cli

    cli()
