"""Throughput: an Indexed Job of N completions of /bin/true with parallelism P, run by
``joblet run`` on a fresh data dir, against ``seq N | xargs -P P -n1 /bin/true`` on the
same machine. Prints one JSON line with both wall times and their ratio, and the CPU time each
took (joblet's own process, its children — shims, bubblewrap, the pods — and xargs with its
children): on a machine shared with other work the CPU figures are the steadier ones.

    python bench/throughput.py [--completions 5000] [--parallelism 16] [--store postgresql://…]

With ``--store URL`` the same Job also runs on that store (``joblet run --store``, the URL passed
in JOBLET_STORE, never on argv) right after the default SQLite run, and the line adds both
pods-per-second figures, the ratio ``store_vs_sqlite`` (target ≥ 0.7 for PostgreSQL) and each
run's CPU seconds (the joblet process and its children, from rusage; the database server's own
CPU is not in it). The database is emptied of joblet's tables first: give it a scratch database.

With ``--split-node`` the Job instead runs on a ``joblet server`` (created over HTTPS, waited
for by polling its status), twice per round, interleaved: all components in one process, then
``--components api,controllers`` with the node agent in a separate ``joblet node`` process
(same data dir, its kubeconfig, default node name). ``--rounds N`` repeats the pair. Each run's
line gives pods per second and the CPU of the server process, the node process and the pods
(``/proc/PID/stat`` utime+stime and cutime+cstime, from the Job's creation to its completion).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _server import bench_root, joblet_argv

from support.process import clean_env, free_port, stop, wait_until_serving
from support.tls import kubeconfig_http


def manifest(completions: int, parallelism: int) -> str:
    return json.dumps({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "throughput"},
        "spec": {"completionMode": "Indexed", "completions": completions, "parallelism": parallelism,
                 "template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "true", "image": "none", "command": ["/bin/true"]}]}}},
    })


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_xargs(completions: int, parallelism: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (xargs and every /bin/true)."""
    cpu = children_cpu()
    start = time.perf_counter()
    subprocess.run(f"seq {completions} | xargs -P {parallelism} -n1 /bin/true", shell=True, check=True)
    return time.perf_counter() - start, children_cpu() - cpu


