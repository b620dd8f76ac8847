"""Run the benchmarks and print one table.

    python benchmarks/run.py              # waiting at N = 100, 1,000 and 10,000, then a 1 GiB download
    python benchmarks/run.py --quick      # N = 100 and 1,000, a 256 MiB download
    python benchmarks/run.py --repeat 3   # every waiting measurement three times (medians)

Waiting cost: for each N and each variant (``trigger``, ``http``, ``bare``; see ``waiting.py``) a fresh
process waits on N simulated video tasks, each finishing at its own time drawn from the ``--finish``
window after its creation, polling every ``--poll`` seconds. Every variant of one N gets the same task
schedule (same seed, new tasks). Download cost: see ``download.py``.

The simulator runs in a process of its own; its CPU is sampled during every measurement, and so is
what the rest of the machine used meanwhile (``other load``): on a shared machine, compare runs with
little of it, or use ``--quiet-wait``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
API_KEY = "bench-key"
VARIANTS = ("trigger", "long-urls", "single", "http", "bare")
#: The simulator's request-line limit for the ``long-urls`` rows: 500 ids of 24 characters need ~20,500.
LONG_REQUEST_LINE = 65_536


# ---- the machine and the simulator ---------------------------------------------------------------


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} CPUs, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(limit: float, timeout: float) -> None:
    """Wait (at most ``timeout`` s) until the other processes of the machine use under ``limit`` cores."""
    deadline = time.monotonic() + timeout
    while True:
        busy0 = machine_busy_seconds()
        time.sleep(3.0)
        busy = (machine_busy_seconds() - busy0) / 3.0
        if busy < limit or time.monotonic() >= deadline:
            return
        print(f"  other processes use {busy:.2f} cores; waiting for a quiet machine ...", file=sys.stderr)


class CpuSampler:
    """Sample a process's CPU time every ``period`` seconds: average and busiest-window utilisation."""

    def __init__(self, pid: int, period: float = 0.5) -> None:
        self.process = psutil.Process(pid)
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = 0.0
        self.start_cpu = self.end_cpu = 0.0
        self.start_wall = self.end_wall = 0.0

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def _run(self) -> None:
        last_cpu, last_wall = self.start_cpu, self.start_wall
        while not self._stop.wait(self.period):
            cpu, wall = self._cpu(), time.monotonic()
            self.peak = max(self.peak, (cpu - last_cpu) / (wall - last_wall))
            last_cpu, last_wall = cpu, wall

    def __enter__(self) -> CpuSampler:
        self.start_cpu, self.start_wall = self._cpu(), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end_cpu, self.end_wall = self._cpu(), time.monotonic()

    @property
    def cpu_s(self) -> float:
        return self.end_cpu - self.start_cpu

    @property
    def wall_s(self) -> float:
        return self.end_wall - self.start_wall

    @property
    def average(self) -> float:
        return self.cpu_s / max(self.wall_s, 1e-9)


async def create_tasks(
    base_url: str, finish_offsets: list[float], queued: float, ca_file: str | None = None
) -> list[tuple[str, float]]:
    """Create one simulated task per offset (control API, 32 at a time); return ``(id, finish_epoch)``."""
    import ssl

    import aiohttp

    url = f"{base_url}/_simulator/tasks"
    out: list[tuple[str, float]] = [("", 0.0)] * len(finish_offsets)
    work = iter(enumerate(finish_offsets))

    async def creator(session: aiohttp.ClientSession) -> None:
        for i, offset in work:
            body = {"style": "contents_generations", "queued_seconds": queued, "running_seconds": offset - queued}
            async with session.post(url, json=body) as response:
                response.raise_for_status()
                task = await response.json()
            out[i] = (task["id"], task["created_at"] + task["queued_seconds"] + task["running_seconds"])

    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca_file)) if ca_file else None
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(creator(session) for _ in range(32)))
    return out


