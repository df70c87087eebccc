"""The seeded fault run: many schedules of network faults and agent kills against one hub and one
appliance, each followed by a clean round and the invariants.

    .venv/bin/python -m tests.faults.run --schedules 1000 --seed 1
    .venv/bin/python -m tests.faults.run --schedule-seed 100042   # one schedule, fresh world

One hub process (``wicket-hub serve``) and the fault proxy in front of it live for the whole run;
the appliance is enrolled through the proxy. Each schedule, from its own seed:

1. draws fault rules per sync path (and forces one fault of a kind chosen in turn, so every
   kind occurs), and arms kills of the agent: at a chosen phase of the n-th request to a
   chosen path (before the hub sees it, after the hub answered but before the agent hears, or
   right after the agent got the answer), or at a random moment;
2. runs the agent (``wicket-edge sync``) while a lane scans through the engine and the hub
   sells, refunds, moves seats, now and then asks for a resync or a new credential, or
   compacts its change log (an appliance behind the horizon then gets 410 and takes a
   snapshot); a killed agent is
   restarted after a random pause (the lane keeps scanning meanwhile); the schedule lasts a
   random time and at least a random number of requests;
3. stops the lane and switches faults off; then the clean round: either the running agent
   finishes one (every stream succeeds after the faults stopped, nothing is queued, the cursor
   is past the venue's last change) within a minute, or the agent is stopped (SIGKILL, or
   SIGTERM and it must exit 0) and one ``wicket-edge sync --once`` must exit 0; then the
   invariants (:func:`tests.faults.harness.check`). An agent that exits on its own is a
   failure too.

Agent processes are started ahead of time (:mod:`tests.faults.warm_agent`: the same
``wicket-edge`` entry point with its imports done), so a restart costs milliseconds, not the
seconds of imports on a busy machine.

A failing schedule prints its seed and the command that replays it; the world (hub and
appliance) is then rebuilt so that later schedules are judged on their own. Timing is real, so
a replay follows the same plan (faults, kills, sales, scans), not the same interleaving.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from cloud.core.changes import change_log
from cloud.core.compaction import compact
from cloud.fleet import appliances as appliance_mod
from sync.timeutil import to_iso, utcnow
from tests.faults.harness import SYNC_PREFIX, Edge, Hub, Report, Scanner, check, wait_for
from tests.faults.proxy import FAULT_KINDS, Event, FaultProxy

PATHS = ("allowlist", "revocations", "entries", "heartbeat")
PHASES = ("received", "answered", "sent")
# the agent loops fast, so that a schedule of about a second sees many rounds
AGENT_SETTINGS = {
    "sync_revocations_s": 0.1,
    "sync_allowlist_s": 0.15,
    "sync_entries_s": 0.1,
    "heartbeat_s": 0.15,
    "sync_backoff_max_s": 0.4,
    "hub_timeout_s": 3.0,
    "sync_page_size": 16,
    "sync_batch_size": 10,
}


CLEAN_ROUND_S = 60
# a schedule waits at most this long for the agent to take its forced fault (it takes it in
# well under a second unless the machine is starved)
FORCED_WAIT_S = 120
# what the hub does during a schedule, and how often (relative weights)
HUB_ACTIONS = {"sell": 45, "refund": 30, "move": 20, "resync": 3, "compact": 2, "roll": 2}


def schedule_seed(seed: int, index: int) -> int:
    return seed * 100_000 + index


@dataclass
class Totals:
    schedules: int = 0
    failed: int = 0
    faults: Counter = field(default_factory=Counter)
    kills: Counter = field(default_factory=Counter)
    starts: int = 0
    actions: Counter = field(default_factory=Counter)
    scans: Counter = field(default_factory=Counter)
    duplicates_answered: int = 0
    failures: list[tuple[int, int, str]] = field(default_factory=list)  # (index, seed, line)
    entries: int = 0
    entries_before: int = 0  # in worlds rebuilt after a failure
    acked_duplicates: int = 0
    seconds: float = 0.0
    phase_s: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        faults = ", ".join(f"{k} {self.faults[k]}" for k in FAULT_KINDS)
        kills = ", ".join(f"{k} {n}" for k, n in sorted(self.kills.items()))
        actions = ", ".join(f"{k} {n}" for k, n in sorted(self.actions.items()))
        scans = ", ".join(f"{k} {n}" for k, n in self.scans.most_common())
        return [
            f"schedules: {self.schedules}",
            f"faults injected: {sum(self.faults.values())} ({faults})",
            f"agent kills: {sum(v for k, v in self.kills.items() if k != 'sigterm')} "
            f"SIGKILL ({kills}); agent starts: {self.starts}",
            f"entries: {self.entries} recorded at the appliance, all checked at the hub",
            f"duplicates refused by the hub: {self.duplicates_answered} in answers seen on the "
            f"wire; {self.acked_duplicates} entries acknowledged as duplicate",
            f"hub actions: {actions}",
            f"scans: {scans}",
            f"invariant failures: {len(self.failures)} in {self.failed} schedules",
            f"time: {self.seconds:.0f} s, {self.seconds / max(1, self.schedules):.2f} s per "
            f"schedule ({', '.join(f'{k} {v:.0f} s' for k, v in self.phase_s.items())})",
        ]


class World:
    """The hub process, the proxy in front of it and one enrolled appliance with lanes."""

    def __init__(self, workdir: Path, seed: int, hub_db: str | None = None):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.duplicates_answered = 0
        self.proxy: FaultProxy | None = None
        self.edge: Edge | None = None
        self.hub = Hub(workdir, url=hub_db)
        try:
            self.hub.start()
            self.proxy = FaultProxy(("127.0.0.1", self.hub.port), seed, delay=(0.02, 0.3),
                                    retry_after="0").start()
            self.proxy.add_hook(self._count_duplicates)
            self.edge = Edge(workdir / "edge", AGENT_SETTINGS)
            self._enroll()
        except BaseException:
            self.close()
            raise

    def _enroll(self) -> None:
        r = self.edge.enroll(self.proxy.url, self.hub.token)
        if r.returncode != 0:
            raise RuntimeError(f"enroll failed: {r.output}")
        r = self.edge.sync_once()
        if r.returncode != 0:
            raise RuntimeError(f"first sync failed: {r.output}")
        self.edge.add_lanes(self.hub.gate_id)

    @property
    def credential(self) -> str:
        """The appliance's credential as it holds it now (the hub may have rolled it)."""
        return json.loads(self.edge.config.with_name("edge.hub.json").read_text())["credential"]

    def _count_duplicates(self, event: Event) -> None:
        if event.phase != "answered" or not event.request.path.endswith("/entries"):
            return
        for body in event.upstream_bodies:
            try:
                self.duplicates_answered += len(json.loads(body).get("duplicate", []))
            except (ValueError, AttributeError):
                continue  # not the hub's JSON (an error page)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.off()
        if self.edge is not None:
            if self.edge.agent_alive():
                self.edge.stop_agent(signal.SIGKILL)
            self.edge.close()
        if self.proxy is not None:
            self.proxy.close()
        self.hub.stop()