def empty_store(url: str) -> None:
    """Drop joblet's tables from a scratch PostgreSQL database (each run starts empty)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS joblet_objects, joblet_events, joblet_rv")


def time_joblet(completions: int, parallelism: int, store: str | None = None) -> tuple[float, float, float]:
    """Wall seconds, joblet's own CPU seconds, and its children's CPU seconds of one ``joblet run``."""
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(manifest(completions, parallelism))
        env = {**os.environ, "JOBLET_DATA_DIR": str(Path(tmp) / "data")}
        env.pop("KUBECONFIG", None)
        env.pop("JOBLET_STORE", None)
        if store is not None:
            empty_store(store)
            env["JOBLET_STORE"] = store
        usage = Path(tmp) / "rusage.json"
        cpu = children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(joblet_argv(usage, "run", "-f", str(path), "--data-dir", str(Path(tmp) / "data")),
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"joblet run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        own = json.loads(usage.read_text())
        own_cpu = own["user"] + own["sys"]
        return elapsed, own_cpu, children_cpu() - cpu - own_cpu


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children) CPU seconds of a live process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def profile(pid: int, name: str) -> subprocess.Popen[bytes] | None:
    """With $JOBLET_BENCH_PYSPY=DIR: ``py-spy record`` of ``pid`` into DIR/NAME.txt (collapsed
    stacks, which ``sort | head`` reads), until SIGINT."""
    out = os.environ.get("JOBLET_BENCH_PYSPY")
    if not out:
        return None
    os.makedirs(out, exist_ok=True)
    return subprocess.Popen(["py-spy", "record", "--format", "raw", "--rate", "200", "-p", str(pid),
                             "-o", os.path.join(out, f"{name}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def time_server(completions: int, parallelism: int, split: bool) -> dict[str, float]:
    """One Job on a ``joblet server`` (``split``: its node agent in a ``joblet node`` process):
    wall seconds from create to Complete, and CPU seconds of each process over that span."""
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        data = Path(tmp) / "data"
        env = clean_env(JOBLET_DATA_DIR=str(data))
        port = free_port()
        argv = [sys.executable, "-m", "joblet", "server", "--data-dir", str(data), "--port", str(port)]
        if split:
            argv += ["--components", "api,controllers"]
        log = Path(tmp) / "server.log"
        with log.open("ab") as out:
            server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        node: subprocess.Popen[bytes] | None = None
        try:
            kubeconfig = data / "kubeconfig"
            wait_until_serving(server, kubeconfig, log=log)
            with kubeconfig_http(kubeconfig, timeout=60) as http:
                if split:
                    with log.open("ab") as out:
                        node = subprocess.Popen([sys.executable, "-m", "joblet", "node", "--kubeconfig", str(kubeconfig),
                                                 "--data-dir", str(data), "--log-port", "0"],
                                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
                while not any(c["type"] == "Ready" and c["status"] == "True"
                              for n in http.get("/api/v1/nodes").json()["items"]
                              for c in n["status"].get("conditions") or []):
                    if node is not None and node.poll() is not None:
                        sys.exit(f"joblet node exited: {log.read_text()[-2000:]}")
                    time.sleep(0.1)
                pids = [server.pid] + ([node.pid] if node is not None else [])
                profilers = [profile(pid, f"{'split' if split else 'single'}-{role}")
                             for pid, role in zip(pids, ("server", "node"), strict=False)]
                before = [proc_cpu(p) for p in pids]
                start = time.perf_counter()
                http.post("/apis/batch/v1/namespaces/default/jobs",
                          content=manifest(completions, parallelism)).raise_for_status()
                while True:
                    time.sleep(0.2)
                    status = http.get("/apis/batch/v1/namespaces/default/jobs/throughput").json()["status"]
                    if any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
                           for c in status.get("conditions") or []):
                        break
                elapsed = time.perf_counter() - start
                after = [proc_cpu(p) for p in pids]
                for profiler in profilers:
                    if profiler is not None:
                        profiler.send_signal(signal.SIGINT)
                        profiler.wait(60)
                if status.get("succeeded") != completions:
                    sys.exit(f"job did not succeed: {status}")
        finally:
            for proc in (node, server):
                if proc is not None:
                    stop(proc)
    own = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
    kids = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    return {"seconds": elapsed, "server_cpu": own[0], "node_cpu": own[1] if split else 0.0, "pods_cpu": kids}


def split_node(completions: int, parallelism: int, rounds: int) -> None:
    """Interleaved runs of one process vs. server + ``joblet node``, one JSON line each."""
    n = completions
    for r in range(rounds):
        for split in (False, True):
            m = time_server(completions, parallelism, split)
            print(json.dumps({
                "benchmark": "throughput-split-node", "round": r, "mode": "split" if split else "single",
                "completions": n, "parallelism": parallelism,
                "seconds": round(m["seconds"], 3), "pods_per_second": round(n / m["seconds"], 1),
                "server_cpu_us_per_pod": round(m["server_cpu"] * 1e6 / n),
                "node_cpu_us_per_pod": round(m["node_cpu"] * 1e6 / n),
                "pods_cpu_us_per_pod": round(m["pods_cpu"] * 1e6 / n),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=5000)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--store", metavar="URL", default=os.environ.get("JOBLET_BENCH_STORE"),
                        help="also run on this store (a scratch postgresql:// database) and compare with SQLite; "
                        "env JOBLET_BENCH_STORE works too")
    parser.add_argument("--split-node", action="store_true",
                        help="compare a joblet server in one process with server + `joblet node` (interleaved)")
    parser.add_argument("--rounds", type=int, default=1, help="with --split-node: pairs of runs")
    args = parser.parse_args()
    if args.split_node:
        split_node(args.completions, args.parallelism, args.rounds)
        return
    baseline, baseline_cpu = time_xargs(args.completions, args.parallelism)
    joblet, own_cpu, pods_cpu = time_joblet(args.completions, args.parallelism)
    n = args.completions
    extra: dict[str, object] = {}
    if args.store:
        other, other_own, other_pods = time_joblet(args.completions, args.parallelism, args.store)
        extra = {
            "store": args.store.split("://", 1)[0],
            "sqlite_cpu_seconds": round(own_cpu + pods_cpu, 3),
            "store_seconds": round(other, 3),
            "store_pods_per_second": round(args.completions / other, 1),
            "store_cpu_seconds": round(other_own + other_pods, 3),
            "store_vs_sqlite": round(joblet / other, 3),
        }
    print(json.dumps({
        "benchmark": "throughput",
        "completions": args.completions,
        "parallelism": args.parallelism,
        "joblet_seconds": round(joblet, 3),
        "joblet_pods_per_second": round(args.completions / joblet, 1),
        "xargs_seconds": round(baseline, 3),
        "xargs_per_second": round(args.completions / baseline, 1),
        "ratio_of_baseline": round(baseline / joblet, 3),
        "xargs_cpu_us_per_pod": round(baseline_cpu * 1e6 / n),
        "joblet_cpu_us_per_pod": round(own_cpu * 1e6 / n),
        "joblet_children_cpu_us_per_pod": round(pods_cpu * 1e6 / n),
        "cpu_ratio_of_baseline": round(baseline_cpu / (own_cpu + pods_cpu), 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        **extra,
    }))


if __name__ == "__main__":
    main()
