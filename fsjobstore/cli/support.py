"""What every command shares: options, output, progress bars, errors and logging."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from ..redaction import SCRUBBER, redact, secrets_of

__all__ = [
    "CommandFailed",
    "common_options",
    "configure_logging",
    "emit",
    "emit_json",
    "failing",
    "parse_duration",
    "parse_options",
    "progress",
]

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("fsjobstore.cli")

_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class CommandFailed(click.ClickException):
    """A command failed: one line on standard error, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        """Print ``fsjobstore: error: <message>`` on standard error."""
        click.echo(f"fsjobstore: error: {self.message}", err=True)


def parse_options(pairs: Sequence[str], name: str = "-o") -> dict[str, Any]:
    """Turn ``KEY=VALUE`` strings into storage options; a VALUE that parses as JSON is JSON.

    Raises
    ------
    click.BadParameter
        A pair has no ``=`` or an empty key (a usage error: exit status 2).
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=f"'{name}'")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``15m``, ``12h``, ``1d``, ``2w`` or a plain number of seconds.

    Raises
    ------
    click.BadParameter
        Not a duration.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise click.BadParameter(
            f"{text!r} is not a duration (e.g. 0, 90s, 15m, 12h, 1d, 2w)",
            param_hint="'--older-than'",
        )
    return float(match["number"]) * _UNITS[match["unit"]]


def common_options(command: F) -> F:
    """Add ``-o``, ``--json`` and ``--no-progress`` to a command."""
    command = click.option(
        "--no-progress", is_flag=True, help="No progress bars (they appear only on a terminal)."
    )(command)
    command = click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout, nothing else."
    )(command)
    return click.option(
        "-o",
        "--option",
        "options",
        multiple=True,
        metavar="KEY=VALUE",
        help="A storage option (credentials, endpoint …); VALUE is JSON when it parses.",
    )(command)


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(document, default=str))


def emit(document: Any, lines: Iterable[str], as_json: bool) -> None:
    """Print ``document`` as JSON if ``as_json``, else ``lines``, one per line."""
    if as_json:
        emit_json(document)
        return
    for line in lines:
        click.echo(line)


@contextmanager
def progress(enabled: bool, description: str, unit: str = "it") -> Iterator[Callback]:
    """Yield an fsspec callback: a tqdm bar on stderr if ``enabled`` and stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield DEFAULT_CALLBACK
        return
    from fsspec.callbacks import TqdmCallback

    bar = TqdmCallback(
        tqdm_kwargs={"desc": description, "unit": unit, "file": sys.stderr, "leave": False}
    )
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def failing(
    what: str,
    locator: str,
    options: dict[str, Any] | None = None,
    *,
    to: tuple[str, dict[str, Any]] | None = None,
) -> Iterator[None]:
    """Turn any error inside into :class:`CommandFailed`, naming ``what`` and the locator.

    The locator (and ``to``'s, a second locator and its options) is shown
    without credentials, and so is every message: secrets met in the
    locators and in the options are masked from then on.
    """
    SCRUBBER.learn(secrets_of(locator, options or {}))
    label = f"{what} {redact(locator)!r}"
    if to is not None:
        SCRUBBER.learn(secrets_of(*to))
        label += f" to {redact(to[0])!r}"
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:
        # No traceback, not even at -vv: the chain of causes says enough.
        logger.debug("%s failed: %r (cause: %r)", label, exc, exc.__cause__ or exc.__context__)
        raise CommandFailed(f"{label}: {SCRUBBER.scrub(_message(exc))}") from None


def _message(exc: Exception) -> str:
    text = " ".join(str(exc).split())  # one line, whatever the exception says
    if isinstance(exc, (KeyError, TypeError, AttributeError, RuntimeError)) or not text:
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text


def configure_logging(verbose: int, quiet: bool) -> None:
    """Log to stderr: warnings by default, more with ``-v``, errors only with ``-q``."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[min(verbose, 1)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fsjobstore: %(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 2 else level)
    # A warning of fsjobstore's (a store on a backend without conditional
    # writes) is one log line, not Python's two of source location; the
    # libraries' own (deprecations in a client's dependencies) only with -vv.
    warnings.showwarning = _show_warning


def _show_warning(  # noqa: PLR0917 - the signature of warnings.showwarning
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.abspath(filename).startswith(ours + os.sep):
        logger.warning("%s", message)
    else:
        logger.debug("%s: %s", category.__name__, message)