class KillSwitch:
    """Kills the agent at the n-th request to a path, at a phase; fires once, never after
    :meth:`disarm` has returned."""

    def __init__(self, edge: Edge, path: str, phase: str, nth: int, kills: Counter):
        self.edge, self.path, self.phase, self.left = edge, path, phase, nth
        self.kills = kills
        self.fired = False
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if event.phase != self.phase or event.request.path != f"{SYNC_PREFIX}/{self.path}":
            return
        with self.lock:
            if self.fired:
                return
            self.left -= 1
            if self.left > 0:
                return
            self.fired = True
            if self.edge.kill_agent(signal.SIGKILL):
                self.kills[f"{self.path}/{self.phase}"] += 1

    def disarm(self) -> None:
        with self.lock:
            self.fired = True


def _rules(rng: random.Random) -> dict[str, dict[str, float]]:
    rules = {}
    for path in PATHS:
        if rng.random() < 0.25:
            continue  # this path is clean in this schedule
        kinds = rng.sample(FAULT_KINDS, rng.randint(1, 4))
        total = rng.uniform(0.1, 0.6)
        weights = [rng.random() + 0.1 for _ in kinds]
        rules[f"{SYNC_PREFIX}/{path}"] = {k: total * w / sum(weights)
                                          for k, w in zip(kinds, weights, strict=True)}
    return rules


def _clean_round_done(world: World, since: str) -> bool:
    """The agent has finished a round since ``since`` (every stream succeeded after it) and has
    nothing left to do: no entry queued, no snapshot half-taken, the cursor past the venue's
    last change."""
    conn = world.edge.connect()
    try:
        oks = dict(conn.execute("SELECT stream, last_ok_at FROM sync_state"))
        queued = conn.execute("SELECT count(*) FROM entries WHERE acked_at IS NULL"
                              ).fetchone()[0]
        snapshot = conn.execute("SELECT 1 FROM appliance_state WHERE key = "
                                "'snapshot_started_at'").fetchone()
    finally:
        conn.close()
    if queued or snapshot or any((oks.get(s) or "") <= since for s in PATHS):
        return False
    with world.hub.engine.connect() as hc:
        last = hc.execute(sa.select(sa.func.max(change_log.c.seq))
                          .where(change_log.c.venue_id == world.hub.venue_id)).scalar() or 0
    return oks is not None and _cursor(world) >= last


