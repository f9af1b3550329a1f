"""The commands: each parses its arguments, calls one maintenance function, and prints."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from .. import __version__, maintenance
from ..redaction import redact
from ..store import JobStore
from .support import (
    CommandFailed,
    common_options,
    configure_logging,
    emit,
    emit_json,
    failing,
    parse_duration,
    parse_options,
    progress,
)

__all__ = ["cli"]

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=_CONTEXT)
@click.version_option(__version__, "--version", prog_name="fsjobstore")
@click.option("-v", "--verbose", count=True, help="Log more (-vv: the clients' debug logs too).")
@click.option("-q", "--quiet", is_flag=True, help="Log errors only.")
def cli(verbose: int, quiet: bool) -> None:
    """Inspect, move, migrate, clean and destroy job stores on any fsspec filesystem.

    LOCATOR is a path, file:PATH, aws:REGION:BUCKET[:PREFIX], gce:REGION:BUCKET[:PREFIX]
    or any fsspec URL (s3://, gs://, az://, sftp://, ftp:// …). Credentials come from
    -o KEY=VALUE storage options or the client's own configuration (environment
    variables, FSSPEC_<PROTOCOL>_<KEY>, config files), never from the store.

    \b
    Example:
      fsjobstore demo && fsjobstore status ./fsjobstore-demo
    """
    configure_logging(verbose, quiet)


def _open(locator: str, options: tuple[str, ...]) -> JobStore:
    return maintenance.open_store(locator, **parse_options(options))


# -- creating and looking inside --------------------------------------------------


@cli.command()
@click.argument("locator")
@click.option("--retry-count", type=click.IntRange(min=0), help="Tries a job gets after its first.")
@common_options
def init(
    *,
    locator: str,
    retry_count: int | None,
    options: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """Create an empty job store.

    \b
    Example:
      fsjobstore init s3://my-bucket/run-1 --retry-count 3
    """
    storage = parse_options(options)
    with failing("init", locator, storage):
        store = maintenance.init(locator, retry_count=retry_count, **storage)
    if as_json:
        emit_json({"locator": redact(store.locator), "retryCount": store.config.retryCount})
    else:
        click.echo(f"initialized a job store at {redact(store.locator)}")


@cli.command()
@click.argument("locator")
@common_options
def status(*, locator: str, options: tuple[str, ...], as_json: bool, no_progress: bool) -> None:
    """Count what a store holds.

    Jobs, files and their bytes, shared files, pending log messages, orphaned
    files (of jobs no longer stored) and temporaries (writes in progress, or
    left by crashed writers: see 'clean').

    \b
    Example:
      fsjobstore status ./fsjobstore-demo --json
    """
    with failing("status", locator, parse_options(options)):
        store = _open(locator, options)
        counts = maintenance.summary(store)
    if as_json:
        emit_json({"locator": redact(store.locator), **counts})
        return
    width = max(len(k) for k in counts)
    click.echo(f"job store {redact(store.locator)}")
    for key, value in counts.items():
        click.echo(f"  {key:<{width}}  {value}")


@cli.command()
@click.argument("locator")
@common_options
def jobs(*, locator: str, options: tuple[str, ...], as_json: bool, no_progress: bool) -> None:
    """List the jobs: ID, name and remaining tries, one per line.

    \b
    Example:
      fsjobstore jobs gs://my-bucket/run-1
    """
    with failing("jobs", locator, parse_options(options)):
        documents = maintenance.job_documents(_open(locator, options))
    lines = (
        f"{d.get('jobStoreID')}\t{d.get('jobName')}\t{d.get('remainingTryCount')}"
        for d in documents
    )
    emit(documents, lines, as_json)


@cli.command()
@click.argument("locator")
@click.argument("job_id")
@common_options
def show(
    *, locator: str, job_id: str, options: tuple[str, ...], as_json: bool, no_progress: bool
) -> None:
    """Print one job's stored document.

    \b
    Example:
      fsjobstore show ./fsjobstore-demo 3f2a…e1
    """
    with failing("show", locator, parse_options(options)):
        document = maintenance.job_document(_open(locator, options), job_id)
    if as_json:
        emit_json(document)
    else:
        click.echo(json.dumps(document, indent=2, sort_keys=True))


@cli.command()
@click.argument("locator")
@click.option("--job", "job_id", metavar="JOB_ID", help="Only the files written for this job.")
@click.option("--orphans", is_flag=True, help="Only files of jobs that are no longer stored.")
@common_options
def files(
    *,
    locator: str,
    job_id: str | None,
    orphans: bool,
    options: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """List the files: ID, size and owning job ('-' for none), one per line.

    \b
    Example:
      fsjobstore files ./fsjobstore-demo --orphans
    """
    with failing("files", locator, parse_options(options)):
        found = maintenance.files(_open(locator, options), job=job_id, orphans=orphans)
    lines = (f"{info.id}\t{info.size}\t{info.job or '-'}" for info in found)
    emit([f.as_json() for f in found], lines, as_json)


@cli.command()
@click.argument("locator")
@click.argument("file_id", required=False)
@click.option("--shared", metavar="NAME", help="A shared file instead of a file ID.")
@click.option(
    "-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="A storage option."
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def cat(
    *,
    locator: str,
    file_id: str | None,
    shared: str | None,
    options: tuple[str, ...],
    no_progress: bool,
) -> None:
    """Write a file's bytes to stdout.

    \b
    Examples:
      fsjobstore cat ./fsjobstore-demo '_~0f…9c~result.txt' > result.txt
      fsjobstore cat ./fsjobstore-demo --shared demo-notes.txt
    """
    if (file_id is None) == (shared is None):
        raise click.UsageError("give a FILE_ID or --shared NAME (one of them)")
    with failing("cat", locator, parse_options(options)):
        store = _open(locator, options)
        with (
            maintenance.cat(store, file_id, shared=shared) as handle,
            progress(not no_progress, "cat", "B") as bar,
        ):
            out = sys.stdout.buffer
            while block := handle.read(1024 * 1024):
                out.write(block)
                bar.relative_update(len(block))
            out.flush()


@cli.command()
@click.argument("locator")
@click.option("--all", "include_archived", is_flag=True, help="Archived messages too (first).")
@common_options
def logs(
    *,
    locator: str,
    include_archived: bool,
    options: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """Deliver the pending log messages, one per line, and archive them.

    Archived messages are not delivered again, unless with --all.

    \b
    Example:
      fsjobstore logs ./fsjobstore-demo --all
    """
    with failing("logs", locator, parse_options(options)):
        messages = maintenance.read_logs(_open(locator, options), include_archived=include_archived)
    emit(messages, messages, as_json)


# -- moving bytes -----------------------------------------------------------------


@cli.command("import")
@click.argument("locator")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--shared", metavar="NAME", help="Store the (only) URL as this shared file.")
@common_options
def import_(
    *,
    locator: str,
    urls: tuple[str, ...],
    shared: str | None,
    options: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """Copy URLs or local paths into the store; print each new file ID.

    \b
    Examples:
      fsjobstore import s3://my-bucket/run-1 reads.fastq https://example.org/ref.fa
      fsjobstore import ./store config.yaml --shared config.yaml
    """
    with failing("import into", locator, parse_options(options)):
        store = _open(locator, options)
        with progress(not no_progress, "import", "file") as bar:
            ids = maintenance.import_urls(store, urls, shared=shared, callback=bar)
    emit(ids, ids, as_json)


@cli.command()
@click.argument("locator")
@click.argument("pairs", nargs=-1, required=True, metavar="FILE_ID URL [FILE_ID URL]...")
@common_options
def export(
    *,
    locator: str,
    pairs: tuple[str, ...],
    options: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """Copy stored files to URLs or local paths.

    \b
    Example:
      fsjobstore export ./store '_~0f…9c~result.txt' s3://results/result.txt
    """
    if len(pairs) % 2:
        raise click.UsageError("FILE_ID and URL go in pairs: one is missing a partner")
    items = list(zip(pairs[::2], pairs[1::2], strict=True))
    with failing("export from", locator, parse_options(options)):
        store = _open(locator, options)
        with progress(not no_progress, "export", "file") as bar:
            maintenance.export_files(store, items, callback=bar)
    done = [{"id": file_id, "url": redact(url)} for file_id, url in items]
    emit(done, (f"exported {item['id']} to {item['url']}" for item in done), as_json)


@cli.command()
@click.argument("source")
@click.argument("destination")
@click.option(
    "--src-option", "src_options", multiple=True, metavar="KEY=VALUE", help="For SOURCE only."
)
@click.option(
    "--dst-option",
    "dst_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="For DESTINATION only.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=maintenance.MIGRATE_CONCURRENCY,
    show_default=True,
    help="Copies in flight at once (each bulk copy sends several requests).",
)
@common_options
def migrate(
    *,
    source: str,
    destination: str,
    src_options: tuple[str, ...],
    dst_options: tuple[str, ...],
    concurrency: int,
    options: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """Copy a whole store to another location, every ID preserved.

    DESTINATION must be empty, or hold an unfinished migration from SOURCE:
    an interrupted migration is finished by running the same command again,
    which copies only what is missing. -o options apply to both stores.

    \b
    Example:
      fsjobstore migrate ./store s3://my-bucket/run-1 --dst-option profile=prod
    """
    both = parse_options(options)
    src = {**both, **parse_options(src_options, "--src-option")}
    dst = {**both, **parse_options(dst_options, "--dst-option")}
    with (
        failing("migrate", source, src, to=(destination, dst)),
        progress(not no_progress, "migrate", "object") as bar,
    ):
        report = maintenance.migrate(
            source,
            destination,
            source_options=src,
            destination_options=dst,
            callback=bar,
            concurrency=concurrency,
        )
    if as_json:
        emit_json(report.as_json())
        return
    how = "copied by the service" if report.server_side else "streamed"
    click.echo(
        f"migrated {report.source} to {report.destination}: {report.objects} objects "
        f"({report.copied} copied, {report.skipped} already there, {report.removed} removed; "
        f"{report.bytes} bytes {how}); verified by size, {report.checksums} by checksum too; "
        f"{report.seconds:.1f} s"
    )


# -- reclaiming space -------------------------------------------------------------


@cli.command()
@click.argument("locator")
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@click.option(
    "--older-than",
    "older_than",
    default="1d",
    show_default=True,
    metavar="DURATION",
    help="Only temporaries this old (0, 90s, 15m, 12h, 1d, 2w).",
)
@common_options
def clean(
    *,
    locator: str,
    dry_run: bool,
    older_than: str,
    options: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """Delete orphaned files and what crashed writers left behind.

    Orphans are files written for a job that is no longer stored (files
    written with no job are kept). Temporaries are unfinished writes: files
    below tmp/, S3 multipart uploads, uncommitted Azure blobs. Run it while
    nothing else writes to the store.

    \b
    Example:
      fsjobstore clean s3://my-bucket/run-1 --older-than 12h --dry-run
    """
    age = parse_duration(older_than)
    with failing("clean", locator, parse_options(options)):
        store = _open(locator, options)
        with progress(not no_progress, "clean", "item") as bar:
            report = maintenance.clean(store, older_than=age, dry_run=dry_run, callback=bar)
    if as_json:
        emit_json(report.as_json())
        return
    verb = "would remove" if dry_run else "removed"
    for orphan in report.orphans:
        click.echo(f"{verb} orphan {orphan.id} ({orphan.size} bytes)")
    for temporary in report.temporaries:
        size = "size unknown" if temporary.size is None else f"{temporary.size} bytes"
        when = (
            "age unknown"
            if temporary.modified is None
            else datetime.fromtimestamp(temporary.modified).isoformat(timespec="seconds")
        )
        click.echo(f"{verb} {temporary.kind} {temporary.path} ({size}, {when})")
    click.echo(
        f"{verb} {len(report.orphans)} orphaned files and {len(report.temporaries)} "
        f"temporaries ({report.bytes} bytes)"
    )


@cli.command()
@click.argument("locator")
@click.option("--yes", is_flag=True, help="Do not ask: needed where there is no terminal.")
@common_options
def destroy(
    *, locator: str, yes: bool, options: tuple[str, ...], as_json: bool, no_progress: bool
) -> None:
    """Delete a job store and everything in it.

    Only a job store is deleted (or a migration's unfinished destination):
    a location holding other data is refused.

    \b
    Example:
      fsjobstore destroy s3://my-bucket/run-1 --yes
    """
    shown = redact(locator)
    if not yes:
        if not sys.stdin.isatty():
            raise CommandFailed(f"destroy {shown!r}: no terminal to confirm on; pass --yes")
        if not click.confirm(f"Destroy the job store at {shown} and everything in it?"):
            raise CommandFailed(f"destroy {shown!r}: not confirmed; nothing was deleted")
    with failing("destroy", locator, parse_options(options)):
        maintenance.destroy(locator, **parse_options(options))
    if as_json:
        emit_json({"locator": shown, "destroyed": True})
    else:
        click.echo(f"destroyed the job store at {shown}")


@cli.command()
@click.argument("locator", default=maintenance.DEFAULT_DEMO_STORE)
@click.option("--force", is_flag=True, help="Replace a store that demo did not make.")
@common_options
def demo(
    *, locator: str, force: bool, options: tuple[str, ...], as_json: bool, no_progress: bool
) -> None:
    """Walk through the job store API on a fresh store, and leave it there.

    LOCATOR defaults to ./fsjobstore-demo. The demo replaces its own earlier
    store there, and refuses any other store unless --force. With --json it
    prints what 'status --json' prints of the store it left, instead of the
    walk-through.

    \b
    Example:
      fsjobstore demo /tmp/try-it
    """
    storage: dict[str, Any] = parse_options(options)
    with failing("demo", locator, storage):
        say = (lambda _: None) if as_json else click.echo
        store = maintenance.demo(locator, force=force, say=say, **storage)
        if as_json:
            emit_json({"locator": redact(store.locator), **maintenance.summary(store)})
