"""One waiting-cost measurement: N waits on one event loop, in a process of their own.

Started by ``run.py``, one process per variant and N, so that the peak RSS is that variant's.
Protocol: it imports what its variant needs, prints one JSON line ``{"ready": ...}``, reads one JSON
line ``{"tasks": [[video_task_id, finish_epoch], ...]}`` from stdin, waits for every task, and
prints one JSON line with the results.

Variants (same simulator, same task schedule, same poll interval and jitter):

- ``trigger``: ``VideoTaskTrigger.run()``, driven as Airflow's triggerer drives triggers: one asyncio
  task per trigger in one event loop, created one after the other with ``await asyncio.sleep(0)``
  in between, each consuming its single event. Its polls are shared (the default): one list call
  answers many waiting tasks.
- ``long-urls``: the same, against a host that takes request lines long enough for 500 ids a list call
  (``run.py`` starts a simulator with ``max_request_line`` raised for it).
- ``single``: the same trigger on a connection with ``coalesce_polls`` false: one request per poll.
- ``http``: the same wait written on ``HttpAsyncHook`` the way ``apache-airflow-providers-http``'s
  own ``HttpSensorTrigger`` uses it (a new ``aiohttp.ClientSession`` per request): what a user
  writes without this provider.
- ``bare``: a bare loop on one ``aiohttp.ClientSession`` shared by every wait: the floor for this
  design.

Polls are counted at the client: the trigger is instrumented by overriding ``_sleep`` (one sleep
precedes each poll), the references count in their loop. Requests are counted at the client too:
the hook's one place that sends (``_arequest``) is wrapped; the references make one per poll.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

FINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})
# The references give up after this many failed polls in a row, as the trigger does by default.
MAX_CONSECUTIVE_ERRORS = 8
TASKS_PATH = "/llm/v1/contents/generations/tasks"


class Counters:
    polls = 0
    errors = 0
    requests: dict[str, int] = {}


_SHARED_SESSIONS: list[Any] = []


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---- the three ways to wait -----------------------------------------------------------------------


def make_trigger_variant(
    args: argparse.Namespace, conn_id: str = "videogen_bench"
) -> Callable[[str], AsyncIterator[Any]]:
    # What the hook imports on its first async call, imported before the measurement as every variant's is
    # (in a triggerer it is imported once per process, not once per wait).
    import aiohttp  # noqa: F401

    from airflow_provider_videogen.client import ApiRequest, VideoGenClient
    from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger

    send = VideoGenClient.asend

    async def counted(self: VideoGenClient, request: ApiRequest) -> Any:
        Counters.requests[request.action] = Counters.requests.get(request.action, 0) + 1
        return await send(self, request)

    VideoGenClient.asend = counted  # type: ignore[method-assign]

    class CountingTrigger(VideoTaskTrigger):
        async def _sleep(self, seconds: float) -> None:
            Counters.polls += 1
            await asyncio.sleep(seconds)

    CountingTrigger.jitter = args.jitter
    if args.no_trigger_logs:
        # Measures what the trigger's own log lines cost: its logger is replaced by one that drops them.
        class _Silent:
            def __getattr__(self, name: str) -> Callable[..., None]:
                return lambda *args, **kwargs: None

        CountingTrigger.log = _Silent()  # type: ignore[assignment]
    cls: type[VideoTaskTrigger] = CountingTrigger
    if args.jitter_mode == "proposed":

        class ProposedJitterTrigger(CountingTrigger):
            """A change proposed for the trigger, measured here: waits drawn below the interval, not above.

            The first wait is drawn from [(1 - first_spread) * interval, interval] so that triggers
            started together (a triggerer restart, a large mapped task) do not poll in one burst;
            later waits from [(1 - jitter) * interval, interval], so that the poll interval bounds
            the detection latency.
            """

            first_spread = args.first_spread
            _waited = False

            def _schedule(self) -> Any:
                trigger, schedule = self, super()._schedule()

                class Proposed:
                    def next_wait(self, failures: int = 0, *, jitter: float = 0.0, **kwargs: Any) -> float:
                        spread = jitter if trigger._waited else trigger.first_spread
                        trigger._waited = True
                        return schedule.next_wait(failures, **kwargs) * (1.0 - random.uniform(0.0, spread))

                return Proposed()

        cls = ProposedJitterTrigger

    def wait(video_task_id: str) -> AsyncIterator[Any]:
        trigger = cls(video_task_id, videogen_conn_id=conn_id, poll_interval=args.poll)
        return trigger.run()

    return wait


class Waits:
    """The references' waits between polls: the same as the trigger's (see ``--jitter-mode``)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.waited = False

    def next(self) -> float:
        args = self.args
        if args.jitter_mode == "current":
            return args.poll * (1.0 + random.uniform(0.0, args.jitter))
        spread = args.jitter if self.waited else args.first_spread
        self.waited = True
        return args.poll * (1.0 - random.uniform(0.0, spread))


