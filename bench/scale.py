"""Scale: an N-completion Indexed Job (default 100,000, parallelism 64) on a running ``joblet
server``: wall time, peak RSS of all joblet processes (the server and every Python process under
it, sampled every 0.2 s), Job GET latency while it runs (p50/p99), watch-event lag (p50/p99: a
ConfigMap annotated with the send time every 0.25 s, timed when its watch event arrives), and the
size of the data dir at the end, and the time of a full LIST of the retained pods and of their
Events and of ``kubectl describe pod``'s Event list for one pod (field-selected by its
involvedObject; the fastest of three each).

    python bench/scale.py [--completions 100000] [--parallelism 64] [--rss-every 1000]
                             [--tracemalloc DIR]

``--rss-every N`` also prints, each time another N pods have succeeded, the RSS of every joblet
process then and their CPU time so far (the Job is never deleted, so its finished pods stay in the store): the slope of
those samples is the memory each retained finished pod costs, the intercept the fixed cost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
from pathlib import Path

import httpx
from _server import Server, dir_size, joblet_server, rss_bytes

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def python_tree(root: int) -> list[int]:
    """``root`` and every Python process below it (shims, bubblewrap and pods are not joblet)."""
    children: dict[int, list[int]] = {}
    # os.listdir, not Path.glob: glob stats each entry and raised ProcessLookupError when a pod's
    # process ended between the listing and the stat (it ended a --rss-every run at 8,000 pods).
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(pid))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [(root, b"")]
    while todo:
        pid, parent_argv = todo.pop()
        try:
            exe = Path(f"/proc/{pid}/exe").resolve().name
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        # A child still running its parent's command line is a (v)fork that has not exec'd yet
        # (the agent spawns each shim with posix_spawn): it shares or copies its parent's pages,
        # and counting it doubled the peak RSS (432 MB sampled against 215 MB at 9,000 pods).
        if pid == root or (exe.startswith("python") and argv != parent_argv):
            found.append(pid)
        todo.extend((child, argv) for child in children.get(pid, []))
    return found


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2) if s else float("nan")


class Probes:
    """RSS sampling and watch-lag probing, in threads beside the main GET loop."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.stop = threading.Event()
        self.peak_rss = 0
        self.succeeded = 0  # as the main loop last saw it
        self.peak_at = 0  # pods succeeded when the peak was sampled
        self.lags_ms: list[float] = []
        self.sent: dict[str, float] = {}
        self.samples: list[dict[str, object]] = []

    def sample(self, succeeded: int) -> None:
        """RSS now of each joblet process (by its command line's first joblet argument)."""
        per: dict[str, float] = {}
        cpu = 0.0
        for pid in python_tree(self.server.process.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                name = next((a.decode() for a in argv if a in (b"server", b"node", b"agent")), str(pid))
                per[f"{name}:{pid}"] = round(rss_bytes(pid) / 2**20, 1)
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
            except OSError:
                pass
        self.samples.append({"succeeded": succeeded, "rss_mb": round(sum(per.values()), 1),
                             "cpu_seconds": round(cpu, 1), "per_process": per})

    def rss(self) -> None:
        while not self.stop.is_set():
            total = 0
            for pid in python_tree(self.server.process.pid):
                try:
                    total += rss_bytes(pid)
                except OSError:
                    pass
            if total > self.peak_rss:
                self.peak_rss, self.peak_at = total, self.succeeded
            self.stop.wait(0.2)

    def writer(self) -> None:
        with self.server.http() as client:
            client.post(CONFIGMAPS, json={"metadata": {"name": "lag"}, "data": {}}).raise_for_status()
            seq = 0
            while not self.stop.is_set():
                seq += 1
                self.sent[str(seq)] = time.perf_counter()
                client.patch(f"{CONFIGMAPS}/lag", json={"metadata": {"annotations": {"seq": str(seq)}}},
                             headers={"Content-Type": "application/merge-patch+json"})
                self.stop.wait(0.25)

    def watcher(self) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server stops at the end
            self._watch()

    def _watch(self) -> None:
        with self.server.http(timeout=3600) as client, client.stream(
                "GET", CONFIGMAPS, params={"watch": "1", "fieldSelector": "metadata.name=lag"}) as stream:
            for line in stream.iter_lines():
                if self.stop.is_set():
                    return
                if not line:
                    continue
                seq = ((json.loads(line)["object"].get("metadata") or {}).get("annotations") or {}).get("seq")
                if seq in self.sent:
                    self.lags_ms.append((time.perf_counter() - self.sent.pop(seq)) * 1000)


def list_best_ms(client: httpx.Client, url: str, tries: int = 3, params: dict[str, str] | None = None) -> float:
    """The fastest of ``tries`` LISTs of ``url`` (every retained object, as ``kubectl get``)."""
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        client.get(url, params=params).raise_for_status()
        best = min(best, (time.perf_counter() - t0) * 1000)
    return round(best, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=100_000)
    parser.add_argument("--parallelism", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--tracemalloc", type=Path, metavar="DIR",
                        help="run the server under tracemalloc, a snapshot every 30 s in DIR "
                             "(read them with bench/tracemalloc_diff.py DIR)")
    parser.add_argument("--rss-every", type=int, default=0, metavar="N",
                        help="print the RSS of each joblet process and their CPU time (utime+stime) each time another N pods have succeeded")
    args = parser.parse_args()
    manifest = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "scale"},
        "spec": {"completionMode": "Indexed", "completions": args.completions, "parallelism": args.parallelism,
                 "template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "none", "command": ["/bin/true"]}]}}},
    }
    get_ms: list[float] = []
    launcher = ("-m", "joblet") if args.tracemalloc is None else (
        str(Path(__file__).resolve().parent / "_traced.py"), str(args.tracemalloc), "30")
    with joblet_server(launcher=launcher, timeout=60) as server, server.http() as client:
        probes = Probes(server)
        threads = [threading.Thread(target=t, daemon=True) for t in (probes.rss, probes.writer, probes.watcher)]
        for t in threads:
            t.start()
        url = "/apis/batch/v1/namespaces/default/jobs"
        start = time.perf_counter()
        client.post(url, json=manifest).raise_for_status()
        deadline = start + args.timeout
        succeeded = 0
        next_sample = args.rss_every
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            job = client.get(f"{url}/scale").json()
            get_ms.append((time.perf_counter() - t0) * 1000)
            succeeded = probes.succeeded = (job.get("status") or {}).get("succeeded", 0)
            if args.rss_every and succeeded >= next_sample:
                probes.sample(succeeded)
                print(json.dumps(probes.samples[-1]), flush=True)
                next_sample = (succeeded // args.rss_every + 1) * args.rss_every
            conds = (job.get("status") or {}).get("conditions") or []
            if any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conds):
                break
            time.sleep(0.2)
        wall = time.perf_counter() - start
        probes.stop.set()
        if args.rss_every:
            probes.sample(succeeded)
            print(json.dumps(probes.samples[-1]), flush=True)
        size = dir_size(server.data_dir)
        list_ms = {resource: list_best_ms(client, f"/api/v1/namespaces/default/{resource}")
                   for resource in ("pods", "events")}
        pod = client.get("/api/v1/namespaces/default/pods",
                         params={"labelSelector": "batch.kubernetes.io/job-completion-index=7"}).json()["items"][0]
        describe = ",".join(f"involvedObject.{f}={v}" for f, v in (
            ("name", pod["metadata"]["name"]), ("namespace", "default"), ("uid", pod["metadata"]["uid"])))
        list_ms["describe"] = list_best_ms(client, "/api/v1/namespaces/default/events",  # as kubectl 1.32+ asks
                                           params={"fieldSelector": describe, "limit": "500"})
    print(json.dumps({
        "benchmark": "scale",
        "completions": args.completions,
        "parallelism": args.parallelism,
        "succeeded": succeeded,
        "wall_seconds": round(wall, 1),
        "pods_per_second": round(succeeded / wall, 1),
        "peak_rss_mb": round(probes.peak_rss / 2**20, 1),
        "peak_rss_at_succeeded": probes.peak_at,
        "get_p50_ms": pct(get_ms, 0.5),
        "get_p99_ms": pct(get_ms, 0.99),
        "watch_lag_p50_ms": pct(probes.lags_ms, 0.5),
        "watch_lag_p99_ms": pct(probes.lags_ms, 0.99),
        "watch_lag_samples": len(probes.lags_ms),
        "data_dir_mb": round(size / 2**20, 1),
        "list_pods_ms": list_ms["pods"],
        "list_events_ms": list_ms["events"],
        "list_one_pods_events_ms": list_ms["describe"],
    }))


if __name__ == "__main__":
    main()
