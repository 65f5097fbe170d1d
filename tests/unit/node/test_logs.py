"""The log store's reading: rotated files in order, tails from the end, early stops, follow across rotation."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from joblet.clock import FakeClock, RealClock
from joblet.dashboard.history import read_attempt
from joblet.logformat import log_files
from joblet.node.logs import LogStore, tail_start

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cri(i: int, text: str | None = None, stream: str = "stdout") -> bytes:
    ts = (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    return f"{ts} {stream} F {text if text is not None else f'line {i}'}\n".encode()


def write_attempt(store: LogStore, lines: int, per_file: int) -> Path:
    """``lines`` CRI lines split over rotated files of ``per_file`` lines, the rest live."""
    path = store.path("default", "p", "uid1", "c", 0)
    path.parent.mkdir(parents=True)
    seq, i = 1, 0
    while lines - i > per_file:
        (path.parent / f"0.log.{seq}").write_bytes(b"".join(cri(k) for k in range(i, i + per_file)))
        seq, i = seq + 1, i + per_file
    path.write_bytes(b"".join(cri(k) for k in range(i, lines)))
    return path


async def read_all(store: LogStore, **kw: object) -> bytes:
    return b"".join([chunk async for chunk in store.read("default", "p", **kw)])  # type: ignore[arg-type]


def expected(lines: range) -> bytes:
    return b"".join(f"line {i}\n".encode() for i in lines)


def test_log_files_orders_rotated_by_number(tmp_path: Path) -> None:
    live = tmp_path / "0.log"
    for name in ("0.log", "0.log.10", "0.log.2", "0.log.1", "0.done", "1.log.3", "0.log.x"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in log_files(live)] == ["0.log.1", "0.log.2", "0.log.10", "0.log"]


@pytest.mark.parametrize("per_file", [1, 3, 7, 100])
@pytest.mark.parametrize("n", [0, 1, 2, 5, 19, 20, 50])
def test_tail_lines_across_rotated_files(tmp_path: Path, per_file: int, n: int) -> None:
    store = LogStore(tmp_path, FakeClock())
    write_attempt(store, 20, per_file)
    got = asyncio.run(read_all(store, tail_lines=n))
    assert got == expected(range(max(0, 20 - n), 20))


def test_tail_start_ignores_an_unterminated_last_line(tmp_path: Path) -> None:
    f = tmp_path / "0.log"
    f.write_bytes(b"a\nb\nc\npartial")
    assert tail_start([f], 2) == (0, 2)
    assert tail_start([f], 0) == (0, 6)
    assert tail_start([f], 9) == (0, 0)


def test_whole_log_and_since_time_and_limit(tmp_path: Path) -> None:
    store = LogStore(tmp_path, FakeClock())
    write_attempt(store, 30, 8)
    assert asyncio.run(read_all(store)) == expected(range(30))
    assert asyncio.run(read_all(store, since_time=T0 + timedelta(seconds=25))) == expected(range(25, 30))
    assert asyncio.run(read_all(store, since_time=T0 + timedelta(seconds=25), tail_lines=2)) == expected(range(28, 30))
    assert asyncio.run(read_all(store, limit_bytes=10)) == expected(range(30))[:10]
    stamped = asyncio.run(read_all(store, timestamps=True, tail_lines=1))
    assert stamped == b"2026-01-01T00:00:29.000000000Z line 29\n"


def test_a_carriage_return_stays_inside_its_line(tmp_path: Path) -> None:
    store = LogStore(tmp_path, FakeClock())
    path = write_attempt(store, 0, 8)
    path.write_bytes(cri(0, "10%\r50%\r100%"))
    assert asyncio.run(read_all(store)) == b"10%\r50%\r100%\n"
    assert list(read_attempt(path)) == ["10%\r50%\r100%"]


def test_big_log_reads_stop_early(tmp_path: Path) -> None:
    """limitBytes and tailLines on 40 MiB answer without reading the file (the audit: 9.8 s, 4.5 GB)."""
    store = LogStore(tmp_path, FakeClock())
    path = store.path("default", "p", "uid1", "c", 0)
    path.parent.mkdir(parents=True)
    line = cri(0, "x" * 1000)
    with open(path, "wb") as f:
        for _ in range(40):
            f.write(line * 1024)
    clock = RealClock()
    start = clock.monotonic()
    assert asyncio.run(read_all(store, limit_bytes=100)) == b"x" * 100
    assert asyncio.run(read_all(store, tail_lines=1)) == b"x" * 1000 + b"\n"
    assert clock.monotonic() - start < 0.5


def test_all_attempts_reader_includes_rotated_files(tmp_path: Path) -> None:
    store = LogStore(tmp_path, FakeClock())
    path = write_attempt(store, 12, 5)
    assert list(read_attempt(path)) == [f"line {i}" for i in range(12)]


def test_follow_continues_across_a_rotation(tmp_path: Path) -> None:
    store = LogStore(tmp_path, FakeClock())
    path = write_attempt(store, 3, 100)

    async def main() -> bytes:
        got: list[bytes] = []

        async def reader() -> None:
            async for chunk in store.read("default", "p", follow=True):
                got.append(chunk)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.2)
        with open(path, "ab") as f:
            f.write(cri(3))
        os.rename(path, path.parent / "0.log.1")  # the shim rotates: old file final, new live file
        path.write_bytes(cri(4))
        await asyncio.sleep(0.3)
        with open(path, "ab") as f:
            f.write(cri(5))
        path.with_suffix(".done").write_bytes(b"")
        await asyncio.wait_for(task, 5)
        return b"".join(got)

    assert asyncio.run(main()) == expected(range(6))


@pytest.mark.parametrize(("lines", "per_file", "follow", "hops"), [
    (3, 100, True, 1),  # a short container's log, as `joblet run` follows every pod's
    (3, 100, False, 1),
    (0, 100, True, 1),
    (200, 70, True, 3),  # rotated: one more hop for each file after the first
    (2000, 10_000, True, 2),  # over one read block (64 KiB)
], ids=["short-follow", "short", "empty-follow", "rotated-follow", "two-blocks-follow"])
def test_a_finished_attempt_is_read_whole_in_few_thread_hops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: int, per_file: int, follow: bool, hops: int) -> None:
    """Its ``.done`` was there before the read: the read ends at the end of the last file, with no
    follow poll (each thread hop cost more CPU than the reads themselves)."""
    store = LogStore(tmp_path, FakeClock())
    path = write_attempt(store, lines, per_file)
    for i in range(lines, lines + 3):  # long lines, so that a big log spans read blocks
        with open(path, "ab") as f:
            f.write(cri(i, "y" * 100))
    path.with_suffix(".done").write_bytes(b"")
    calls: list[str] = []
    real = asyncio.to_thread

    async def counted(func, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(func.__name__)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    got = asyncio.run(read_all(store, follow=follow))
    assert got == expected(range(lines)) + b"".join(f"{'y' * 100}\n".encode() for _ in range(3))
    assert len(calls) == hops, calls


def test_prune_removes_rotated_files_too(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2100, 1, 1, tzinfo=UTC))  # long after the files were written
    store = LogStore(tmp_path, clock, retention_days=30)
    path = write_attempt(store, 10, 3)
    assert len(log_files(path)) == 4
    assert store.prune() == 4
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("*.log*"))