def make_http_variant(args: argparse.Namespace) -> Callable[[str], AsyncIterator[Any]]:
    import aiohttp
    from airflow.providers.http.hooks.http import HttpAsyncHook

    async def wait(video_task_id: str) -> AsyncIterator[Any]:
        hook = HttpAsyncHook(method="GET", http_conn_id="videogen_http")
        endpoint = f"{TASKS_PATH}/{video_task_id}"
        waits = Waits(args)
        failures = 0
        while True:
            await asyncio.sleep(waits.next())
            Counters.polls += 1
            try:
                async with aiohttp.ClientSession() as session:
                    response = await hook.run(session=session, endpoint=endpoint)
                    answer = await response.json()
            except Exception as error:
                Counters.errors += 1
                failures += 1
                if failures >= MAX_CONSECUTIVE_ERRORS:
                    yield {"status": "error", "error": repr(error)}
                    return
                continue
            failures = 0
            if answer.get("status") in FINAL:
                yield {"status": answer["status"], "task": answer}
                return

    return wait


def make_bare_variant(args: argparse.Namespace) -> Callable[[str], AsyncIterator[Any]]:
    import aiohttp

    base_url = os.environ["BENCH_BASE_URL"]
    headers = {"Authorization": f"Bearer {os.environ['BENCH_API_KEY']}", "Accept": "application/json"}
    shared = _SHARED_SESSIONS

    async def wait(video_task_id: str) -> AsyncIterator[Any]:
        if not shared:
            shared.append(aiohttp.ClientSession())
        session = shared[0]
        url = f"{base_url}{TASKS_PATH}/{video_task_id}"
        waits = Waits(args)
        failures = 0
        while True:
            await asyncio.sleep(waits.next())
            Counters.polls += 1
            try:
                async with session.get(url, headers=headers) as response:
                    response.raise_for_status()
                    answer = await response.json()
            except Exception as error:
                Counters.errors += 1
                failures += 1
                if failures >= MAX_CONSECUTIVE_ERRORS:
                    yield {"status": "error", "error": repr(error)}
                    return
                continue
            finally:
                response = None  # do not keep the last answer alive while sleeping
            failures = 0
            if answer.get("status") in FINAL:
                yield {"status": answer["status"], "task": answer}
                return

    return wait


def make_single_variant(args: argparse.Namespace) -> Callable[[str], AsyncIterator[Any]]:
    return make_trigger_variant(args, conn_id="videogen_bench_single")


VARIANTS = {
    "trigger": make_trigger_variant,
    # The same trigger; run.py runs it against a simulator that takes long request lines (500 ids a call).
    "long-urls": make_trigger_variant,
    "single": make_single_variant,
    "http": make_http_variant,
    "bare": make_bare_variant,
}


# ---- the driver -----------------------------------------------------------------------------------


