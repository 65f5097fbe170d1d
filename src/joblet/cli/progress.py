"""``joblet run``'s progress counts and how often a progress line is printed.

Why: the Job's status is written only when the Job controller syncs, and it paces the syncs of
a big Job by their cost, so a progress line that followed the Job alone stood still for
seconds while pods kept finishing. The follower already watches every pod of the Job (for
their logs), so it counts them itself (:class:`PodTally`) and shows whichever of the two is
further along (:func:`merged_counts`); the Job's own counts win once it has written them,
and the summary line at the end is the Job's alone. Off a terminal a line is printed when
the counts changed, at most once per :data:`PERIOD` (:class:`Pacer`, on a fixed grid so a
busy event loop does not stretch the interval), so a 10,000-pod Job prints a few lines a
second, not one per pod.

Pure: no I/O, no clock reads (the caller passes ``now``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from joblet.objects import condition_true, count_of, job_finished, name_of, uid_of

Obj = dict[str, Any]
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
PERIOD = 0.25  # seconds between two progress lines at most: 4 a second, as often as a terminal footer redraws

_ACTIVE, _TERMINATING, _SUCCEEDED, _FAILED, _GONE = "active", "terminating", "succeeded", "failed", "gone"


@dataclass
class PodTally:
    """Counts of a Job's pods as the follower's pod watch sees them, kept incrementally.

    ``succeeded`` counts distinct completion indexes for an Indexed Job (as the Job does);
    a pod that finished stays counted when it is deleted (the Job counted it too); a pod
    deleted before it finished leaves active/terminating and is counted nowhere (the Job
    decides whether that is a failure)."""

    indexed: bool = False
    _state: dict[str, str] = field(default_factory=dict)
    _succeeded_keys: set[str] = field(default_factory=set)
    active: int = 0
    terminating: int = 0
    failed: int = 0

    @property
    def seen(self) -> bool:
        return bool(self._state)

    @property
    def succeeded(self) -> int:
        return len(self._succeeded_keys)

    def _key(self, pod: Obj) -> str:
        index = ((pod.get("metadata") or {}).get("labels") or {}).get(INDEX_KEY) if self.indexed else None
        return f"i{index}" if index is not None else f"u{uid_of(pod) or name_of(pod)}"

    def _move(self, uid: str, new: str) -> bool:
        old = self._state.get(uid)
        if old == new or old in (_SUCCEEDED, _FAILED):  # a finished pod stays as it finished
            return False
        for state, delta in ((old, -1), (new, 1)):
            if state == _ACTIVE:
                self.active += delta
            elif state == _TERMINATING:
                self.terminating += delta
            elif state == _FAILED:
                self.failed += delta
        self._state[uid] = new
        return True

    def observe(self, pod: Obj) -> bool:
        """A pod as listed or watched (ADDED/MODIFIED); whether any count changed."""
        status = pod.get("status") or {}
        phase = status.get("phase")
        if phase == "Succeeded":
            new = _SUCCEEDED
        elif phase == "Failed":
            new = _FAILED
        elif (pod.get("metadata") or {}).get("deletionTimestamp"):
            new = _TERMINATING
        else:
            new = _ACTIVE
        changed = self._move(uid_of(pod), new)
        if changed and new == _SUCCEEDED:
            self._succeeded_keys.add(self._key(pod))
        return changed

    def deleted(self, pod: Obj) -> bool:
        """A pod's DELETED event; whether any count changed."""
        return self._move(uid_of(pod), _GONE)

    def relisted(self, uids: set[str]) -> bool:
        """After a relist: pods that were running and are no longer listed are gone."""
        changed = False
        for uid, state in list(self._state.items()):
            if uid not in uids and state in (_ACTIVE, _TERMINATING):
                changed = self._move(uid, _GONE) or changed
        return changed


@dataclass(frozen=True)
class Counts:
    succeeded: int
    active: int
    failed: int
    terminating: int

    @property
    def total(self) -> int:
        return self.succeeded + self.active + self.failed


def merged_counts(job: Obj, tally: PodTally | None = None) -> Counts:
    """What the progress line shows: the Job's counts (with the pods it has seen finish but not
    yet counted), raised to what the pods show where they are further along. Active and
    terminating pods are the pods' own view once the follower has seen any pod. Failures
    stay the Job's alone under a podFailurePolicy (it may ignore a failed pod)."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    uncounted = status.get("uncountedTerminatedPods") or {}
    succeeded = count_of(status.get("succeeded")) + len(uncounted.get("succeeded") or [])
    failed = count_of(status.get("failed")) + len(uncounted.get("failed") or [])
    active, terminating = count_of(status.get("active")), count_of(status.get("terminating"))
    if tally is not None and tally.seen:
        succeeded = max(succeeded, tally.succeeded)
        if not spec.get("podFailurePolicy"):
            failed = max(failed, tally.failed)
        active, terminating = tally.active, tally.terminating
    completions = spec.get("completions")
    if isinstance(completions, int) and not isinstance(completions, bool) and completions >= 0:
        succeeded = min(succeeded, max(completions, count_of(status.get("succeeded"))))
    return Counts(succeeded, active, failed, terminating)


def progress_line(job: Obj, tally: PodTally | None = None) -> str:
    """``job/NAME: 3/10 succeeded, 2 active, 0 failed[, 1 terminating][, suspended]``."""
    counts = merged_counts(job, tally)
    completions = (job.get("spec") or {}).get("completions")
    target = f"/{completions}" if completions is not None else ""
    parts = [f"{counts.succeeded}{target} succeeded", f"{counts.active} active", f"{counts.failed} failed"]
    if counts.terminating:
        parts.append(f"{counts.terminating} terminating")
    if condition_true(job, "Suspended"):
        parts.append("suspended")
    return f"job/{name_of(job)}: " + ", ".join(parts)


def line_to_print(job: Obj, tally: PodTally | None, last_line: str, printed_total: int) -> str | None:
    """The progress line to print now, or None: nothing changed, the Job is done (the summary
    says it, after the logs), or the counts would go backwards (an active pod gone before its
    finish is counted) while nothing is being stopped."""
    counts = merged_counts(job, tally)
    completions = (job.get("spec") or {}).get("completions")
    if job_finished(job) or (isinstance(completions, int) and counts.succeeded >= completions):
        return None
    line = progress_line(job, tally)
    shrinking = counts.total < printed_total and not counts.terminating and not condition_true(job, "Suspended")
    if line == last_line or shrinking:
        return None
    return line


@dataclass
class Pacer:
    """When the next progress line may be printed: at most one per ``period``, on a grid that
    a late print (a busy loop) does not shift, so a steady stream of changes gets
    1/``period`` lines a second; after a quiet spell the first change prints at once."""

    period: float = PERIOD
    next_at: float = -math.inf

    def delay(self, now: float) -> float:
        """Seconds to wait before printing (0: print now)."""
        return max(0.0, self.next_at - now)

    def printed(self, now: float) -> None:
        late = now - self.next_at
        self.next_at = self.next_at + self.period if 0 <= late < self.period else now + self.period
