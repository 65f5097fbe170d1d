"""``joblet cron next`` (pure schedule math through the CLI) and ``create job --from=cronjob/X``
(:func:`job_from_cronjob` against a real in-process registry)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joblet.cli.cron import MANUAL_ANNOTATION, cron_app, job_from_cronjob, upcoming
from joblet.clock import parse_time
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.store.memory import MemoryStore

runner = CliRunner()

NEXT_CASES = [
    ("every-15-min", ["*/15 * * * *", "--from", "2024-01-01T00:07:00Z", "--count", "3"],
     ["2024-01-01T00:15:00Z", "2024-01-01T00:30:00Z", "2024-01-01T00:45:00Z"]),
    ("time-zone-printed-with-offset", ["0 9 * * 1-5", "--time-zone", "Europe/Rome", "--from",
                                       "2024-07-05T12:00:00Z", "--count", "2"],
     ["2024-07-08T09:00:00+02:00", "2024-07-09T09:00:00+02:00"]),
    ("every-duration", ["@every 90m", "--from", "2024-01-01T00:00:00Z", "-c", "2"],
     ["2024-01-01T01:30:00Z", "2024-01-01T03:00:00Z"]),
    ("dst-gap-skipped", ["30 2 * * *", "--tz", "America/New_York", "--from", "2024-03-09T12:00:00Z", "-c", "1"],
     ["2024-03-11T02:30:00-04:00"]),
]


@pytest.mark.parametrize(("args", "expected"), [pytest.param(a, e, id=i) for i, a, e in NEXT_CASES])
def test_cron_next(args: list[str], expected: list[str]) -> None:
    result = runner.invoke(cron_app, ["next", *args])
    assert result.exit_code == 0, result.output
    assert result.output.split() == expected


@pytest.mark.parametrize(("args", "code", "message"), [
    pytest.param(["* * * * 7"], 2, "above maximum (6)", id="bad-schedule"),
    pytest.param(["* * * * *", "--time-zone", "Nowhere/Land"], 2, "unknown time zone Nowhere/Land", id="bad-zone"),
    pytest.param(["* * * * *", "--from", "yesterday"], 2, "RFC 3339", id="bad-from"),
    pytest.param(["59 23 31 2 *"], 1, "never runs", id="never-runs"),
])
def test_cron_next_errors(args: list[str], code: int, message: str) -> None:
    result = runner.invoke(cron_app, ["next", *args])
    assert result.exit_code == code
    assert message in result.output


def test_upcoming_defaults_to_utc() -> None:
    assert upcoming("@daily", None, parse_time("2024-01-01T10:00:00Z"), 1) == ["2024-01-02T00:00:00Z"]


def test_job_from_cronjob(tmp_path: Path) -> None:
    async def main() -> None:
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data"), run_controllers=False,
                             serve_http=False, store=MemoryStore())
        await plane.start()
        try:
            cj = await plane.client.create("cronjobs", {
                "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
                "spec": {"schedule": "@daily", "jobTemplate": {
                    "metadata": {"labels": {"app": "n"}, "annotations": {"team": "x"}},
                    "spec": {"backoffLimit": 2, "template": {"spec": {
                        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}, "default")
            job = await job_from_cronjob(plane.client, "nightly", "nightly-manual", "default")
            meta = job["metadata"]
            assert meta["name"] == "nightly-manual"
            assert meta["annotations"][MANUAL_ANNOTATION] == "manual"
            assert meta["annotations"]["team"] == "x"
            assert meta["labels"]["app"] == "n"
            assert meta["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
            assert meta["ownerReferences"][0]["controller"] is True
            assert job["spec"]["backoffLimit"] == 2
        finally:
            await plane.stop()

    asyncio.run(main())