async def measure(
    wait: Callable[[str], AsyncIterator[Any]],
    tasks: list[tuple[str, float]],
    tick: float,
    window: tuple[float, float] | None = None,
) -> dict:
    from structlog.contextvars import bind_contextvars as bind_log_contextvars

    loop = asyncio.get_running_loop()
    lags: list[float] = []
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    done = asyncio.Event()

    spikes: list[tuple[float, float]] = []
    t0 = loop.time()

    async def ticker() -> None:
        while not done.is_set():
            start = loop.time()
            await asyncio.sleep(tick)
            lag = loop.time() - start - tick
            lags.append(lag)
            if lag > 0.02:
                spikes.append((round(start - t0, 2), round(1000 * lag)))

    async def run_one(trigger_id: int, video_task_id: str, finish: float) -> None:
        # As the triggerer's run_trigger: bind the trigger's log context, consume the events of run().
        bind_log_contextvars(trigger_id=trigger_id, ti_id=None, dag_id="bench", task_id="wait", run_id="bench")
        async for event in wait(video_task_id):
            latencies.append(time.time() - finish)
            payload = getattr(event, "payload", event)
            status = str(payload.get("status"))
            statuses[status] = statuses.get(status, 0) + 1

    gc_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses[info["generation"]].append(time.perf_counter() - gc_started[0])

    gc.collect()
    gc.callbacks.append(on_gc)
    steady: dict[str, float] = {}

    async def steady_window() -> None:
        # The steady state: every wait has made its first poll, none has finished (see --steady-window).
        start, end = window
        await asyncio.sleep(max(start - (loop.time() - t0), 0.0))
        steady["cpu0"], steady["polls0"], steady["t0"] = _cpu_seconds(), Counters.polls, loop.time()
        await asyncio.sleep(max(end - (loop.time() - t0), 0.0))
        steady["cpu1"], steady["polls1"], steady["t1"] = _cpu_seconds(), Counters.polls, loop.time()

    cpu0, wall0 = _cpu_seconds(), time.monotonic()
    ticking = asyncio.create_task(ticker())
    steadying = asyncio.create_task(steady_window()) if window else None
    running = []
    for trigger_id, (video_task_id, finish) in enumerate(tasks):
        await asyncio.sleep(0)  # as the triggerer's create_triggers
        running.append(asyncio.create_task(run_one(trigger_id, video_task_id, finish)))
    results = await asyncio.gather(*running, return_exceptions=True)
    if steadying is not None:
        steadying.cancel()
    cpu1, wall1 = _cpu_seconds(), time.monotonic()
    gc.callbacks.remove(on_gc)
    done.set()
    await ticking
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    lags.sort()
    latencies.sort()

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    return {
        "n": len(tasks),
        "polls": Counters.polls,
        # The references make one request per poll; the trigger's are counted where the hook sends.
        "requests": dict(Counters.requests) or {"query": Counters.polls},
        "errors": Counters.errors,
        "failures": failures[:5],
        "statuses": statuses,
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
        "lag_max_ms": 1000 * (lags[-1] if lags else float("nan")),
        "lag_p99_ms": 1000 * pct(lags, 0.99),
        "ticks": len(lags),
        # CPU and polls within the steady window (both ends reached), for run.py to divide.
        "steady": {
            "cpu_s": steady["cpu1"] - steady["cpu0"],
            "polls": steady["polls1"] - steady["polls0"],
            "wall_s": steady["t1"] - steady["t0"],
        }
        if "cpu1" in steady
        else None,
        "gc": {g: [len(p), round(1000 * sum(p), 1), round(1000 * max(p, default=0), 1)] for g, p in gc_pauses.items()},
        "lag_spikes": sorted(spikes, key=lambda s: -s[1])[:10],
        "lag_spikes_count": len(spikes),
        "latency_max_s": latencies[-1] if latencies else float("nan"),
        "latency_p50_s": pct(latencies, 0.5),
        "latency_p99_s": pct(latencies, 0.99),
        "latency_min_s": latencies[0] if latencies else float("nan"),
    }


