"""How long the controllers are leaderless when the leader replica goes away.

Why: replicas on one store elect the controllers' leader with Lease
kube-system/joblet-controller-manager (lease 15 s, renew 10 s, retry 2 s). A kill -9 of the
leader should leave the cluster without controllers for about the lease duration (client-go's
rule: a follower waits until it has seen the lease unchanged that long), a clean stop (SIGTERM,
which releases the lease) for about one retry period.

    python bench/failover.py [--replicas 3] [--rounds 2] [--store postgresql://…]

Without ``--store`` (or ``JOBLET_STORE``) a scratch PostgreSQL is started from Debian's
binaries (tests/support/postgres.py). Prints one JSON line: per stop kind, the seconds from the
stop to a follower answering with a new holder (``takeover_s``) and from the old holder's last
``renewTime`` to the new ``acquireTime`` (``gap_s``, on the Lease itself). Wall time on a
shared machine: read it against the lease duration, not as a CPU cost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from joblet.clock import RealClock, parse_time
from joblet.kubeconfig import load_access

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/joblet-controller-manager"
CLOCK = RealClock()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    def __init__(self, root: Path, store: str) -> None:
        self.data = root / "data"
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.store = store
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "JOBLET_STORE": self.store}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "joblet", "server", "--data-dir", str(self.data), "--port", str(self.port),
             "--components", "api,controllers"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: self.lease() is not None, 60, "replica did not start")

    def http(self) -> httpx.Client:
        access = load_access(self.data / "kubeconfig")
        return httpx.Client(verify=access.ssl_context(), headers={"Authorization": f"Bearer {access.token}"},
                            timeout=5)

    def lease(self) -> dict[str, Any] | None:
        try:
            with self.http() as http:
                r = http.get(self.url + LEASE)
            return r.json()["spec"] if r.status_code == 200 else None  # type: ignore[no-any-return]
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            return None

    def stop(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


def wait(check: Any, timeout: float, what: str) -> None:
    end = CLOCK.monotonic() + timeout
    while not check():
        if CLOCK.monotonic() > end:
            sys.exit(what)
        CLOCK.sleep(0.05)


def holder_of(replicas: list[Replica]) -> tuple[Replica, dict[str, Any]]:
    for r in replicas:
        spec = r.lease()
        if spec is not None:
            for candidate in replicas:
                if candidate.proc is not None and candidate.proc.poll() is None and \
                        spec["holderIdentity"].endswith((candidate.data / "leader-identity").read_text().strip()):
                    return candidate, spec
    sys.exit("no live replica holds the lease")


def one_round(replicas: list[Replica], sig: int) -> dict[str, float]:
    leader, _ = holder_of(replicas)
    follower = next(r for r in replicas if r is not leader)
    stopped_at = CLOCK.monotonic()
    leader.stop(sig)
    last = follower.lease()
    assert last is not None
    old = last["holderIdentity"]

    def moved() -> bool:
        spec = follower.lease()
        return spec is not None and bool(spec.get("holderIdentity")) and spec["holderIdentity"] != old

    wait(moved, 120, "no replica took the lease over")
    took = CLOCK.monotonic() - stopped_at
    spec = follower.lease()
    assert spec is not None
    gap = (parse_time(spec["acquireTime"]) - parse_time(last["renewTime"])).total_seconds()
    leader.start()  # back as a follower for the next round
    return {"takeover_s": round(took, 2), "gap_s": round(gap, 2)}


@contextlib.contextmanager
def store_url(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    from support.postgres import postgres_server

    with postgres_server() as server:
        yield server.create_database("failover")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--store", default=os.environ.get("JOBLET_STORE"))
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"kill9": [], "sigterm": []}
    with store_url(args.store) as url, tempfile.TemporaryDirectory(prefix="joblet-failover-") as tmp:
        replicas = [Replica(Path(tmp) / f"r{i}", url) for i in range(args.replicas)]
        try:
            for r in replicas:
                r.start()
            for _ in range(args.rounds):
                results["kill9"].append(one_round(replicas, signal.SIGKILL))
                results["sigterm"].append(one_round(replicas, signal.SIGTERM))
        finally:
            for r in replicas:
                with contextlib.suppress(Exception):
                    r.stop(signal.SIGTERM)
    summary: dict[str, Any] = {"bench": "failover", "replicas": args.replicas, "lease_duration_s": 15,
                               "retry_period_s": 2}
    for kind, rounds in results.items():
        summary[kind] = {"rounds": rounds, "max_takeover_s": max(r["takeover_s"] for r in rounds),
                         "max_gap_s": max(r["gap_s"] for r in rounds)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
