"""How ``data_dir_server`` waits for a joblet that holds the data dir but serves no API yet: by
its clock (a fake one here, so the 15 s wait takes no real time), never past the deadline."""

from __future__ import annotations

from pathlib import Path

from joblet.cli.connect import data_dir_server
from joblet.clock import FakeClock
from joblet.datadir import DataDirLock


def test_a_holder_that_never_serves_is_waited_for_until_the_deadline_only(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)
    lock.acquire({"state": "starting"})
    try:
        clock = FakeClock()
        start = clock.monotonic()
        assert data_dir_server(tmp_path, wait_seconds=15.0, clock=clock) is None
        waited = clock.monotonic() - start
        assert 15.0 < waited <= 15.2  # polled every 0.1 s of (fake) time, then gave up
    finally:
        lock.release()


def test_a_free_data_dir_is_not_waited_for(tmp_path: Path) -> None:
    clock = FakeClock()
    start = clock.monotonic()
    assert data_dir_server(tmp_path, clock=clock) is None
    assert clock.monotonic() == start


def test_a_running_holder_whose_kubeconfig_names_another_server_is_not_used(tmp_path: Path) -> None:
    """The lock's URL and the kubeconfig's must agree: a stale kubeconfig is never trusted."""
    from joblet.kubeconfig import write_kubeconfig

    write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:1", token="t")
    lock = DataDirLock(tmp_path)
    lock.acquire({"state": "running", "url": "https://127.0.0.1:2"})
    try:
        clock = FakeClock()
        start = clock.monotonic()
        assert data_dir_server(tmp_path, clock=clock) is None
        assert clock.monotonic() == start  # decided at once, no wait
    finally:
        lock.release()