def _cursor(world: World) -> int:
    conn = world.edge.connect()
    try:
        return conn.execute("SELECT cursor FROM sync_state WHERE stream = 'allowlist'"
                            ).fetchone()[0]
    finally:
        conn.close()


def run_schedule(world: World, index: int, seed: int, totals: Totals) -> Report:
    rng = random.Random(seed)
    hub, edge, proxy = world.hub, world.edge, world.proxy
    before = proxy.counts()
    requests_before = len(proxy.records)
    proxy.reseed(seed)
    proxy.set_faults(_rules(rng))
    # every kind of fault is injected by the schedules whose index names it: the schedule goes
    # on until the agent has made the request that takes it, however slow the machine is
    forced = FAULT_KINDS[index % len(FAULT_KINDS)]
    forced_path = rng.choice(PATHS)
    proxy.force(forced, f"{SYNC_PREFIX}/{forced_path}")
    duration = rng.uniform(0.3, 0.8)
    min_requests = rng.randint(3, 8)  # the agent's work, not the clock, ends a schedule
    events: list[tuple[float, str, object]] = []
    for _ in range(rng.randint(2, 6)):
        events.append((rng.uniform(0, duration), "hub",
                       rng.choices(list(HUB_ACTIONS), list(HUB_ACTIONS.values()))[0]))
    for _ in range(rng.choice((0, 1, 1, 1, 2, 3))):
        if rng.random() < 0.75:
            events.append((rng.uniform(0, duration * 0.8), "arm",
                           (rng.choice(PATHS), rng.choice(PHASES), rng.randint(1, 3))))
        else:
            events.append((rng.uniform(0, duration), "kill", None))
    if rng.random() < 0.3:
        events.append((rng.uniform(0, duration), "rules", _rules(rng)))
    events.sort(key=lambda e: e[0])
    restart_pause = rng.uniform(0.0, 0.4)
    finish_once = rng.random() < 0.15
    switches: list[KillSwitch] = []
    scanner = Scanner(edge, hub, seed + 1, pause=(0.005, 0.05))
    scanner.start()
    rep = Report()
    if not edge.agent_alive():
        _restart(edge, rep, totals)
    start = time.monotonic()
    dead_since: float | None = None
    try:
        while True:
            now = time.monotonic() - start
            while events and events[0][0] <= now:
                _, what, arg = events.pop(0)
                if what == "hub":
                    _hub_action(hub, rng, str(arg), totals)
                elif what == "arm":
                    path, phase, nth = arg
                    ks = KillSwitch(edge, path, phase, nth, totals.kills)
                    switches.append(ks)
                    proxy.add_hook(ks)
                elif what == "kill":
                    if edge.kill_agent(signal.SIGKILL):
                        totals.kills["random moment"] += 1
                elif what == "rules":
                    proxy.set_faults(arg)
            if not edge.agent_alive():
                dead_since = dead_since if dead_since is not None else now
                if now - dead_since >= restart_pause:
                    _restart(edge, rep, totals)
                    dead_since = None
            seen = len(proxy.records) - requests_before
            injected = proxy.counts()[forced] > before[forced]
            if (not events and now >= duration and injected
                    and (seen >= min_requests or now > 20)):
                break
            if now > FORCED_WAIT_S:
                rep.failures.append(f"the forced fault {forced} was never taken: the agent "
                                    f"made no {forced_path} request in {FORCED_WAIT_S} s")
                break
            time.sleep(0.01)
    finally:
        for ks in switches:
            ks.disarm()
            proxy.remove_hook(ks)
        scanner.stop()
        totals.scans.update(scanner.decisions)
        proxy.off()
    since = to_iso(utcnow())
    totals.phase_s["faults"] += time.monotonic() - start
    start = time.monotonic()
    if finish_once:  # the clean round by `sync --once`, after the agent is stopped
        sig = signal.SIGTERM if rng.random() < 0.4 else signal.SIGKILL
        was_alive = edge.agent_alive() and not edge.killed  # a kill may be landing just now
        # an agent still starting (the pause after a restart is short) dies of the signal
        handles_it = was_alive and edge.agent_installed_its_handlers()
        if not was_alive:
            problem = edge.reap()
            if problem:
                rep.failures.append(problem)
        rc = edge.stop_agent(sig, timeout=30)
        if was_alive:
            totals.kills["sigterm" if sig == signal.SIGTERM else "end of schedule"] += 1
            if sig == signal.SIGTERM and rc != 0 and (handles_it or rc != -signal.SIGTERM):
                rep.failures.append(f"the agent exited {rc} on SIGTERM")
        r = edge.sync_once()
        if r.returncode != 0:
            rep.failures.append(f"the clean round failed (exit {r.returncode}): "
                                f"{r.output.strip().splitlines()[-1:]}")
    else:  # the clean round by the running agent, faults off
        if edge.killed and edge.agent_alive():  # a kill landed just before the switches were
            edge.stop_agent(signal.SIGKILL)    # disarmed: let it finish dying
            _restart(edge, rep, totals)
        elif not edge.agent_alive():
            _restart(edge, rep, totals)

        def done() -> bool:
            if not edge.agent_alive():
                raise AgentDied
            return _clean_round_done(world, since)

        try:
            wait_for(done, CLEAN_ROUND_S, "a clean round", interval=0.05)
        except TimeoutError:
            rep.failures.append(f"no clean round within {CLEAN_ROUND_S} s of the faults "
                                "stopping (the agent is stuck)")
        except AgentDied:
            rep.failures.append(f"the agent exited during the clean round with status "
                                f"{edge.agent.returncode} (see its log)")
    totals.phase_s["clean round"] += time.monotonic() - start
    start = time.monotonic()
    conn = edge.connect()
    try:
        edge_checksum = conn.execute(
            "SELECT changes FROM sync_state WHERE stream = 'allowlist'").fetchone()[0]
    finally:
        conn.close()
    checked = check(hub, edge, world.credential, edge_checksum)
    totals.phase_s["checks"] += time.monotonic() - start
    rep.failures += checked.failures
    rep.edge_entries, rep.hub_entries = checked.edge_entries, checked.hub_entries
    rep.acked_duplicates = checked.acked_duplicates
    totals.faults.update(proxy.counts() - before)
    return rep


