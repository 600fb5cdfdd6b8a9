"""The ``etl`` command: thin click commands, each calling one library function.

Heavy libraries (polars, duckdb, source clients) are imported inside the commands that need them, so
``etl --help`` and ``etl plugins`` start fast under cron.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from .errors import EXIT_LOCKED, EXIT_USAGE, CheckpointError, ConfigError, LockedError

DEFAULT_FILE = "pipelines.toml"
file_argument = click.argument("file", default=DEFAULT_FILE, type=click.Path(dir_okay=False))


def pipelines_option(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--pipeline", "-p", "pipelines", multiple=True, help=f"{verb} only this pipeline (repeatable).")


def _config_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn configuration and checkpoint errors into exit code 2 with the message, and nothing more."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (ConfigError, CheckpointError) as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except LockedError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_LOCKED)

    return wrapper


def _log_options(default_format: str | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--log-format``, ``-v`` and ``-q``, declared once for the group and once for every subcommand."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed([
            click.option("--log-format", type=click.Choice(["auto", "console", "json"]),
                         default=default_format,
                         help="Log renderer; auto: console on a terminal, JSON lines otherwise."),
            click.option("-v", "--verbose", count=True, help="More log output (debug), with tracebacks."),
            click.option("-q", "--quiet", is_flag=True,
                         help="Only warnings and errors; no summary unless something failed."),
        ]):
            function = option(function)
        return function

    return decorate


def _configure_logging(ctx: click.Context, log_format: str | None, verbose: int, quiet: bool) -> None:
    """Merge what was given before the subcommand (``etl -v run``) with what came after it (``etl run -v``)."""
    from .log import configure

    settings = ctx.obj.setdefault("log", {"log_format": "auto", "verbose": 0, "quiet": False})
    settings["log_format"] = log_format or settings["log_format"]
    settings["verbose"] += verbose
    settings["quiet"] = settings["quiet"] or quiet
    configure(settings["log_format"], -1 if settings["quiet"] else min(settings["verbose"], 1))


def _command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """A subcommand of ``etl`` that also takes the logging options after its name."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        @wraps(function)
        def wrapper(*positional: Any, log_format: str | None, verbose: int, quiet: bool, **options: Any) -> Any:
            _configure_logging(click.get_current_context(), log_format, verbose, quiet)
            return function(*positional, **options)

        return cli.command(*args, **kwargs)(_log_options(None)(wrapper))

    return decorate


@click.group()
@click.version_option(package_name="market-etl")
@_log_options("auto")
@click.pass_context
def cli(ctx: click.Context, log_format: str, verbose: int, quiet: bool) -> None:
    """Market-data ETL: sources, transforms and sinks chained in a pipeline file."""
    ctx.obj = {}
    _configure_logging(ctx, log_format, verbose, quiet)


def _finish(ctx: click.Context, outcome: Any, project: Any) -> None:
    """Report the run, send its alerts and write its metrics (when the file asks), and exit with its code."""
    from .timeframes import iso
    from .watch import after_run

    quiet = ctx.obj["log"]["quiet"]
    for result in outcome.results:
        for record in result.fallbacks:
            click.echo(f"FELL BACK {result.pipeline} {result.stream.label} {iso(record.start)}..{iso(record.end)}: "
                       f"{record.source} -> {record.fallback} ({_one_line(record.reason)})")
        if result.error:
            click.echo(f"FAILED {result.pipeline} {result.stream.label}: {_one_line(result.error)}")
    for name, reason in outcome.failed.items():
        click.echo(f"FAILED {name}: {_one_line(reason)}")
    for name, reason in outcome.locked.items():
        click.echo(f"LOCKED {name}: {reason}", err=True)
    if not quiet or outcome.exit_code:
        click.echo(outcome.summary())
    after_run(project, outcome)
    sys.exit(outcome.exit_code)


def _one_line(message: str) -> str:
    """A FAILED line stays one line, however many lines the exception's message had (polars' have several)."""
    return " ".join(message.split())


def _interactive() -> bool:
    return sys.stderr.isatty()


def cluster_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--cluster", metavar="ADDRESS", help="Run the units of work on a Dask cluster: "
                        "tcp://HOST:8786, or local:N for N local worker processes (also ETL_CLUSTER, "
                        "[settings] cluster).")(function)