def worker_env(sim: Any, home: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(sim.conn_env("videogen_bench"))
    single = json.loads(sim.connection_json())
    single["extra"]["coalesce_polls"] = False  # every trigger polls on its own
    env["AIRFLOW_CONN_VIDEOGEN_BENCH_SINGLE"] = json.dumps(single)
    env["AIRFLOW_CONN_VIDEOGEN_HTTP"] = json.dumps(
        {"conn_type": "http", "host": sim.base_url, "extra": {"Authorization": f"Bearer {API_KEY}"}}
    )
    env.update(sim.ca_env())  # over HTTPS: every client of the worker trusts the simulator's CA
    env["BENCH_BASE_URL"] = sim.base_url
    env["BENCH_API_KEY"] = API_KEY
    env["AIRFLOW_HOME"] = home
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), env.get("PYTHONPATH")) if p)
    return env


# ---- part 1: waiting cost --------------------------------------------------------------------------


def read_json_line(stream: Any, timeout: float) -> str:
    """Next line that holds a JSON object (a profiler wrapping the worker may print lines of its own)."""
    deadline = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([stream], [], [], max(deadline - time.monotonic(), 0.0))
        if not ready:
            raise TimeoutError(f"no answer from the worker within {timeout:g} s")
        line = stream.readline()
        if not line or line.startswith("{"):
            return str(line)


def run_waiting(sim: Any, variant: str, n: int, args: argparse.Namespace, home: str, extra: list[str]) -> dict:
    """Measure one variant at one N in a fresh worker process."""
    command = [*args.wrap.split(), sys.executable] if args.wrap else [sys.executable]
    command += [str(HERE / "waiting.py"), "--variant", variant, "--poll", str(args.poll), "--jitter", str(args.jitter)]
    command += ["--jitter-mode", args.jitter_mode, "--first-spread", str(args.first_spread), *extra]
    window = steady_window(args)
    command += ["--steady-window", "-".join(f"{t:g}" for t in window)] if window else []
    log_path = Path(home) / f"waiting-{variant}-{n}.log"
    if variant in ("trigger", "long-urls", "single"):
        command += ["--log-file", str(Path(home) / f"trigger-logs-{variant}-{n}.jsonl")]

    def failure(what: str) -> RuntimeError:
        return RuntimeError(f"the {variant} worker {what}; the end of its log:\n{log_path.read_text()[-3000:]}")

    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=worker_env(sim, home)
        )
        assert worker.stdin is not None and worker.stdout is not None
        try:
            ready = json.loads(read_json_line(worker.stdout, timeout=120) or "null")
            if not ready:
                raise failure("did not start")
            sim.reset()
            rng = random.Random(args.seed + n)
            low, high = args.finish
            offsets = [rng.uniform(low, high) for _ in range(n)]
            tasks = asyncio.run(create_tasks(sim.base_url, offsets, queued=min(2.0, low / 2), ca_file=sim.ca_file))
            busy0 = machine_busy_seconds()
            with CpuSampler(sim.process.pid) as sampler:
                worker.stdin.write(json.dumps({"tasks": tasks}) + "\n")
                worker.stdin.flush()
                # Long enough for the last poll after the last finish, even on a struggling machine.
                line = read_json_line(worker.stdout, timeout=high + 4 * args.poll + 120)
            busy1 = machine_busy_seconds()
            code = worker.wait(timeout=120)
            if not sim.running:
                raise RuntimeError("the simulator process died during the measurement")
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    if not line or code != 0:
        raise failure(f"failed (exit {code})")
    result: dict = json.loads(line)
    label = " ".join(extra + (["--jitter-mode", args.jitter_mode] if args.jitter_mode != "current" else []))
    result.update(
        scheme=sim.base_url.split(":", 1)[0],
        label=f" ({label})" if label else "",
        # What the rest of the machine used meanwhile, in cores: other processes compete for the CPUs.
        others_cores=max(busy1 - busy0 - sampler.cpu_s - result["cpu_s"], 0.0) / max(sampler.wall_s, 1e-9),
        sim_cpu_s=sampler.cpu_s,
        sim_cpu_avg=sampler.average,
        sim_cpu_peak=sampler.peak,
        ready_peak_rss_mb=ready["peak_rss_mb"],
    )
    result["cpu_per_poll_s"] = (result["cpu_s"] - result["idle_cpu_per_s"] * result["wall_s"]) / max(result["polls"], 1)
    steady = result.get("steady")
    result["steady_cpu_per_poll_s"] = (
        (steady["cpu_s"] - result["idle_cpu_per_s"] * steady["wall_s"]) / steady["polls"]
        if steady and steady["polls"]
        else float("nan")
    )
    return result


