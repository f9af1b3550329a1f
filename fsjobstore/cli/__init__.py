"""The ``fsjobstore`` command line: each command is one call of :mod:`fsjobstore.maintenance`.

Exit status: 0 on success, 1 on an error (one line on stderr, never a
traceback), 2 on a usage error, 130 when interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from ..maintenance import DEFAULT_DEMO_STORE
from .commands import cli

__all__ = ["DEFAULT_DEMO_STORE", "cli", "main"]

#: The exit status of a run stopped by Ctrl-C, as shells expect (128 + SIGINT).
INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="fsjobstore",
            standalone_mode=False,
        )
    except click.exceptions.Exit as done:  # --help, --version
        return done.exit_code
    except click.ClickException as error:  # usage errors (2) and failures (1)
        error.show()
        return error.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("fsjobstore: interrupted", err=True)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (fsjobstore cat … | head): stop quietly, and keep
        # Python from complaining at exit about the output it cannot flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