async def idle_cost(tick: float, seconds: float = 3.0) -> float:
    """CPU seconds per second that the event loop and the lag ticker cost with nothing to wait for."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(tick)
    cpu0, wall0 = _cpu_seconds(), loop.time()
    while loop.time() - wall0 < seconds:
        start = loop.time()
        await asyncio.sleep(tick)
        _ = loop.time() - start - tick
    return (_cpu_seconds() - cpu0) / (loop.time() - wall0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--poll", type=float, default=5.0, help="poll interval in seconds")
    parser.add_argument("--jitter", type=float, default=0.1, help="largest random fraction added to each wait")
    parser.add_argument("--tick", type=float, default=0.01, help="period of the lag ticker in seconds")
    parser.add_argument(
        "--jitter-mode",
        choices=("current", "proposed"),
        default="current",
        help="the trigger's own jitter, or the proposed one (see ProposedJitterTrigger); references follow",
    )
    parser.add_argument("--first-spread", type=float, default=0.5, help="proposed jitter: spread of the first wait")
    parser.add_argument("--connector-limit", type=int, default=None, help="triggers only: shared session's limit")
    parser.add_argument("--no-trigger-logs", action="store_true", help="triggers only: drop their log lines")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="move every object alive after the imports out of the collector's sight (gc.freeze()) before waiting",
    )
    parser.add_argument(
        "--steady-window",
        type=lambda s: tuple(float(x) for x in s.split("-")),
        default=None,
        help="seconds after the waits start, START-END, in which to measure the steady state's CPU per poll",
    )
    parser.add_argument(
        "--log-file",
        default=None,
        help="log as the triggerer's trigger runner does (JSON lines, secrets not masked in-process) into this file",
    )
    args = parser.parse_args()
    if args.log_file:
        # Airflow's trigger runner process logs JSON lines to its supervisor (sdk.log.configure_logging,
        # sending_to_supervisor=True); here they go to a file instead of the supervisor's socket.
        from airflow.sdk.log import configure_logging

        log_output = open(args.log_file, "wb")  # noqa: SIM115 (open until the process ends)
        configure_logging(json_output=True, output=log_output, sending_to_supervisor=True)
    # The protocol owns stdout; anything else written there (logging) goes to stderr.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    wait = VARIANTS[args.variant](args)
    if args.connector_limit is not None:
        from airflow_provider_videogen.transport import SharedSessionLease

        SharedSessionLease.connection_limit = args.connector_limit
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    idle_cpu_per_s = asyncio.run(idle_cost(args.tick))
    ready = {"ready": True, "idle_cpu_per_s": idle_cpu_per_s, "rss_mb": _rss_now_mb(), "peak_rss_mb": _peak_rss_mb()}
    print(json.dumps(ready), file=protocol, flush=True)
    request = json.loads(sys.stdin.readline())
    tasks = [(str(t), float(f)) for t, f in request["tasks"]]
    del request

    async def go() -> dict:
        result = await measure(wait, tasks, args.tick, args.steady_window)
        for session in _SHARED_SESSIONS:
            await session.close()
        return result

    result = asyncio.run(go())
    # The idle cost is measured before and after the waits; their mean is subtracted by run.py.
    idle_after = asyncio.run(idle_cost(args.tick))
    result["idle_cpu_per_s_before"], result["idle_cpu_per_s_after"] = idle_cpu_per_s, idle_after
    idle_cpu_per_s = (idle_cpu_per_s + idle_after) / 2
    result["variant"] = args.variant
    result["peak_rss_mb"] = _peak_rss_mb()
    result["rss_ready_mb"] = ready["rss_mb"]
    result["idle_cpu_per_s"] = idle_cpu_per_s
    print(json.dumps(result), file=protocol, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