def steady_window(args: argparse.Namespace) -> tuple[float, float] | None:
    """Seconds after the waits start in which every wait has polled once and none has finished yet.

    The first polls come one interval (plus jitter) after each wait started, and the waits all start
    within about a second; the first tasks finish ``--finish``'s low end after their creation. Between
    the two, every wait costs what one more interval of waiting costs, and nothing else (no start, no
    connection lookup, no status change to log, no event).
    """
    start, end = args.poll * (1.0 + args.jitter) + 2.0, args.finish[0] - 0.5
    return (start, end) if end - start >= args.poll else None


def summarize(runs: list[dict]) -> dict:
    """One row from repeated runs: medians, except the worst case for maxima and errors."""
    first = runs[0]
    row = {k: first[k] for k in ("scheme", "variant", "label", "n")}
    for key in (
        "cpu_per_poll_s",
        "steady_cpu_per_poll_s",
        "polls",
        "peak_rss_mb",
        "lag_p99_ms",
        "latency_p50_s",
        "sim_cpu_avg",
        "others_cores",
    ):
        row[key] = statistics.median(r[key] for r in runs)
    # Requests the service saw per poll interval: each wait polls once an interval.
    row["requests_per_interval"] = statistics.median(sum(r["requests"].values()) * r["n"] / r["polls"] for r in runs)
    row["rss_growth_mb"] = statistics.median(r["peak_rss_mb"] - r["ready_peak_rss_mb"] for r in runs)
    for key in ("lag_max_ms", "latency_max_s", "sim_cpu_peak"):
        row[key] = max(r[key] for r in runs)
    row["errors"] = max(
        r["errors"] + len(r["failures"]) + sum(v for k, v in r["statuses"].items() if k not in ("success", "succeeded"))
        for r in runs
    )
    row["runs"] = len(runs)
    return row


# ---- output ----------------------------------------------------------------------------------------


def fmt_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def waiting_table(rows: list[dict]) -> str:
    by_key = {(r["scheme"], r["n"], r["variant"], r["label"]): r for r in rows}
    out = []
    for r in rows:
        per_poll = r["cpu_per_poll_s"]
        bare = by_key.get((r["scheme"], r["n"], "bare", ""))
        http = by_key.get((r["scheme"], r["n"], "http", ""))
        out.append(
            [
                f"{r['variant']}{r['label']}",
                r["scheme"].upper(),
                f"{r['n']:,}",
                f"{r['polls']:,.0f}",
                f"{r['requests_per_interval']:,.0f}",
                f"{r['errors']:,}",
                f"{per_poll * 1e6:.0f}",
                f"{per_poll / bare['cpu_per_poll_s']:.2f}x" if bare else "-",
                f"{http['cpu_per_poll_s'] / per_poll:.1f}x" if http else "-",
                f"{r['steady_cpu_per_poll_s'] * 1e6:.0f}",
                f"{r['steady_cpu_per_poll_s'] / bare['steady_cpu_per_poll_s']:.2f}x" if bare else "-",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['rss_growth_mb']:.0f}",
                f"{r['lag_max_ms']:.0f}",
                f"{r['lag_p99_ms']:.0f}",
                f"{r['latency_p50_s']:.2f}",
                f"{r['latency_max_s']:.2f}",
                f"{100 * r['sim_cpu_avg']:.0f}% / {100 * r['sim_cpu_peak']:.0f}%",
                f"{r['others_cores']:.2f}",
            ]
        )
    headers = [
        "variant", "over", "N", "polls", "requests/interval", "errors", "CPU/poll µs", "÷ bare", "http ÷",
        "steady CPU/poll µs", "steady ÷ bare",
        "peak RSS MB", "RSS growth MB", "lag max ms", "lag p99 ms", "detect p50 s", "detect max s",
        "simulator CPU avg / peak", "other load",
    ]  # fmt: skip
    return fmt_table(headers, out)