def _cluster(option: str | None, project: Any) -> str | None:
    return option or os.environ.get("ETL_CLUSTER") or project.cluster


@_command()
@file_argument
@pipelines_option("Run")
@cluster_option
@click.pass_context
@_config_errors
def run(ctx: click.Context, file: str, pipelines: tuple[str, ...], cluster: str | None) -> None:
    """Incremental run of all (or the named) pipelines from their checkpoints."""
    from . import config, runner
    from .cluster import driving

    project = config.load(file)
    with driving(_cluster(cluster, project), project.select(pipelines)) as drive:
        outcome = runner.run(project, pipelines, progress=_interactive(), drive=drive)
    _finish(ctx, outcome, project)


@_command()
@file_argument
@pipelines_option("Follow")
@click.pass_context
@_config_errors
def stream(ctx: click.Context, file: str, pipelines: tuple[str, ...]) -> None:
    """Follow live sources until SIGTERM or SIGINT: heal from REST, then store each bar as it closes."""
    import signal
    import threading

    from . import config, runner

    stop = threading.Event()  # set from the start: a stop during the set-up ends the stream as soon as it runs
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    project = config.load(file)
    outcome = runner.stream(project, pipelines, stop)
    try:
        _finish(ctx, outcome, project)
    except SystemExit as done:
        _exit_at_once(done.code)


def _exit_at_once(code: Any) -> None:
    """End ``etl stream`` without the interpreter's teardown: with hundreds of streams it spends a second of a
    loaded machine freeing what the process is about to lose anyway (DESIGN 9 gives the whole exit 5 s), and the
    threads left busy at the stop (``etl.streaming.abandon``) end with the process instead of running into its
    teardown. What must outlive the process is on disk by now (sinks closed, checkpoints, ledger, live board);
    what was printed is flushed first (the log's handlers write straight to stderr)."""
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)


@_command()
@file_argument
@click.option("--pipeline", "-p", help="The pipeline to fill.")
@click.option("--start", help="First timestamp to load (ISO date or datetime, UTC).")
@click.option("--end", help="End of the range, exclusive (default: now).")
@click.option("--resume", is_flag=True, help="Continue every unfinished backfill recorded in the state dir.")
@click.option("--dry-run", is_flag=True, help="Show what would be fetched (objects, bytes, cost); fetch nothing.")
@cluster_option
@click.pass_context
@_config_errors
def backfill(ctx: click.Context, file: str, pipeline: str | None, start: str | None, end: str | None,
             resume: bool, dry_run: bool, cluster: str | None) -> None:
    """One-off history fill for a range, checkpointed as it goes."""
    from . import config, runner
    from .cluster import driving

    project = config.load(file)
    if resume:
        if pipeline or start or end:
            raise click.UsageError("--resume takes no --pipeline, --start or --end: it uses the recorded ones")
        unfinished = runner.unfinished_backfills(project)
        if not unfinished:
            click.echo("No unfinished backfills.")
            return
        specs = project.select(sorted({record["pipeline"] for _, record in unfinished}))
        with driving(_cluster(cluster, project), specs) as drive:
            outcome = runner.resume(project, progress=_interactive(), drive=drive)
        _finish(ctx, outcome, project)
        return
    if not pipeline or not start:
        raise click.UsageError("backfill needs --pipeline and --start (or --resume)")
    if dry_run:
        for line in runner.plan(project, pipeline, _time(start, "--start"), _time(end, "--end") if end else None):
            click.echo(line)
        return
    with driving(_cluster(cluster, project), project.select([pipeline])) as drive:
        outcome = runner.backfill(project, pipeline, _time(start, "--start"), _time(end, "--end") if end else None,
                                  progress=_interactive(), drive=drive)
    _finish(ctx, outcome, project)