class AgentDied(Exception):
    pass


def _restart(edge: Edge, rep: Report, totals: Totals) -> None:
    problem = edge.restart_agent()
    totals.starts += 1
    if problem:
        rep.failures.append(problem)


def _hub_action(hub: Hub, rng: random.Random, action: str, totals: Totals) -> None:
    live = hub.live()
    if action == "sell" or (action in ("refund", "move") and not live):
        hub.sell(rng, rng.randint(1, 3))
        totals.actions["sold"] += 1
    elif action == "refund":
        hub.refund(rng.choice(live[-60:]))
        totals.actions["refunded"] += 1
    elif action == "move":
        hub.move(rng.choice(live[-60:]), rng)
        totals.actions["moved"] += 1
    elif action in ("resync", "roll"):
        with hub.engine.begin() as conn:
            appliance_mod.queue_command(conn, hub.appliance_id,
                                        "resync" if action == "resync" else "roll_credential")
        totals.actions[f"{action} asked"] += 1
    else:  # the hub forgets superseded changes: an appliance behind it gets 410, a snapshot
        with hub.engine.begin() as conn:
            compact(conn, keep_days=0)
        totals.actions["compacted"] += 1


def _save_failure(world: World, seed: int, into: Path) -> Path:
    target = into / f"failed-{seed}"
    target.mkdir(parents=True, exist_ok=True)
    for src in (world.edge.agent_log_path, world.workdir / "hub.log"):
        if src.exists():
            shutil.copy(src, target / src.name)
    shutil.copy(world.edge.db_path, target / "edge.db")
    return target