def targets_table(rows: list[dict], download: dict | None, poll: float) -> str:
    """Each target of the benchmark beside what this run measured (ratios within this run)."""
    by_key = {(r.get("scheme", "http"), r["n"], r["variant"]): r for r in rows if not r["label"]}
    schemes = sorted({key[0] for key in by_key}, key=lambda scheme: scheme != "https")  # HTTPS first if measured
    out: list[list[str]] = []

    def add(what: str, target: str, measured: str | None, holds: bool | None) -> None:
        verdict = "-" if holds is None else ("holds" if holds else "missed")
        out.append([what, target, measured if measured is not None else "not measured", verdict])

    def row(variant: str, n: int, scheme: str | None = None) -> dict | None:
        for each in [scheme] if scheme else schemes:
            if (each, n, variant) in by_key:
                return by_key[(each, n, variant)]
        return None

    big = max((r["n"] for r in rows), default=0)
    coalesced, bare = row("trigger", 10_000), row("bare", 10_000)
    for variant, host in (
        ("long-urls", "a host taking 500 ids a call"),
        ("trigger", "a host with 8 KiB request lines"),
    ):
        counted = row(variant, 10_000)
        add(
            f"requests per poll interval, 10,000 waiting, contents style, {host}",
            "≤ 25",
            f"{counted['requests_per_interval']:,.0f}" if counted else None,
            counted["requests_per_interval"] <= 25 if counted else None,
        )
    # Per interval of waiting: the steady state's CPU per poll (each waiting video polls once an interval).
    ratio = coalesced["steady_cpu_per_poll_s"] / bare["steady_cpu_per_poll_s"] if coalesced and bare else None
    if ratio is not None and ratio != ratio:  # NaN: the schedule leaves no steady window
        ratio = None
    add(
        "CPU per waiting video per interval, 10,000 waiting, coalesced (steady state)",
        "≤ 0.3x bare floor's CPU/poll",
        f"{ratio:.2f}x" if ratio is not None else None,
        ratio <= 0.3 if ratio is not None else None,
    )
    for scheme in schemes:
        single, bare1, http1 = row("single", 1_000, scheme), row("bare", 1_000, scheme), row("http", 1_000, scheme)
        # Per poll of the steady state, and over whole waits (their start, log lines and event included).
        # The target is set over HTTPS, as every real service is; plain HTTP is shown beside it.
        judged = scheme == "https"
        for key, part in (("steady_cpu_per_poll_s", "steady state"), ("cpu_per_poll_s", "whole waits")):
            what = f"CPU/poll, 1,000 waiting, uncoalesced, {scheme.upper()}, {part}"
            if single and bare1 and single[key] == single[key]:  # not NaN
                over = single[key] / bare1[key]
                add(what, "≤ 1.3x bare", f"{over:.2f}x", over <= 1.3 if judged else None)
            if single and http1 and single[key] == single[key]:
                below = http1[key] / single[key]
                add(what, "≥ 5x below HttpAsyncHook", f"{below:.1f}x", below >= 5 if judged else None)
    lagging = row("trigger", 10_000) or row("trigger", big)
    if lagging:
        add(
            f"event-loop lag p99 / max, {lagging['n']:,} waiting",
            "< 50 ms / < 250 ms",
            f"{lagging['lag_p99_ms']:.0f} / {lagging['lag_max_ms']:.0f} ms",
            lagging["lag_p99_ms"] < 50 and lagging["lag_max_ms"] < 250,
        )
    for variants, which in ((("trigger", "long-urls"), "shared polls"), (("single",), "one GET per poll")):
        detecting = [r for r in rows if r["variant"] in variants and not r["label"]]
        if detecting:
            worst = max(detecting, key=lambda r: r["latency_max_s"])
            add(
                f"detection after the task finished, trigger with {which} (worst row: {worst['n']:,})",
                f"≤ interval + 1 s = {poll + 1:g} s",
                f"{worst['latency_max_s']:.2f} s",
                worst["latency_max_s"] <= poll + 1,
            )
    if download is not None:
        share = download["curl_mib_s"] and download["operator_mib_s"] / download["curl_mib_s"]
        growth = max(r["peak_rss_mb"] - r["peak_rss_before_mb"] for r in download["operator"])
        add(
            f"{download['size'] / 2**20:.0f} MiB download",
            "≥ 90% of curl, RSS growth < 32 MB",
            f"{100 * share:.0f}%, {growth:.0f} MB",
            share >= 0.9 and growth < 32,
        )
    return fmt_table(["target", "wanted", "measured", ""], out)


