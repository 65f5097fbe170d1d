"""Pure pieces of ``joblet run``'s output and robustness: failure lines, index sets, progress
lines, and that one stored object of the wrong shape breaks neither a table nor a controller."""

from __future__ import annotations

from joblet.api.tables import to_table
from joblet.cli.follow import _expand, failure_text, pod_failure, summary
from joblet.cli.progress import progress_line
from joblet.client.events import FakeRecorder
from joblet.clock import FakeClock
from joblet.controllers.events import INVALID_OBJECT_REASON, TerminalReporter, undecodable

BAD_JOB = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "wrongtype", "namespace": "default", "uid": "u", "resourceVersion": "7"},
           "spec": {"completions": "three", "parallelism": []}, "status": {"succeeded": "x"}}
GOOD_JOB = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "ok", "namespace": "default", "uid": "v", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"completions": 1, "parallelism": 1}, "status": {"succeeded": 1}}


def test_a_bad_object_gets_an_invalid_row_and_the_others_still_list() -> None:
    table = to_table("jobs", [BAD_JOB, GOOD_JOB], FakeClock().now())
    bad, good = table["rows"]
    assert bad["cells"][0] == "wrongtype" and "<invalid>" in bad["cells"]
    assert good["cells"][:3] == ["ok", "Complete", "1/1"] or good["cells"][2] == "1/1"


def test_the_guard_records_one_warning_per_resource_version() -> None:
    rec = FakeRecorder()
    guard = TerminalReporter(rec, "job-controller")
    error = ValueError("invalid literal for int() with base 10: 'three'")
    guard.report("default/wrongtype", *undecodable(BAD_JOB, error))
    guard.report("default/wrongtype", *undecodable(BAD_JOB, error))
    assert rec.reasons() == [INVALID_OBJECT_REASON]
    assert "three" in rec.events[0].message and rec.events[0].type == "Warning"
    changed = {**BAD_JOB, "metadata": {**BAD_JOB["metadata"], "resourceVersion": "8"}}
    guard.report("default/wrongtype", *undecodable(changed, ValueError("still bad")))
    assert len(rec.events) == 2


def test_progress_and_summary_survive_wrong_types() -> None:
    assert progress_line(BAD_JOB).startswith("job/wrongtype: 0/three succeeded")
    assert summary(BAD_JOB, "Failed").startswith("job/wrongtype Failed")


def test_failure_line_of_an_exec_failure() -> None:
    pod = {"status": {"phase": "Failed", "containerStatuses": [{"name": "c", "state": {"terminated": {
        "exitCode": 128, "reason": "StartError",
        "message": 'exec: "x": executable file not found in $PATH'}}}]}}
    assert failure_text(*pod_failure(pod)) == 'StartError (exit 128): exec: "x": executable file not found in $PATH'
    evicted = {"status": {"phase": "Failed", "reason": "DeadlineExceeded", "message": "Pod was active too long"}}
    assert failure_text(*pod_failure(evicted)) == "DeadlineExceeded: Pod was active too long"


def test_index_intervals() -> None:
    assert _expand("1,3-5,x,") == {1, 3, 4, 5}
    assert _expand("") == set()