@_command()
@file_argument
@pipelines_option("Heal")
@click.option("--since", help="Only gaps starting at or after this time (ISO date or datetime, UTC).")
@click.pass_context
@_config_errors
def heal(ctx: click.Context, file: str, pipelines: tuple[str, ...], since: str | None) -> None:
    """Fetch the gaps the runs recorded again: store what the venue now has, confirm what it still lacks."""
    from . import config
    from .heal import heal as heal_gaps

    project = config.load(file)
    outcome = heal_gaps(project, pipelines, _time(since, "--since") if since else None, progress=_interactive())
    if not outcome.results and not outcome.locked:
        click.echo("No open gaps.")
        return
    _finish(ctx, outcome, project)


@_command()
@file_argument
@click.option("--pipeline", "-p", required=True, help="The pipeline to remove the symbol from.")
@click.option("--symbol", "-s", required=True, help="The symbol, as the pipeline file writes it.")
@click.option("--before", help="Only rows before this time (ISO date or datetime, UTC); the checkpoint stays.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_config_errors
def prune(file: str, pipeline: str, symbol: str, before: str | None, yes: bool) -> None:
    """Remove a symbol's rows from every sink of a pipeline, with its checkpoint entry, quarantine and gaps."""
    from . import config
    from .prune import prune as prune_symbol

    project = config.load(file)
    (spec,) = project.select([pipeline])
    before_ms = _time(before, "--before") if before else None
    rows = f"rows before {before}" if before else "rows"
    sinks = ", ".join(sink.plugin for sink in spec.sinks)
    if not yes:
        click.confirm(f"Remove {symbol}'s {rows} from {pipeline} ({sinks}), with its "
                      f"{'' if before else 'checkpoint entries, '}quarantine and gaps?", abort=True)
    pruned = prune_symbol(project, pipeline, symbol, before_ms)
    for (sink, table), count in pruned.rows.items():
        click.echo(f"{sink} {table}: {count:,} rows removed")
    click.echo(f"checkpoint entries: {pruned.checkpoint_entries}, quarantine files: {pruned.quarantine_files}, "
               f"gaps: {pruned.gaps}")


def _time(text: str, option: str) -> int:
    from .timeframes import parse_time

    try:
        return parse_time(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date or datetime", param_hint=option) from None


@_command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List registered sources, transforms and sinks, and plugins that failed to load."""
    from .plugins import registry

    found = registry()
    if as_json:
        click.echo(json.dumps([_plugin_json(info) for info in found.plugins], indent=2))
        return
    rows = [
        (registration.name, registration.kind, f"{registration.package} {registration.version}", registration.plugin,
         ", ".join(_live(registration)))
        for info in found.plugins
        for registration in info.registered
    ]
    click.echo(_table(("name", "kind", "package", "plugin", "live"), sorted(rows, key=lambda row: (row[1], row[0]))))
    for info in found.plugins:
        if info.error:
            click.echo(f"error: {info.name} ({info.package} {info.version}): {info.error}")


def _live(registration: Any) -> tuple[str, ...]:
    """The datasets a source can follow live (``etl stream``); nothing for anything else."""
    return tuple(getattr(registration.obj, "live", ())) if registration.kind == "source" else ()


def _plugin_json(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "package": info.package,
        "version": info.version,
        "kinds": info.kinds,
        "registered": [{"kind": r.kind, "name": r.name, **({"live": list(_live(r))} if _live(r) else {})}
                       for r in info.registered],
        "error": info.error,
    }


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    widths = [max(len(str(value)) for value in column) for column in zip(headers, *rows, strict=False)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(value).ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


@_command()
@file_argument
@_config_errors
def validate(file: str) -> None:
    """Check the file and every plugin's options: no network, no writes."""
    from . import config
    from .overview import check_project

    project = config.load(file)
    streams = check_project(project)
    click.echo(f"{project.path.name}: {len(project.pipelines)} pipelines, {streams} streams: OK")


@_command()
@file_argument
@click.option("--gaps", "show_gaps", is_flag=True, help="List the open gaps (runs of missing bars) the runs have "
              "found, then those etl heal confirmed.")
@click.option("--check", is_flag=True, help="A line per problem (a stream behind its max_lag, a failed last run, "
              "recent open gaps); exit 1 if there is one, else 0.")
@click.option("--json", "as_json", is_flag=True, help="Every stream's state as JSON, with its problems.")
@click.option("--stored", is_flag=True, help="What each sink holds per stream (rows, first and last, size) beside "
              "the checkpoint; exit 1 when they do not match.")
@click.option("--units", "show_units", is_flag=True,
              help="List the units of work of each pipeline's last run: where each ran, how long it took.")
@_config_errors
def status(file: str, show_gaps: bool, check: bool, as_json: bool, stored: bool, show_units: bool) -> None:
    """Per stream: checkpoint, lag behind now, gaps and the bars they miss, last run result.

    A gap is one hole in a series; its missing bars are the bars the hole spans. The run summary counts both the
    same way (``gaps: 1, missing bars: 2``).
    """
    from . import config
    from .overview import gap_rows, live_rows, status_rows, unit_rows

    if show_gaps + stored + show_units + (check or as_json) > 1:
        raise click.UsageError("--gaps, --stored, --units and --check/--json are separate views: give one")
    project = config.load(file)
    if show_units:
        rows = unit_rows(project)
        headers = ("pipeline", "unit", "window", "worker", "seconds", "rows", "result")
        click.echo(_table(headers, rows) if rows else "no unit has run yet")
        return
    if show_gaps:
        _echo_gaps(gap_rows(project, "open"), gap_rows(project, "confirmed"))
        return
    if check or as_json:
        _check(project, check, as_json)
        return
    if stored:
        from .inventory import HEADERS, stored_rows

        rows = stored_rows(project)
        click.echo(_table(HEADERS, rows))
        sys.exit(1 if any(str(row[-1]).startswith(("MISMATCH", "ERROR")) for row in rows) else 0)
    headers = ("pipeline", "stream", "checkpoint", "lag", "gaps", "missing bars", "last run", "rows", "result")
    click.echo(_table(headers, status_rows(project)))
    live = live_rows(project)
    if live:
        click.echo("\nlive connections (etl stream):")
        click.echo(_table(("pipeline", "process", "connection", "streams", "up since", "reconnects",
                           "last message"), live))


def _check(project: Any, check: bool, as_json: bool) -> None:
    """``--json``: every stream; ``--check``: a line per problem, and exit code 1 when there is one."""
    from .health import project_health

    found = project_health(project)
    problems = [(health, cause, message) for health in found for cause, message in health.problems]
    if as_json:
        click.echo(json.dumps([health.as_json() for health in found], indent=2))
    else:
        for health, cause, message in problems:
            click.echo(f"{cause.upper()} {health.pipeline} {health.stream}: {message}")
        if not problems:
            click.echo(f"ok: {len(found)} streams fresh, none failed, no recent open gaps")
    if check and problems:
        sys.exit(1)


def _echo_gaps(open_rows: list[tuple[Any, ...]], confirmed: list[tuple[Any, ...]]) -> None:
    """Open gaps (``etl heal`` fetches them again), then the confirmed ones (the venue has no data there)."""
    headers = ("pipeline", "stream", "from", "to", "missing bars")
    if not open_rows and not confirmed:
        click.echo("no missing bars")
        return
    click.echo(_table(headers, open_rows) if open_rows else "no open gaps")
    if confirmed:
        click.echo("\nconfirmed (the venue has no rows there):")
        click.echo(_table((*headers, "confirmed"), confirmed))


@_command()
@file_argument
@click.option("--pipeline", "-p", required=True, help="The pipeline whose symbols to list.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_config_errors
def symbols(file: str, pipeline: str, as_json: bool) -> None:
    """The symbols a pipeline's selector resolves to now, with their listing status (asks the venue)."""
    from . import config, universe
    from .errors import EXIT_FAILED, EtlError

    (spec,) = config.load(file).select([pipeline])
    try:
        listings = universe.current(spec)
    except EtlError as exc:
        click.echo(f"Error: {pipeline}: cannot list the symbols: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    if as_json:
        selector = spec.source.selector.describe() if spec.source.selector else None
        click.echo(json.dumps({"pipeline": pipeline, "source": spec.source.plugin, "selector": selector,
                               "symbols": [listing._asdict() for listing in listings]}, indent=2))
        return
    rows = [(listing.symbol, listing.status, "" if listing.quote_volume is None else f"{listing.quote_volume:,.0f}")
            for listing in listings]
    click.echo(_table(("symbol", "status", "quote volume 24h"), rows) if rows else "no symbol matches the selector")
