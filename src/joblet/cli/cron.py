"""CLI for cron schedules and CronJobs: "when will this run?" and "run it now".

Users of Kubernetes CronJobs ask for two things kubectl does not give well: seeing the
next run times of a schedule (with its time zone and DST) before trusting it, and starting
a CronJob by hand (``kubectl create job --from=cronjob/X``). This module gives both:

* ``joblet cron next "SCHEDULE" [--time-zone TZ] [--from TIME] [--count N]`` - pure schedule
  math, no server needed;
* ``joblet cronjob next NAME [--count N] [-n NS]`` - the next runs of a stored CronJob;
* ``joblet create job NAME --from=cronjob/X`` - :func:`job_from_cronjob`.

The schedule math is the controller's own (``joblet.controllers.cronjob.schedule``), so what
the CLI prints is what the controller will do. main.py imports this module; this module
imports main.py's helpers lazily, inside the commands, to avoid an import cycle.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any

import typer

from joblet.api.validation.cron import ScheduleError, parse_standard
from joblet.cli.console import bad_input, err, out
from joblet.client.interface import Client
from joblet.clock import Clock, RealClock, parse_time
from joblet.controllers.cronjob.schedule import (
    MANUAL_ANNOTATION as MANUAL_ANNOTATION,  # re-exported for callers of this module
)
from joblet.controllers.cronjob.schedule import (
    UnknownTimeZoneError,
    cronjob_schedule,
    cronjob_zone,
    format_rfc3339_in,
    manual_job,
    next_times,
)

Obj = dict[str, Any]


cron_app = typer.Typer(name="cron", help="Cron schedule tools (no server needed).", no_args_is_help=True)
cronjob_app = typer.Typer(name="cronjob", help="Inspect CronJobs.", no_args_is_help=True)
create_app = typer.Typer(name="create", help="Create an object from another.", no_args_is_help=True)

CountOpt = Annotated[int, typer.Option("--count", "-c", min=1, max=1000, help="How many run times to print.")]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="State directory.")]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", help="Kubeconfig naming the server.")]


# A callback makes each app a command group (``cron next``), also when used on its own.
@cron_app.callback()
def _cron_group() -> None:
    """Cron schedule tools (no server needed)."""


@cronjob_app.callback()
def _cronjob_group() -> None:
    """Inspect CronJobs."""


@create_app.callback()
def _create_group() -> None:
    """Create an object from another."""


# -- pure helpers --------------------------------------------------------------------------


def upcoming(schedule: str, time_zone: str | None, start: datetime, count: int) -> list[str]:
    """The next ``count`` run times of ``schedule`` after ``start``, RFC 3339 in the zone."""
    sched = parse_standard(schedule)
    zone: tzinfo = cronjob_zone({"spec": {"timeZone": time_zone}}, sched)
    return [format_rfc3339_in(t, zone) for t in next_times(sched, start, count, zone)]


async def job_from_cronjob(client: Client, cronjob_name: str, job_name: str, namespace: str) -> Obj:
    """``joblet create job NAME --from=cronjob/X``: create the Job, return it as stored."""
    cj = await client.get("cronjobs", cronjob_name, namespace)
    return await client.create("jobs", manual_job(cj, job_name), namespace)


def _start_time(value: str | None, clock: Clock) -> datetime:
    if value is None:
        return clock.now()
    try:
        return parse_time(value)
    except ValueError:
        err.print(f'error: --from must be an RFC 3339 time like 2024-01-01T00:00:00Z, not "{value}"')
        raise typer.Exit(2) from None


# -- commands ---------------------------------------------------------------------------


@cron_app.command("next")
def cron_next(
    schedule: Annotated[str, typer.Argument(help='Cron schedule, e.g. "*/5 * * * *", "@hourly", "@every 90m".')],
    time_zone: Annotated[str | None, typer.Option("--time-zone", "--tz", help="IANA zone (CronJob spec.timeZone).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start after this RFC 3339 time (default: now).")] = None,
    count: CountOpt = 5,
) -> None:
    """Print the next run times of a schedule, as the CronJob controller computes them."""
    with bad_input(UnknownTimeZoneError), bad_input(ScheduleError, f'invalid schedule "{schedule}": '):
        times = upcoming(schedule, time_zone, _start_time(start, RealClock()), count)
    if not times:
        err.print(f'schedule "{schedule}" never runs')
        raise typer.Exit(1)
    _print_times(times, cronjob_zone({"spec": {"timeZone": time_zone}}, parse_standard(schedule)))


def _print_times(times: list[str], zone: tzinfo | None = None) -> None:
    """ISO lines for scripts; on a terminal ``Mon 2026-12-07 02:30 CET (in 1h42m)``."""
    if not out.is_terminal:
        for t in times:
            out.print(t)
        return
    from joblet.api.tables import human_duration
    from joblet.clock import parse_time

    now = RealClock().now()
    for t in times:
        when = datetime.fromisoformat(t.replace("Z", "+00:00"))
        if zone is not None:
            when = when.astimezone(zone)
        zone_name = when.tzname() or ""
        left = (parse_time(t) - now).total_seconds()
        out.print(f"{when:%a %Y-%m-%d %H:%M} {zone_name} (in {human_duration(max(left, 0))})  {t}")


@cronjob_app.command("next")
def cronjob_next(
    name: Annotated[str, typer.Argument(help="CronJob name (or cronjob/NAME).")],
    count: CountOpt = 5,
    namespace: NamespaceOpt = "default",
    data_dir: DataDirOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Print the next run times of a stored CronJob (in its spec.timeZone)."""
    from joblet.cli.connect import connect
    from joblet.cli.main import _config, run_async

    zones: list[tzinfo] = []

    async def go() -> list[str]:
        async with connect(kubeconfig, _config(data_dir), read_only=True) as client:
            cj = await client.get("cronjobs", name.split("/", 1)[-1], namespace)
        if (cj.get("spec") or {}).get("suspend"):
            err.print(f"cronjob.batch/{name} is suspended: it will not run until resumed")
        sched = cronjob_schedule(cj)
        zone = cronjob_zone(cj, sched)
        zones.append(zone)
        return [format_rfc3339_in(t, zone) for t in next_times(sched, RealClock().now(), count, zone)]

    try:
        times = run_async(go())
    except (ScheduleError, UnknownTimeZoneError) as e:
        err.print(f"error: {e}")
        raise typer.Exit(1) from None
    _print_times(times, zones[0] if zones else None)


@create_app.command("job")
def create_job(
    name: Annotated[str, typer.Argument(help="Name of the new Job.")],
    from_: Annotated[str, typer.Option("--from", help="cronjob/NAME to copy the jobTemplate from.")],
    namespace: NamespaceOpt = "default",
    data_dir: DataDirOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Start a CronJob by hand: a Job from its jobTemplate (kubectl create job --from=cronjob/X)."""
    from joblet.cli.connect import connect
    from joblet.cli.main import _config, run_async

    kind, _, source = from_.partition("/")
    if kind.lower() not in ("cronjob", "cronjobs", "cj", "cronjob.batch") or not source:
        err.print(f"error: --from must be cronjob/NAME, not {from_!r}")
        raise typer.Exit(2)

    async def go() -> Obj:
        async with connect(kubeconfig, _config(data_dir)) as client:
            return await job_from_cronjob(client, source, name, namespace)

    job = run_async(go())
    out.print(f"job.batch/{job['metadata']['name']} created")