def run(schedules: int, seed: int, workdir: Path, only: int | None = None,
        hub_db: str | None = None, progress_every: int = 10, out=print, job: int = 0,
        jobs: int = 1) -> Totals:
    """Schedules ``0 .. schedules-1`` of the run with ``seed`` (those of one ``job`` out of
    ``jobs``, each job with its own world), or only the schedule with seed ``only``."""
    totals = Totals()
    started = time.monotonic()
    world_n = 0

    def new_world() -> World:
        nonlocal world_n
        world_n += 1
        t0 = time.monotonic()
        w = World(workdir / f"world-{world_n}", seed, hub_db)
        totals.phase_s["setting up"] += time.monotonic() - t0
        return w

    world = new_world()
    try:
        plan = ([(only, only)] if only is not None
                else [(i, schedule_seed(seed, i)) for i in range(job, schedules, jobs)])
        for done, (index, s) in enumerate(plan, start=1):
            world.edge.agent_log_path.write_bytes(b"")  # keep the log of this schedule only
            t0 = time.monotonic()
            rep = run_schedule(world, index, s, totals)
            totals.schedules += 1
            totals.entries = totals.entries_before + rep.edge_entries
            totals.acked_duplicates = rep.acked_duplicates
            if not rep.ok:
                totals.failed += 1
                saved = _save_failure(world, s, workdir)
                out(f"FAILED schedule {index} (seed {s}) after {time.monotonic() - t0:.1f} s:")
                for line in rep.failures:
                    out(f"  {line}")
                    totals.failures.append((index, s, line))
                out(f"  logs and the appliance database: {saved}")
                out(f"  replay this schedule alone: .venv/bin/python -m tests.faults.run "
                    f"--schedule-seed {s}")
                out(f"  replay the run up to it:    .venv/bin/python -m tests.faults.run "
                    f"--seed {seed} --schedules {index + 1}"
                    + (f" --jobs {jobs}" if jobs > 1 else ""))
                totals.entries_before += rep.edge_entries
                totals.duplicates_answered += world.duplicates_answered
                world.close()
                world = new_world()
            if progress_every and done % progress_every == 0:
                elapsed = time.monotonic() - started
                out(f"schedule {done}/{len(plan)}: {sum(totals.faults.values())} faults, "
                    f"{sum(v for k, v in totals.kills.items() if k != 'sigterm')} kills, "
                    f"{totals.failed} failed, {elapsed / totals.schedules:.2f} s/schedule",
                    flush=True)
    finally:
        totals.duplicates_answered += world.duplicates_answered
        world.close()
        totals.seconds = time.monotonic() - started
    return totals


def _job(job: int, jobs: int, schedules: int, seed: int, workdir: Path,
         progress_every: int) -> Totals:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return run(schedules, seed, workdir / f"job-{job}", progress_every=progress_every,
               out=lambda *a, **k: print(f"[job {job}]", *a, flush=True), job=job, jobs=jobs)


def run_jobs(schedules: int, seed: int, workdir: Path, jobs: int, progress_every: int
             ) -> Totals:
    """The same schedules as :func:`run`, dealt round-robin to ``jobs`` processes, each with
    its own hub, proxy and appliance; the counts are added up."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    started = time.monotonic()
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = [pool.submit(_job, j, jobs, schedules, seed, workdir, progress_every)
                 for j in range(jobs)]
        results = [p.result() for p in parts]
    totals = Totals()
    for r in results:
        for name in ("schedules", "failed", "starts", "duplicates_answered", "entries",
                     "acked_duplicates"):
            setattr(totals, name, getattr(totals, name) + getattr(r, name))
        for name in ("faults", "kills", "actions", "scans", "phase_s"):
            getattr(totals, name).update(getattr(r, name))
        totals.failures += r.failures
    totals.failures.sort()
    totals.seconds = time.monotonic() - started
    return totals


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.faults.run", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("--schedules", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--schedule-seed", type=int, help="run only this schedule, in a fresh world")
    p.add_argument("--hub-db", help="hub database URL (default: a SQLite file in the work dir)")
    p.add_argument("--workdir", help="keep the hub, appliance and logs here (default: a "
                   "temporary directory, removed unless a schedule failed)")
    p.add_argument("--progress", type=int, default=10, help="print progress every N schedules")
    p.add_argument("--jobs", type=int, default=1, help="deal the schedules to N processes, "
                   "each with its own hub and appliance (SQLite hub only)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # stopped from outside (a background run ignores SIGINT): stop the hub and agents too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="faults-"))
    print(f"fault run: seed {args.seed}, "
          f"{'schedule seed ' + str(args.schedule_seed) if args.schedule_seed is not None else str(args.schedules) + ' schedules'}"
          f", work dir {workdir}", flush=True)
    if args.jobs > 1 and (args.hub_db or args.schedule_seed is not None):
        p.error("--jobs needs the default SQLite hub and a whole run (not --schedule-seed)")
    if args.jobs > 1:
        totals = run_jobs(args.schedules, args.seed, workdir, args.jobs, args.progress)
    else:
        totals = run(args.schedules, args.seed, workdir, only=args.schedule_seed,
                     hub_db=args.hub_db, progress_every=args.progress,
                     out=lambda *a, **k: print(*a, **{"flush": True, **k}))
    for line in totals.lines():
        print(line)
    if not args.workdir and not totals.failures:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if totals.failures else 0


if __name__ == "__main__":
    sys.exit(main())
