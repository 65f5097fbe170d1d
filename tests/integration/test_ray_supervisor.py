"""The Ray node's container supervisor (joblet.node.raynodes.worker.Supervisor) in this process,
with real containers: memory limits end in OOMKilled / 137 through a memory cgroup and, where
there is none, through the RSS watcher; a second driver takes the log from its offset (what a
restarted joblet does); a kill before the start means the attempt never starts; a poll that
awaits a start reports it (``started``) once the process exists, never for an attempt that did
not start; an exit the driver's outstanding poll did not ask about is the next poll's at once.

The supervisor is a plain class that Ray runs as a detached actor on each Ray node; its
behaviour needs no Ray, so these tests take seconds (the Ray end-to-end cases are in tests/ray).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from joblet.node.cgroups import Cgroups, detect
from joblet.node.raynodes import worker
from joblet.node.raynodes.worker import Supervisor, pod_root

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
HOG = "import time; b = b'x' * (300 << 20); print('allocated', flush=True); time.sleep(30)"
LIMIT = 64 << 20


def payload(argv: list[str], memory_limit: int | None = None, uid: str | None = None) -> dict[str, Any]:
    uid = uid or uuid.uuid4().hex
    return {"cid": f"joblet://{uid}-main-0", "pod_uid": uid, "name": "main", "attempt": 0, "argv": argv,
            "env": dict(ENV), "working_dir": None, "sandbox": False, "mounts": [], "volumes": [],
            "termination_message_path": None, "memory_limit": memory_limit, "capabilities": None,
            "run_as_user": None, "run_as_group": None}


def drain(sup: Supervisor, cid: str, offset: int = 0, timeout: float = 60.0) -> tuple[bytes, dict[str, Any]]:
    """Poll as a driver does until the exit: the log after ``offset`` and the exit."""
    log = b""
    generation = -1
    polls = 0
    while True:
        reply = sup.poll({cid: offset + len(log)}, generation, 1.0, [], [])
        generation = reply["generation"]
        entry = reply["changes"].get(cid, {})
        log += entry.get("log", b"")
        if "exit" in entry:
            return log, entry["exit"]
        polls += 1
        assert polls < timeout, "no exit"


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    sup = Supervisor()
    yield sup
    for uid in sup.pods():
        sup.forget_pod(uid)


def test_memory_limit_via_cgroup_is_oomkilled(supervisor: Supervisor) -> None:
    if not supervisor.cgroups.available:
        pytest.skip("no writable v1 memory cgroup here (the RSS watcher case covers the fallback)")
    p = payload(["python3", "-c", HOG], LIMIT)
    assert supervisor.start(p) is not None
    log, exit_ = drain(supervisor, p["cid"])
    assert (exit_["exit"], exit_["signal"], exit_["reason"]) == (137, 9, "OOMKilled")
    assert b"allocated" not in log  # killed while allocating, not after
    assert not any(d.name.startswith(p["pod_uid"]) for d in detect(prefix="joblet-ray").base("memory").iterdir())


def test_memory_limit_without_cgroups_is_enforced_by_the_rss_watcher(supervisor: Supervisor) -> None:
    supervisor.cgroups = Cgroups(available=False)
    p = payload(["python3", "-c", HOG], LIMIT)
    assert supervisor.start(p) is not None
    _, exit_ = drain(supervisor, p["cid"])
    assert (exit_["exit"], exit_["signal"], exit_["reason"]) == (137, 9, "OOMKilled")


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroup", "rss"])
def test_within_the_limit_completes(supervisor: Supervisor, cgroups: bool) -> None:
    if not cgroups:
        supervisor.cgroups = Cgroups(available=False)
    p = payload(["python3", "-c", "b = b'x' * (8 << 20); print(len(b))"], LIMIT)
    supervisor.start(p)
    log, exit_ = drain(supervisor, p["cid"])
    assert (exit_["exit"], exit_["reason"]) == (0, "Completed")
    assert log.endswith(b" stdout F 8388608\n")


def test_missing_command_under_a_memory_limit_is_still_a_start_error(supervisor: Supervisor) -> None:
    p = payload(["no-such-cmd-xyz"], LIMIT)
    assert supervisor.start(p) is None
    _, exit_ = drain(supervisor, p["cid"])
    assert (exit_["exit"], exit_["reason"]) == (128, "StartError")
    assert exit_["message"] == 'exec: "no-such-cmd-xyz": executable file not found in $PATH'


def test_a_second_driver_continues_the_log_at_its_offset(supervisor: Supervisor) -> None:
    script = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.2; done"
    p = payload(["sh", "-c", script])
    supervisor.start(p)
    cid = p["cid"]
    first = b""
    generation = -1
    while b"line 2" not in first:  # the first driver takes some lines, then dies
        reply = supervisor.poll({cid: len(first)}, generation, 1.0, [], [])
        generation = reply["generation"]
        first += reply["changes"].get(cid, {}).get("log", b"")
    rest, exit_ = drain(supervisor, cid, offset=len(first))  # the next one starts where the file ends
    assert exit_["exit"] == 0
    lines = [line.split(b" ", 3)[3] for line in (first + rest).splitlines()]
    assert lines == [f"line {i}".encode() for i in range(1, 7)]
    assert supervisor.known([cid]) == [cid]
    supervisor.poll({}, -1, 0, [cid], [])  # the exit is recorded: forget it
    assert supervisor.known([cid]) == []


def test_output_nobody_takes_is_capped_to_the_newest_whole_lines(supervisor: Supervisor,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "MAX_UNREAD_BYTES", 4096)
    p = payload(["sh", "-c", 'i=0; while [ $i -lt 500 ]; do echo "line $i"; i=$((i+1)); done'])
    supervisor.start(p)
    cid = p["cid"]
    supervisor.cond.acquire()  # no driver polls until the container has ended
    try:
        supervisor.cond.wait_for(lambda: supervisor.containers[cid].exit is not None, 30)
    finally:
        supervisor.cond.release()
    reply = supervisor.poll({cid: 0}, -1, 0, [], [])["changes"][cid]
    lines = reply["log"].splitlines()
    assert len(reply["log"]) <= 4096 and reply["exit"]["exit"] == 0
    assert [line.split(b" ", 3)[3] for line in lines] == [f"line {i}".encode() for i in range(500 - len(lines), 500)]
    assert reply["end"] > 20 * 500  # the stream offset counts the dropped bytes too


def test_a_kill_before_the_start_means_it_never_starts(supervisor: Supervisor) -> None:
    p = payload(["sh", "-c", "echo started"])
    assert supervisor.kill(p["cid"], p["pod_uid"], 5) is True
    assert supervisor.start(p) is None
    log, exit_ = drain(supervisor, p["cid"])
    assert (log, exit_["exit"], exit_["signal"]) == (b"", 137, 9)
    assert not pod_root(p["pod_uid"]).exists() or not any(pod_root(p["pod_uid"]).iterdir())


def _poll_in_thread(sup: Supervisor, cid: str, generation: int) -> tuple[threading.Thread, list[dict[str, Any]]]:
    replies: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: replies.append(sup.poll({cid: 0}, generation, 60, [], [cid])))
    thread.start()
    return thread, replies


def test_a_poll_awaiting_a_start_reports_it_once_the_process_exists(supervisor: Supervisor) -> None:
    """What a driver whose hold task starts the container learns: ``started`` (the pid) when the
    process exists, not before; it wakes a poll waiting for that start even without a change."""
    p = payload(["sh", "-c", "echo up; exec sleep 30"])
    cid = p["cid"]
    before = supervisor.poll({cid: 0}, -1, 0, [], [cid])
    assert before["changes"] == {}  # not started: nothing to say
    thread, replies = _poll_in_thread(supervisor, cid, before["generation"])
    pid = supervisor.start(p)  # without notify: only the poll that awaits it wakes
    thread.join(30)
    assert not thread.is_alive(), "the start did not wake the poll awaiting it"
    assert pid is not None and replies[0]["changes"][cid]["started"] == pid
    assert supervisor.pid(cid) == pid
    unasked = supervisor.poll({cid: 0}, -1, 0, [], [])["changes"].get(cid, {})
    assert "started" not in unasked  # only a caller that awaits the start is told
    supervisor.kill(cid, p["pod_uid"], 0)
    drain(supervisor, cid)


def test_a_notifying_start_is_a_change_every_poll_sees(supervisor: Supervisor) -> None:
    p = {**payload(["sh", "-c", "exec sleep 30"]), "notify": True}
    generation = supervisor.poll({}, -1, 0, [], [])["generation"]
    supervisor.start(p)
    assert supervisor.poll({}, -1, 0, [], [])["generation"] != generation
    supervisor.kill(p["cid"], p["pod_uid"], 0)
    drain(supervisor, p["cid"])


def test_an_attempt_killed_before_its_start_ends_without_a_started_report(supervisor: Supervisor) -> None:
    p = payload(["sh", "-c", "echo started"])
    cid = p["cid"]
    generation = supervisor.poll({}, -1, 0, [], [])["generation"]
    thread, replies = _poll_in_thread(supervisor, cid, generation)
    supervisor.kill(cid, p["pod_uid"], 5)
    thread.join(30)
    assert not thread.is_alive()
    entry = replies[0]["changes"][cid]
    assert "started" not in entry and entry["exit"]["exit"] == 137


def test_a_start_error_ends_without_a_started_report(supervisor: Supervisor) -> None:
    p = payload(["no-such-cmd-xyz"])
    assert supervisor.start(p) is None
    entry = supervisor.poll({p["cid"]: 0}, -1, 0, [], [p["cid"]])["changes"][p["cid"]]
    assert "started" not in entry and entry["exit"]["reason"] == "StartError"


def test_an_exit_while_the_outstanding_poll_did_not_ask_about_it_is_the_next_polls_at_once(
        supervisor: Supervisor) -> None:
    """The driver follows an attempt while its previous poll, which does not ask about it, is
    outstanding; the attempt exits at once (the lock loser of the conformance scenario
    unit-wq-complete-despite-one-failure). The exit wakes that poll without being in its reply,
    so the next poll asks about the attempt at a generation that already counts its exit: it
    must return the exit at once (up to protocol 3 it waited for a later change, the other pod's
    exit 3 s later, so the Job never showed the failed pod while the other one ran)."""
    p = payload(["sh", "-c", "exit 1"])
    cid = p["cid"]
    generation = supervisor.poll({}, -1, 0, [], [])["generation"]
    assert supervisor.start(p) is not None  # a direct start: not a change
    woke = supervisor.poll({}, generation, 60, [], [])  # the outstanding poll: woken by the exit alone
    assert woke["generation"] != generation and woke["changes"] == {}
    replies: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: replies.append(supervisor.poll({cid: 0}, woke["generation"], 60, [], [])),
                              daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the next poll waits for a later change instead of returning the exit"
    assert replies[0]["changes"][cid]["exit"]["exit"] == 1


@pytest.mark.parametrize(("offset", "base", "kept", "ended", "expected"), [
    (0, 0, 0, False, False),  # nothing written yet
    (10, 0, 10, False, False),  # the caller has every byte kept
    (4, 0, 10, False, True),  # bytes after the caller's offset
    (10, 10, 0, True, True),  # the exit, not taken yet
    (2, 8, 5, False, True),  # the caller's offset is before the bytes kept (older ones dropped)
    (13, 8, 5, False, False),
])
def test_untaken(offset: int, base: int, kept: int, ended: bool, expected: bool) -> None:
    assert worker.untaken(offset, base, kept, ended) is expected


def test_supervisor_names_carry_the_protocol_version() -> None:
    assert worker.supervisor_name("n1") == f"joblet-supervisor-v{worker.PROTOCOL}-n1"
    assert worker.supervisor_name("n1", worker.PROTOCOL - 1) != worker.supervisor_name("n1")
