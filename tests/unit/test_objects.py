"""The one resourceVersion parser (joblet.objects.rv_of) and the one "is this Job finished" (joblet.objects.job_finished), with the cases where the five
copies it replaced disagreed: the CLI and the CronJob controller asked for Complete before
Failed and looked only at the first condition of a type; TTL and validation asked for any.
Upstream's IsJobFinished takes the first Complete/Failed condition that is True, in list order."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.objects import job_finished, rv_of


def job(*conditions: tuple[str, str]) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": t, "status": s} for t, s in conditions]}}


@pytest.mark.parametrize(
    ("conditions", "want"),
    [
        ((), None),
        ((("Complete", "True"),), "Complete"),
        ((("Failed", "True"),), "Failed"),
        ((("SuccessCriteriaMet", "True"), ("Complete", "False")), None),
        ((("FailureTarget", "True"),), None),
        # list order decides, not Complete-before-Failed (the CLI's and CronJob's old answer: Complete)
        ((("Failed", "True"), ("Complete", "True")), "Failed"),
        # a True condition after a False one of the same type counts (the old CLI/CronJob copies
        # looked only at the first condition of a type and said "not finished")
        ((("Complete", "False"), ("Complete", "True")), "Complete"),
    ],
    ids=["none", "complete", "failed", "only-interim-conditions", "failure-target", "list-order",
         "later-duplicate"],
)
def test_job_finished(conditions: tuple[tuple[str, str], ...], want: str | None) -> None:
    assert job_finished(job(*conditions)) == want


def test_a_job_without_status_is_not_finished() -> None:
    assert job_finished({"metadata": {"name": "x"}}) is None
    assert job_finished({"status": None}) is None


# The one resourceVersion parser. The store's copy raised KeyError/ValueError where the three
# controller copies answered 0 (an object that was never stored).
@pytest.mark.parametrize(
    ("obj", "want"),
    [
        ({"metadata": {"resourceVersion": "42"}}, 42),
        ({"metadata": {"resourceVersion": 7}}, 7),
        ({"metadata": {"resourceVersion": ""}}, 0),
        ({"metadata": {"resourceVersion": "abc"}}, 0),
        ({"metadata": {}}, 0),
        ({"metadata": None}, 0),
        ({}, 0),
        (None, 0),
    ],
    ids=["string", "int", "empty", "garbage", "missing", "null-metadata", "no-metadata", "no-object"],
)
def test_rv_of(obj: dict[str, Any] | None, want: int) -> None:
    assert rv_of(obj) == want