def download_table(d: dict) -> str:
    rows = []
    for name, runs, speed in (
        ("curl -o", d["curl"], d["curl_mib_s"]),
        ("FetchVideoOperator", d["operator"], d["operator_mib_s"]),
    ):
        rows.append(
            [
                name,
                f"{speed:.0f}",
                f"{100 * speed / d['curl_mib_s']:.0f}%",
                f"{statistics.median(r['wall_s'] for r in runs):.2f}",
                f"{statistics.median(r['cpu_s'] for r in runs):.2f}",
                f"{max(r['peak_rss_mb'] for r in runs):.0f}",
                f"{max(r['peak_rss_mb'] - r['peak_rss_before_mb'] for r in runs):.0f}" if name != "curl -o" else "-",
                f"{statistics.median(r['sim_cpu_s'] for r in runs):.2f}",
            ]
        )
    headers = ["copy", "MiB/s", "of curl", "wall s", "CPU s", "peak RSS MB", "RSS growth MB", "simulator CPU s"]
    return fmt_table(headers, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 100 and 1,000 only, a 256 MiB download")
    parser.add_argument("--n", default=None, help="comma-separated values of N (default 100,1000,10000)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each variant and N this many times (medians)")
    parser.add_argument("--poll", type=float, default=5.0, help="poll interval in seconds (default 5)")
    parser.add_argument(
        "--finish",
        type=lambda s: tuple(float(x) for x in s.split("-")),
        default=(15.0, 20.0),
        help="window in which the tasks finish, in seconds after their creation (default 15-20)",
    )
    parser.add_argument("--jitter", type=float, default=0.1, help="largest random fraction of a wait (default 0.1)")
    parser.add_argument(
        "--jitter-mode",
        choices=("current", "proposed"),
        default="current",
        help="current: the trigger's own, every wait in [1, 1 + jitter] x poll; proposed: the first wait in "
        "[1 - first-spread, 1] x poll, later ones in [1 - jitter, 1] x poll (see waiting.py); references follow",
    )
    parser.add_argument("--first-spread", type=float, default=0.5, help="proposed jitter: spread of the first wait")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--worker-arg", action="append", default=[], help="extra argument for the trigger's worker (see waiting.py)"
    )
    parser.add_argument("--wrap", default="", help="command prefix for the waiting workers, e.g. a profiler")
    parser.add_argument("--download-size", type=int, default=None, help="bytes (default 1 GiB, 256 MiB with --quick)")
    parser.add_argument("--download-rounds", type=int, default=3, help="copies with curl and with the operator each")
    parser.add_argument(
        "--download-cold", action="store_true", help="no page-cache warm-up before each copy (see download.py)"
    )
    parser.add_argument(
        "--schemes", default="http,https", help="waiting over plain HTTP, HTTPS or both (default http,https)"
    )
    parser.add_argument("--skip-waiting", action="store_true")
    parser.add_argument("--skip-download", action="store_true")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each measurement wait up to this many seconds for the machine to be quiet (shared machines)",
    )
    parser.add_argument("--quiet-limit", type=float, default=0.3, help="cores other processes may use when quiet")
    parser.add_argument("--json", type=Path, default=None, help="also write every raw result to this file")
    args = parser.parse_args()
    ns = (
        []
        if args.skip_waiting
        else [int(x) for x in (args.n or ("100,1000" if args.quick else "100,1000,10000")).split(",")]
    )
    variants = [v for v in args.variants.split(",") if v]
    quiet: Callable[[], None] = (
        (lambda: wait_until_quiet(args.quiet_limit, args.quiet_wait)) if args.quiet_wait else (lambda: None)
    )

    from airflow_provider_videogen.testing import SimulatorProcess

    started = datetime.now(timezone.utc)
    runs: list[dict] = []
    rows: list[dict] = []
    download = None
    schemes = [scheme for scheme in args.schemes.split(",") if scheme]
    with (
        tempfile.TemporaryDirectory(prefix="videogen-bench-") as home,
        SimulatorProcess(api_key=API_KEY, request_log=False, video_size=1024) as plain,
        SimulatorProcess(api_key=API_KEY, request_log=False, video_size=1024, tls="https" in schemes) as secure,
        contextlib.ExitStack() as stack,
    ):
        simulators = {"http": plain, "https": secure}
        # Hosts that take list calls of 500 ids (only started when their rows are asked for).
        long_urls = (
            {
                scheme: stack.enter_context(
                    SimulatorProcess(
                        api_key=API_KEY,
                        request_log=False,
                        video_size=1024,
                        tls=scheme == "https",
                        max_request_line=LONG_REQUEST_LINE,
                    )
                )
                for scheme in schemes
            }
            if "long-urls" in variants
            else {}
        )
        for n in ns:
            for scheme in schemes:
                sim = simulators[scheme]
                by_variant: dict[str, list[dict]] = {v: [] for v in variants}
                for i in range(args.repeat):
                    for variant in variants:  # interleaved, so that a noisy minute hits every variant alike
                        quiet()
                        print(
                            f"waiting: {variant} over {scheme} N={n:,} ({i + 1}/{args.repeat}) ...",
                            file=sys.stderr,
                            flush=True,
                        )
                        extra = args.worker_arg if variant in ("trigger", "long-urls", "single") else []
                        host = long_urls[scheme] if variant == "long-urls" else sim
                        by_variant[variant].append(run_waiting(host, variant, n, args, home, extra))
                for variant in variants:
                    runs.extend(by_variant[variant])
                    rows.append(summarize(by_variant[variant]))
        sim = plain
        if not args.skip_download:
            from download import measure_download

            size = args.download_size or (256 * 2**20 if args.quick else 2**30)
            print(f"download: {size / 2**20:.0f} MiB x {args.download_rounds} ...", file=sys.stderr, flush=True)
            sim.reset()
            download = measure_download(
                sim,
                size,
                args.download_rounds,
                worker_env(sim, home),
                home,
                CpuSampler,
                before_copy=quiet,
                warm=not args.download_cold,
            )

    print()
    print(f"Benchmarks of {started:%Y-%m-%d %H:%M} UTC on {machine()}")
    print(f"Command: python benchmarks/run.py {' '.join(sys.argv[1:])}".rstrip())
    if rows:
        repeats = f", median of {args.repeat} runs each" if args.repeat > 1 else ""
        print()
        print(
            f"Waiting: N tasks finishing {args.finish[0]:g}-{args.finish[1]:g} s after creation (queued, then "
            "running), "
            f"polled every {args.poll:g} s ({args.jitter_mode} jitter){repeats}. CPU/poll excludes the idle loop "
            "and lag ticker; ÷ bare = CPU/poll over the bare loop's; http ÷ = the HttpAsyncHook loop's over this one's."
        )
        print()
        print(waiting_table(rows))
    if download is not None:
        print()
        print(
            f"Download: one {download['size'] / 2**20:.0f} MiB video from the simulator to file://, "
            f"median of {download['rounds']} copies each, alternating"
            + (", each right after an equal-size scratch write (see download.py)." if download["warm"] else ".")
        )
        print()
        print(download_table(download))
    if rows or download is not None:
        print()
        print("Targets (measured in this run):")
        print()
        print(targets_table(rows, download, args.poll))
    if args.json:
        raw = {"started": started.isoformat(), "machine": machine(), "argv": sys.argv[1:], "waiting": runs}
        raw["download"] = download
        args.json.write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
