#!/usr/bin/env python3
"""BPF tests of schedtop against a running weft runtime (tests/bpf/weft_load).

    test_schedtop.py SCHEDTOP WEFT_LOAD LIBWEFT TEST

TEST is one of:
  counts    BPF per-worker steal/park/overflow counts == the runtime's own
            metrics. Bound: exact (0). weft_load waits for SIGUSR1 before it
            creates its runtime, schedtop is attached by then, and the final
            BPF snapshot is taken after the process exited, so no event of
            the runtime's life is outside the window. (Attaching to a runtime
            already running would miss the probes in flight during attach and
            the runtime's published metrics lag by up to one maintenance
            interval, 61 ticks, per worker.)
  json      --batch --json: one valid JSON object per interval, non-zero
            steals on the thieves, matrix rows sum to steals_in; with
            `-- weft_load --wait` released after schedtop's first snapshot,
            the first interval counts the polls of the cores that started
            in it (it read polls/s 0 while their parks counted).
  trace     trace mode: trace-event JSON parses, every steal flow has its
            start and end, spans on one track do not overlap; JSON lines
            parse and agree with the flows. `-o` in a directory that does
            not exist fails at once, not after the duration. Then a trace
            of stall_target lockspare idle since before the attach (no
            worker fires an event): a track per core (tid and all), cores
            0 and 1 parked all along, and a summary row each (the trace
            had no worker at all).
  unpriv    without capabilities: exit 77 and the fix printed.
  trace_warmup
            `trace --warmup 5 -- weft_load 2 5`: the target exits during
            the warmup; schedtop says so, exits 1, leaves no file.
  nobpf     --no-bpf as an unprivileged user (nobody, via setpriv) against
            weft_load run as that user too: per-worker perf task-clock and
            /proc context switches in the JSON, the BPF columns listed as
            missing with the fix, exit 0. Then lint_target two (two
            runtimes, each with a weft-worker-0): one row per thread.
  bpftrace  the probes are standard USDT: bpftrace counts steals.
  longpoll  tests/bpf/stall_target spins 2 s in one poll: while it spins,
            schedtop's long-poll lint names the task, spin_poll with its
            file:line and the spawn call's file:line, within one interval
            (0.25 s) of the 100 ms threshold; a healthy weft_load under
            schedtop gets no long-poll lint in any interval, the first one
            after attaching included. Then the same with the task a fiber
            (stall_target 2.0 fiber): the lint names the fiber's own
            function, spin_fiber, not weft's fiber_poll. Then a fiber
            blocked 2 s in pthread_mutex_lock (stall_target 2.0 lock), a
            few frames below the top of its stack: blocking-call's stack
            names pthread_mutex_lock's caller, lock_fiber, at the line of
            the call (the stack copy failed at the top of the fiber's
            stack mapping and the stack was the futex wait alone). The
            same fiber with schedtop attached by pid to the runtime idle
            since before (stall_target 2.0 lock, and lockspare: 2 of 4
            cores retired, one handed to a spare): the rows show the
            threads holding the cores, and blocking-call fires (the BPF
            side knew no worker's thread: no probe had fired), and their
            states what the counters tell: parked, the retired cores
            stopped, the blocked worker running (all `unknown` before). And
            stall_target 2.0 lockexit, which exits with the fiber still
            blocked: the final report names its task and stack (it said
            "task at 0x..." and the futex wait alone, the target's
            memory gone).
  lints     real programs (tests/bpf/lint_target), each staging one
            problem or a healthy load, run under schedtop --batch --json
            from the first interval after attaching to the running load:
            each must draw exactly its lint set (see SCENARIOS).
  caps      the privilege model (docs/OBSERVABILITY.md, Privileges), as an
            administrator sets it up: a copy owned by a group, mode 0750, file
            capabilities cap_bpf,cap_perfmon,cap_sys_admin=p, used by nobody
            in that group. Attaching to nobody's own weft_load works and
            leaves schedtop with CapEff and CapPrm 0; attaching to root's
            process, or to nobody's own non-dumpable one, is refused with the
            reason and makes no bpf() or perf_event_open() call (strace); a
            command started with `--` runs as nobody with no capabilities; a
            set-user-ID copy is refused; a copy with only cap_bpf,cap_perfmon names CAP_SYS_ADMIN when the
            kernel refuses the uprobes (Linux 6.16+); a user outside the
            group cannot run the copy.

  pidns     schedtop inside a pid namespace (`unshare -p -f --mount-proc`),
            as `-- CMD` and as `-p PID` with the pid it sees there: every
            worker of tests/bpf/count_target shows on-CPU time, voluntary
            switches and park durations, and the workers futex waits (the tracepoints
            compared the namespaced pid with global ids, and all read 0).
            util-linux's unshare missing is a failure, not a skip.
  mntns_static
            count_target linked statically with weft, in a mount namespace
            where its path is not the host's (a FIFO there on the host):
            `-p PID` attaches to its own file and sees its polls.
  handoff_cpu
            count_target handoff 3: the thread that gave its core to a spare
            (weft_block_in_place) burns ~50 % of a CPU in fn for 3 s while
            the core is parked: in every interval of fn the core's row shows
            under 10 % CPU and under 50 voluntary switches, other_threads
            over 25 % (they stayed charged to the core: ~47 %, other 0).
  slow_attach
            schedtop -p attached 0.3 s after count_target started, before
            its 40 rounds of one task every 100 ms on 2 workers: schedtop's
            park total is within 2 per worker below the runtime's own count
            over the rounds (the first park of a core after the attach is
            its baseline), never above. Before, a core was counted only
            from its first maintenance probe, 61 polls in: 11 of 40. An
            interval with a core's parks shows its polls too.
  epoll_block
            count_target epollblock 4: a task blocking in its own
            epoll_wait draws blocking-call, and its worker is not parked;
            also under SCHEDTOP_FUTEX=tp (the syscall tracepoints).
  exec      count_target exec 1 weft_load 2 60: after the exec the old
            runtime's rows are stopped, the new runtime's latency is sampled
            (its registry found again) and its totals equal its own counts.
  uring_park
            count_target rounds 1 6 1 300 400 under WEFT_IO_DRIVER=uring: the
            worker parked in io_uring_enter reads parked, with park
            durations, in every interval after the first. The same with
            either driver under SCHEDTOP_FUTEX=tp (the syscall tracepoints).
  exec_window
            `schedtop -- stall_target 1.5` with its first read of the
            target's maps opened before the target's exec and read after
            it (tests/bpf/exec_window.c, LD_PRELOAD'ed into schedtop): the
            read is empty, as a read that falls in the exec is. The long
            poll is flagged and named all the same; schedtop kept the
            failed read for the whole run (no registry, no long-poll, no
            symbol: 1 run in 13 of `-- stall_target 1.0 lock`).
  long_park count_target rounds 1 1 1 5000 0: one worker parks 5 s, then
            runs one task. schedtop's park p99 in the interval it ends is
            at least 5 s and at most 2^33 ns (its log2 bucket's bound); it
            read 2^32 ns (4.3 s), the top bucket's, when the histograms
            stopped at 32 buckets.

Exit 0 pass, 1 fail, 77 skip (needs root or the capabilities of docs/OBSERVABILITY.md, Privileges). When the
environment variable CI is "true", a skip is a failure: CI runs as root.
"""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def skip(msg):
    if os.environ.get("CI") == "true":
        print("FAIL (skip not allowed in CI):", msg)
        sys.exit(1)
    print("SKIP:", msg)
    sys.exit(SKIP)


def read_line(proc, timeout):
    """One line from proc.stdout within timeout seconds, or None."""
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.time()))
        if r:
            line = proc.stdout.readline()
            return line if line else None
        if proc.poll() is not None:
            return None
    return None


def run_schedtop(args, timeout=30):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if p.returncode == SKIP:
        skip("schedtop exited 77: " + p.stderr.strip())
    return p


def start_load(load, *args):
    return subprocess.Popen([load, *args], stdout=subprocess.PIPE, text=True)


def json_until_final(st):
    """schedtop --batch --json's objects, up to its final one (or its end)."""
    while True:
        l = read_line(st, 10)
        if l is None:
            return
        o = json.loads(l)
        yield o
        if o["final"]:
            return


def kill_all(*procs):
    for p in procs:
        if p and p.poll() is None:
            p.kill()
            p.wait()


def attach_when_ready(schedtop, proc, name, interval, ready=None):
    """proc printed "ready PID" (tests/bpf/ready_wait.h; `ready`, when the
    caller read it): start schedtop --batch --json on it. Returns (pid,
    schedtop process, its first line); skips on 77, fails (killing proc)
    when it prints nothing."""
    if ready is None:
        ready = read_line(proc, 10)
    if not ready or not ready.startswith("ready "):
        proc.kill()
        fail("%s did not get ready: %r" % (name, ready))
    pid = int(ready.split()[1])
    st = subprocess.Popen([schedtop, "-p", str(pid), "--batch", "--json", interval],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = read_line(st, 10)
    if first is None:
        st.wait(5)
        proc.kill()
        if st.returncode == SKIP:
            skip("schedtop exited 77: " + st.stderr.read().strip())
        fail("schedtop printed nothing (rc %s): %s" % (st.returncode, st.stderr.read()))
    return pid, st, first


def test_counts(schedtop, load, lib):
    """schedtop's per-core totals equal the runtime's own metrics, with 2
    workers and with 8: more workers than CPUs start (and park) while
    weft_runtime_create still starts the others, the case where the first
    parks used to be lost (runtime_create fired after the workers)."""
    bad = []
    for workers, waves in (("2", "40"), ("8", "20")):
        bad += counts_once(schedtop, load, workers, waves)
    if bad:
        fail("; ".join(bad))
    print("PASS: BPF counts equal the runtime's metrics exactly")


def counts_once(schedtop, load, workers, waves):
    """One weft_load run watched from before its runtime exists: the
    mismatches, as messages."""
    wl = start_load(load, "--wait", workers, waves)
    pid, st, first = attach_when_ready(schedtop, wl, "weft_load", "0.2")
    os.kill(pid, signal.SIGUSR1)   # attached: let the runtime start
    out, _ = wl.communicate(timeout=25)
    if wl.returncode != 0:
        fail("weft_load exited %d" % wl.returncode)
    metrics = json.loads(out.strip().splitlines()[-1])
    try:
        rest, err = st.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        st.kill()
        fail("schedtop did not end when its target exited")
    if st.returncode != 0:
        fail("schedtop exited %d: %s" % (st.returncode, err))
    objs = [json.loads(l) for l in (first + rest).splitlines() if l.strip()]
    final = objs[-1]
    if not final["final"]:
        fail("last object is not final")
    bpf = final["worker"]
    if len(bpf) != metrics["workers"]:
        fail("schedtop saw %d workers, runtime has %d" % (len(bpf), metrics["workers"]))
    pairs = [("steal_operations", "steals_in"), ("steal_count", "tasks_stolen_in"),
             ("park_count", "parks"), ("overflow_count", "overflows"),
             ("noop_count", "noop_unparks"), ("steal_wait_rounds", "steal_waits")]
    bad = []
    for i, (rtw, bw) in enumerate(zip(metrics["worker"], bpf)):
        for rk, bk in pairs:
            print("%s workers: worker %d %-16s runtime %8d  bpf %8d"
                  % (workers, i, rk, rtw[rk], bw["total"][bk]))
            if rtw[rk] != bw["total"][bk]:
                bad.append("%s workers: worker %d %s: runtime %d != bpf %d"
                           % (workers, i, rk, rtw[rk], bw["total"][bk]))
    if sum(w["total"]["steals_in"] for w in bpf) != sum(w["total"]["steals_out"] for w in bpf):
        bad.append("%s workers: steals in != steals out" % workers)
    if sum(w["steal_operations"] for w in metrics["worker"]) == 0:
        bad.append("%s workers: workload produced no steal (test cannot fail usefully)" % workers)
    if sum(w["steal_wait_rounds"] for w in metrics["worker"]) == 0:
        bad.append("%s workers: workload produced no steal wait (test cannot fail usefully)"
                   % workers)
    return bad


def test_json(schedtop, load, lib):
    wl = start_load(load, "2", "150")
    time.sleep(0.3)
    try:
        p = run_schedtop([schedtop, "-p", str(wl.pid), "--batch", "--json", "-n", "3", "0.5"])
    finally:
        wl.kill()
        wl.wait()
    if p.returncode != 0:
        fail("schedtop exited %d: %s" % (p.returncode, p.stderr))
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    if len(lines) != 3:
        fail("expected 3 JSON objects, got %d" % len(lines))
    objs = [json.loads(l) for l in lines]
    total_steals = 0
    for o in objs:
        for k in ("schema", "workers", "polls_per_s", "steals_per_s", "worker", "lints",
                  "overhead", "steal_matrix", "final"):
            if k not in o:
                fail("key %s missing" % k)
        if o["workers"] != 2 or len(o["worker"]) != 2:
            fail("expected 2 workers: %s" % lines[0][:200])
        for i, w in enumerate(o["worker"]):
            if sum(o["steal_matrix"][i]) != w["steals_in"]:
                fail("matrix row %d != steals_in" % i)
        total_steals += sum(w["steals_in"] for w in o["worker"])
    if not objs[-1]["final"] or any(o["final"] for o in objs[:-1]):
        fail("only the last object must be final")
    thieves = [w["core"] for w in objs[-1]["worker"] if w["total"]["steals_in"] > 0]
    if total_steals == 0 or not thieves:
        fail("no steals seen on any thief")
    # park time and unpark latency come from sched_switch/sched_wakeup (no
    # park-path probe is attached outside `trace`): they must be measured
    parked = [w for o in objs for w in o["worker"] if w["parks"] > 0]
    if not parked:
        fail("the workload never parked a worker (test cannot fail usefully)")
    if not any(w["park_p99_ns"] > 0 for w in parked):
        fail("parks counted but no park time measured")
    if not any(w["unpark_p99_ns"] > 0 for w in parked):
        fail("parks counted but no unpark latency measured")
    first_interval_polls(schedtop, load)
    print("PASS: 3 JSON objects, %d steals, thieves %s" % (total_steals, thieves))


def first_interval_polls(schedtop, load):
    """`-- CMD` whose runtime starts after schedtop's first snapshot: its
    cores are first seen in the first interval and count their polls from
    0 (they read 0 polls/s while their parks counted)."""
    st = subprocess.Popen([schedtop, "--batch", "--json", "-n", "2", "0.5", "--",
                           load, "--wait", "2", "400"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    objs = []
    try:
        while True:
            l = read_line(st, 15)
            if l is None:
                break
            if l.startswith("ready "):
                time.sleep(0.1)  # after schedtop's first snapshot
                os.kill(int(l.split()[1]), signal.SIGUSR1)
            elif l.startswith("{"):
                objs.append(json.loads(l))
        st.wait(10)
    finally:
        if st.poll() is None:
            st.kill()
            st.wait()
    if st.returncode == SKIP:
        skip("schedtop exited 77")
    if len(objs) != 2:
        fail("-- weft_load --wait: %d objects: %s" % (len(objs), st.stderr.read()))
    o = objs[0]
    busy = [w for w in o["worker"] if w["parks"] or w["steals_in"] or w["steals_out"]]
    if not busy:
        fail("-- weft_load: no worker active in the first interval: %s" % o["worker"])
    if o["polls_per_s"] <= 0 or any(w["polls"] == 0 for w in busy):
        fail("-- weft_load: first interval polls/s %s while the workers parked/stole: %s"
             % (o["polls_per_s"], [(w["core"], w["polls"], w["parks"]) for w in o["worker"]]))


def test_trace(schedtop, load, lib):
    wl = start_load(load, "2", "150")
    time.sleep(0.3)
    d = tempfile.mkdtemp(prefix="schedtop-trace-")
    out = os.path.join(d, "run.json")
    try:
        p = run_schedtop([schedtop, "trace", "-p", str(wl.pid), "--duration", "1.5", "-o", out])
    finally:
        wl.kill()
        wl.wait()
    if p.returncode != 0:
        fail("schedtop trace exited %d: %s" % (p.returncode, p.stderr))
    with open(out) as f:
        tr = json.load(f)
    evs = tr["traceEvents"]
    starts = {e["id"]: e for e in evs if e.get("ph") == "s"}
    ends = {e["id"]: e for e in evs if e.get("ph") == "f"}
    if not starts:
        fail("no steal flow in the trace")
    if set(starts) != set(ends):
        fail("unmatched flows: %d starts, %d ends" % (len(starts), len(ends)))
    for i, s in starts.items():
        f_ = ends[i]
        if f_["ts"] < s["ts"] or s["tid"] == f_["tid"]:
            fail("bad flow %s" % i)
    spans = {}
    for e in evs:
        if e.get("ph") == "X":
            if e["dur"] < 0:
                fail("negative span")
            spans.setdefault(e["tid"], []).append((round(e["ts"] * 1000), round(e["dur"] * 1000), e["name"]))
    if len(spans) < 2:
        fail("expected spans on 2 worker tracks, got %d" % len(spans))
    for tid, ss in spans.items():
        ss.sort()
        for a, b in zip(ss, ss[1:]):
            if a[0] + a[1] > b[0]:
                fail("overlapping spans on track %s: %s %s" % (tid, a, b))
        if not {n for _, _, n in ss} <= {"running", "searching", "parked"}:
            fail("unknown span names")
    jl = [json.loads(l) for l in open(os.path.join(d, "run.jsonl")) if l.strip()]
    nsteal = sum(1 for e in jl if e["type"] == "steal")
    if nsteal != len(starts):
        fail("%d steal events in JSON lines, %d flows" % (nsteal, len(starts)))
    if "summary:" not in p.stdout or "park time" not in p.stdout:
        fail("summary missing: %s" % p.stdout)
    with open(os.path.join(d, "run.latency.json")) as f:
        lat = json.load(f)["latency"]
    if len(lat) != 1 or lat[0]["polls_timed"] <= 0 or lat[0]["poll_p50_ns"] <= 0 \
            or lat[0]["wake_p99_ns"] < lat[0]["wake_p50_ns"] or "task latency" not in p.stdout:
        fail("trace latency missing or implausible: %s %s" % (lat, p.stdout))
    shutil.rmtree(d)
    trace_bad_output(schedtop, load)
    trace_without_fds(schedtop, load)
    trace_idle(schedtop, load)
    print("PASS: %d events, %d flows, %d tracks" % (len(jl), len(starts), len(spans)))


def trace_idle(schedtop, load):
    """A runtime whose workers sleep in their parks since before the
    attach fires no event while it stays idle: the trace had no worker
    track and the summary no worker row, where the live view names every
    core the target's registry lists. Now the trace opens and closes with
    schedtop's worker_seen events."""
    target = os.path.join(os.path.dirname(load), "stall_target")
    tp = subprocess.Popen([target, "1.0", "lockspare"], stdout=subprocess.PIPE, text=True)
    d = tempfile.mkdtemp(prefix="schedtop-trace-idle-")
    out = os.path.join(d, "run.json")
    try:
        l = read_line(tp, 20) or ""
        if not l.startswith("tids "):
            fail("stall_target lockspare printed %r" % l)
        tids = [int(t) for t in l.split()[1:]]
        if not (tp.stdout.readline() or "").startswith("ready "):
            fail("stall_target lockspare did not get ready")
        p = run_schedtop([schedtop, "trace", "-p", str(tp.pid), "--duration", "1", "-o", out])
    finally:
        tp.kill()
        tp.wait()
    if p.returncode != 0:
        fail("schedtop trace of an idle runtime exited %d: %s" % (p.returncode, p.stderr))
    with open(out) as f:
        evs = json.load(f)["traceEvents"]
    shutil.rmtree(d)
    names = sorted(e["args"]["name"] for e in evs
                   if e.get("name") == "thread_name" and e["tid"] != 0)
    want = ["worker 0 (tid %d)" % tids[0], "worker 1 (tid %d)" % tids[1],
            "worker 2 (tid 0)", "worker 3 (tid 0)"]
    print("idle trace: tracks %s" % names)
    if names != want:
        fail("trace of a runtime idle since before the attach: tracks %s, not %s"
             % (names, want))
    parked = {e["tid"]: e["dur"] for e in evs if e.get("ph") == "X" and e["name"] == "parked"}
    if sorted(parked) != [1, 2] or min(parked.values()) < 0.9e6:
        fail("trace of the idle runtime: parked spans %s, not cores 0 and 1 all along (1 s)"
             % parked)
    rows = [l.split()[0] for l in p.stdout.splitlines() if re.match(r"w\d+ ", l)]
    if rows != ["w0", "w1", "w2", "w3"]:
        fail("trace summary of the idle runtime: rows %s, not w0-w3: %s" % (rows, p.stdout))
    print("PASS: a trace of an idle runtime names its 4 cores")


def trace_without_fds(schedtop, load):
    """schedtop out of file descriptors for a while (its soft RLIMIT_NOFILE
    lowered under the fds it has open) goes on tracing: the check of the
    target's exit opens /proc/PID/stat, and a failed open read as an exit
    ended the trace ("exited during the trace") at the first check."""
    import resource
    wl = start_load(load, "2", "100000")
    d = tempfile.mkdtemp(prefix="schedtop-trace-nofd-")
    st = None
    try:
        time.sleep(0.2)
        st = subprocess.Popen([schedtop, "trace", "-p", str(wl.pid), "--duration", "2.5", "-o",
                               os.path.join(d, "t.json")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err = ""
        end = time.time() + 10
        while time.time() < end and st.poll() is None and "tracing pid" not in err:
            err += os.read(st.stderr.fileno(), 4096).decode()
        if st.poll() is not None:
            if st.returncode == SKIP:
                skip("schedtop exited 77: " + err + st.stderr.read())
            fail("schedtop trace exited %d: %s" % (st.returncode, err + st.stderr.read()))
        soft, hard = resource.prlimit(st.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(st.pid, resource.RLIMIT_NOFILE, (3, hard))
        time.sleep(0.8)
        resource.prlimit(st.pid, resource.RLIMIT_NOFILE, (soft, hard))
        out, err2 = st.communicate(timeout=30)
    finally:
        kill_all(wl, st)
        shutil.rmtree(d, ignore_errors=True)
    if st.returncode != 0:
        fail("schedtop trace without fds for 0.8 s exited %d: %s" % (st.returncode, err + err2))
    if "exited during the trace" in out:
        fail("schedtop out of fds took the target for gone: %s" % out)


def trace_bad_output(schedtop, load):
    """An output path that cannot be written fails before the recording
    (it failed after the whole --duration, the trace lost)."""
    wl = start_load(load, "2", "100000")
    try:
        time.sleep(0.2)
        t0 = time.time()
        p = run_schedtop([schedtop, "trace", "-p", str(wl.pid), "-d", "20", "-o",
                          "/nonexistent-dir/t.json"])
        took = time.time() - t0
    finally:
        wl.kill()
        wl.wait()
    if p.returncode != 1 or "/nonexistent-dir/t.json" not in p.stderr or took > 5:
        fail("trace -o /nonexistent-dir/t.json -d 20: rc %d after %.1f s: %s"
             % (p.returncode, took, p.stderr))
    print("unwritable -o: refused after %.1f s, before recording" % took)


def trace_late_target(schedtop, load, args):
    """Runs late_rt_target ARGS under `schedtop trace -p PID -d 2.5`, its
    runtimes created 0.3 s into the trace: (the target's "tasks N" lines,
    schedtop's stdout, FILE.latency.json's entries)."""
    target = os.path.join(os.path.dirname(load), "late_rt_target")
    tp = subprocess.Popen([target] + args, stdout=subprocess.PIPE, text=True)
    d = tempfile.mkdtemp(prefix="schedtop-late-rt-")
    st = None
    try:
        ready = read_line(tp, 10)
        if not ready or not ready.startswith("ready "):
            fail("late_rt_target did not get ready: %r" % ready)
        pid = int(ready.split()[1])
        out = os.path.join(d, "t.json")
        st = subprocess.Popen([schedtop, "trace", "-p", str(pid), "--duration", "2.5", "-o", out],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        end = time.time() + 10
        err = ""
        while time.time() < end and st.poll() is None:
            err += os.read(st.stderr.fileno(), 4096).decode()
            if "tracing pid" in err:
                break
        if st.poll() is not None:
            if st.returncode == SKIP:
                skip("schedtop exited 77: " + err + st.stderr.read())
            fail("schedtop trace exited %d: %s" % (st.returncode, err + st.stderr.read()))
        time.sleep(0.3)
        os.kill(pid, signal.SIGUSR1)   # the runtime is created now
        tasks = [read_line(tp, 10) or "" for _ in range(2 if "recreate" in args else 1)]
        out_text, _ = st.communicate(timeout=20)
        if st.returncode:
            fail("schedtop trace exited %d" % st.returncode)
        with open(os.path.join(d, "t.latency.json")) as f:
            lat = json.load(f)["latency"]
    finally:
        kill_all(tp, st)
        shutil.rmtree(d, ignore_errors=True)
    print("".join(tasks).strip())
    print("\n".join(l for l in out_text.splitlines() if "latency" in l or "runtime 0x" in l))
    print("latency.json: %s" % lat)
    for t in tasks:
        if not t.startswith("tasks ") or int(t.split()[1]) < 1000:
            fail("late_rt_target printed %r" % tasks)
    return [int(t.split()[1]) for t in tasks], out_text, lat


def test_trace_late_rt(schedtop, load, lib):
    """`schedtop trace -p PID` on a process whose runtime is created after
    the trace began: the task latency covers its polls (the runtime's
    histograms count from its creation, all of it inside the trace). Its
    first read was taken as the baseline: "0 polls, 0 wakes timed", p50 0 ns,
    in the summary and in .latency.json."""
    _, _, lat = trace_late_target(schedtop, load, ["1.0"])
    if len(lat) != 1 or lat[0]["polls_timed"] == 0 or lat[0]["poll_p50_ns"] == 0:
        fail("the runtime created during the trace has no polls timed: %s" % lat)
    print("PASS: a runtime created during the trace is timed")


def test_trace_ended_rt(schedtop, load, lib):
    """A runtime destroyed during `schedtop trace` (late_rt_target
    recreate: one runtime runs tasks 0.8 s and is destroyed, a second one
    runs 0.8 s and stays): its latency is still reported, marked ended,
    with what it counted up to schedtop's last read of it - schedtop
    dropped a runtime that went away, histograms and all (the summary had
    no line for it, a flake of schedtop_trace_late_rt while its target
    destroyed its runtime at the end). Often the second runtime takes the
    first's address and registry slot; then the first's counts must not
    be taken as the second's baseline either."""
    tasks, out_text, lat = trace_late_target(schedtop, load, ["0.8", "recreate"])
    ended = [l for l in lat if l.get("ended")]
    live = [l for l in lat if not l.get("ended")]
    if len(ended) != 1 or len(live) != 1 or ended[0]["ended"] != 1:
        fail("expected one ended runtime and one live one: %s" % lat)
    # one task is one poll, 1 in 256 timed; the ended one's last ~100 ms
    # after schedtop's last read are lost, so half is a loose bound
    for name, l, n in (("ended", ended[0], tasks[0]), ("live", live[0], tasks[1])):
        want = n / 256 / 2
        if l["polls_timed"] < want or l["poll_p50_ns"] == 0:
            fail("the %s runtime: %d polls timed, want >= %d of its %d tasks: %s"
                 % (name, l["polls_timed"], want, n, lat))
    if "(ended during the trace)" not in out_text:
        fail("the summary does not say which runtime ended: %s" % out_text)
    print("PASS: a runtime destroyed during the trace is reported, marked ended")


def test_trace_warmup(schedtop, load, lib):
    """A target that exits during --warmup: nothing was traced, and
    schedtop says so and exits 1 (it wrote 0 events and exited 0)."""
    d = tempfile.mkdtemp(prefix="schedtop-warm-")
    out = os.path.join(d, "t.json")
    try:
        p = run_schedtop([schedtop, "trace", "--warmup", "5", "-d", "1", "-o", out, "--",
                          load, "2", "5"], timeout=30)
        left = sorted(os.listdir(d))
    finally:
        shutil.rmtree(d)
    if p.returncode != 1 or "exited during the warmup" not in p.stderr:
        fail("target exited during the warmup: rc %d: %s" % (p.returncode, p.stderr))
    if left:
        fail("files left from a trace that recorded nothing: %s" % left)
    print("PASS: exit during the warmup: rc 1, %s" % p.stderr.strip().splitlines()[-1])


def test_unpriv(schedtop, load, lib):
    if os.geteuid() != 0:
        # Already unprivileged: schedtop must say so by itself.
        p = subprocess.run([schedtop, "-p", str(os.getpid()), "--batch", "-n", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
    else:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            skip("setpriv (util-linux) not found")
        # A copy anyone can execute, whatever the build tree's permissions.
        d = tempfile.mkdtemp(prefix="schedtop-unpriv-")
        os.chmod(d, 0o755)
        exe = os.path.join(d, "schedtop")
        shutil.copy(schedtop, exe)
        os.chmod(exe, 0o755)
        p = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=-all", "--bounding-set=-all", exe, "-p",
                            str(os.getpid()), "--batch", "-n", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
        shutil.rmtree(d)
    if p.returncode != SKIP:
        fail("expected exit 77 without capabilities, got %d: %s" % (p.returncode, p.stderr))
    for want in ("CAP_BPF", "CAP_PERFMON", "fix", "setcap"):
        if want not in p.stderr:
            fail("message lacks %r: %s" % (want, p.stderr))
    print("PASS: exit 77 with:\n" + p.stderr)


def unpriv_copies(d, schedtop, load, lib):
    """schedtop, weft_load and libweft (under the soname weft_load needs)
    copied where anyone may execute them, whatever the build tree's
    permissions. Returns the paths of schedtop and weft_load."""
    os.chmod(d, 0o755)
    out = {}
    for name, src in (("schedtop", schedtop), ("weft_load", load)):
        out[name] = os.path.join(d, name)
        shutil.copy(src, out[name])
        os.chmod(out[name], 0o755)
    ldd = subprocess.run(["ldd", load], stdout=subprocess.PIPE, text=True).stdout
    for l in ldd.splitlines():
        parts = l.split()
        if parts and parts[0].startswith("libweft"):
            shutil.copy(lib, os.path.join(d, parts[0]))
            os.chmod(os.path.join(d, parts[0]), 0o755)
    return out["schedtop"], out["weft_load"]


def test_nobpf(schedtop, load, lib):
    orig = (schedtop, load)   # before the copies for nobody
    d = None
    env = dict(os.environ)
    if os.geteuid() != 0:
        prefix = []
    else:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            skip("setpriv (util-linux) not found")
        d = tempfile.mkdtemp(prefix="schedtop-nobpf-")
        schedtop, load = unpriv_copies(d, schedtop, load, lib)
        env["LD_LIBRARY_PATH"] = d
        # nobody, no capabilities: perf_event_open on its own process only
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all"]
    wl = subprocess.Popen(prefix + [load, "2", "120"], stdout=subprocess.DEVNULL, env=env)
    try:
        time.sleep(0.3)
        p = subprocess.run(prefix + [schedtop, "-p", str(wl.pid), "--no-bpf", "--batch",
                                     "--json", "-n", "3", "0.4"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
    finally:
        wl.kill()
        wl.wait()
        if d:
            shutil.rmtree(d)
    if p.returncode != 0:
        fail("schedtop --no-bpf exited %d: %s" % (p.returncode, p.stderr))
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    if len(objs) != 3:
        fail("expected 3 JSON objects, got %d: %s" % (len(objs), p.stdout[:300]))
    for o in objs:
        if o["schema"] != "schedtop-nobpf/1" or o["bpf"] is not False:
            fail("not a no-BPF object: %s" % str(o)[:200])
        if o["workers"] != 2 or len(o["worker"]) != 2:
            fail("expected 2 workers: %s" % str(o)[:300])
        for k in ("steals_in", "parks", "polls_per_s", "local_depth", "lints"):
            if k not in o["missing"]:
                fail("%s not listed as missing: %s" % (k, o["missing"]))
        for want in ("BPF", "cap_bpf", "cap_perfmon"):
            if want not in o["missing_why"]:
                fail("missing_why lacks %r: %s" % (want, o["missing_why"]))
        if not o["perf"]["ok"]:
            fail("perf_event_open failed on the user's own process: %s" % o["perf"]["error"])
        for w in o["worker"]:
            for k in ("task_clock_ns", "context_switches", "cpu_migrations", "vol_cs",
                      "invol_cs", "cpu_pct", "kstate"):
                if k not in w:
                    fail("worker key %s missing: %s" % (k, w))
            if not w["comm"].startswith("weft-worker-"):
                fail("not a worker thread: %s" % w["comm"])
    final = objs[-1]
    if not final["final"] or any(o["final"] for o in objs[:-1]):
        fail("only the last object must be final")
    clk = [w["total"]["task_clock_ns"] for w in final["worker"]]
    cs = [w["total"]["vol_cs"] + w["total"]["invol_cs"] + w["total"]["context_switches"]
          for w in final["worker"]]
    if not all(c > 0 for c in clk):
        fail("a worker has no task-clock time: %s" % clk)
    if not all(c > 0 for c in cs):
        fail("a worker has no context switch: %s" % cs)
    nobpf_two_runtimes(*orig)
    print("PASS: --no-bpf as uid %s: task-clock ns %s, context switches %s, perf user-only %s"
          % ("65534" if prefix else os.geteuid(), clk, cs, final["perf"]["user_mode_only"]))


def nobpf_two_runtimes(schedtop, load):
    """Two runtimes (2 and 1 workers: two threads named weft-worker-0):
    one row per thread, keyed by tid. Keyed by the name's number they took
    turns in one row, its totals reset at each turn, one never shown."""
    target = os.path.join(os.path.dirname(load), "lint_target")
    tp = subprocess.Popen([target, "two", "20", "2"], stdout=subprocess.PIPE, text=True)
    try:
        ready = read_line(tp, 10)
        if not ready or not ready.startswith("ready "):
            fail("lint_target two did not get ready: %r" % ready)
        p = run_schedtop([schedtop, "-p", ready.split()[1], "--no-bpf", "--batch", "--json",
                          "-n", "4", "0.25"], timeout=30)
    finally:
        tp.kill()
        tp.wait()
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or len(objs) != 4:
        fail("--no-bpf on two runtimes: rc %d, %d objects: %s" % (p.returncode, len(objs),
                                                                 p.stderr))
    last = {}
    for o in objs:
        rows = [(w["core"], w["tid"]) for w in o["worker"]]
        tids = [t for _, t in rows]
        if len(set(tids)) != len(tids) or len(rows) != 3 or o["workers"] != 3:
            fail("--no-bpf two runtimes: rows %s (want 3, one per thread)" % rows)
        if sorted(c for c, _ in rows) != [0, 0, 1]:
            fail("--no-bpf two runtimes: worker numbers %s, want 0 0 1" % rows)
        for w in o["worker"]:
            tot = w["total"]["task_clock_ns"]
            if tot < last.get(w["tid"], 0):
                fail("thread %d: total task-clock went from %d to %d"
                     % (w["tid"], last[w["tid"]], tot))
            last[w["tid"]] = tot
    print("--no-bpf, two runtimes: 3 rows by tid %s" % sorted(last))


def lints_of(obj, name):
    return [l["detail"] for l in obj["lints"] if l["name"] == name]


def test_longpoll_swap(schedtop, load, lib):
    """A plugin host unloads plugin A (loaded when schedtop attached) and
    loads plugin B at A's addresses, then stalls in B's function: the lint
    names B's function and line. schedtop kept the maps it read at the
    attach and named A's function, of a library no longer loaded."""
    d = os.path.dirname(load)
    host = os.path.join(d, "swap_host")
    pa, pb = (os.path.join(d, "libswap_plug_%s.so" % x) for x in "ab")
    tp = subprocess.Popen([host, pa, pb, "1.5"], stdout=subprocess.PIPE, text=True)
    st = None
    try:
        pid, st, first = attach_when_ready(schedtop, tp, "swap_host", "0.25")
        os.kill(pid, signal.SIGUSR1)
        addrs = (read_line(tp, 10) or "").split()
        if len(addrs) != 4 or addrs[0] != "a":
            fail("swap_host printed %r" % addrs)
        flagged = []
        for o in json_until_final(st):
            flagged += lints_of(o, "long-poll")
        st.wait(10)
    finally:
        kill_all(tp, st)
    if addrs[1] != addrs[3]:
        skip("plugin B was not loaded at plugin A's address (%s vs %s)" % (addrs[1], addrs[3]))
    if not flagged:
        fail("a 1.5 s poll was never flagged")
    print("long-poll: %s" % flagged[0])
    # (the last interval may come after the target exited: no symbols)
    for d in flagged:
        if "a_first_plugin_fn" in d:
            fail("long-poll names the unloaded plugin's function: %s" % d)
    if "b_second_plugin_fn" not in flagged[0] or "swap_plugin.c:" not in flagged[0]:
        fail("long-poll does not name B's function: %s" % flagged[0])
    print("PASS: the poll function named from the library mapped now")


def test_longpoll_exec(schedtop, load, lib):
    """schedtop -p PID on a weft program that execs another weft program
    (stall_target, same pid): the new program's long poll is flagged and
    named. schedtop kept the probe registry's address of the first program
    and read nothing from the second: no long-poll at all. Then a poll that
    execs a program without weft (stall_target 0.6 exec): not reported
    after the exec (it was, "still running", as long as the new program
    ran)."""
    d = os.path.dirname(load)
    tp = subprocess.Popen([os.path.join(d, "exec_target"), os.path.join(d, "stall_target"),
                           "1.5"], stdout=subprocess.PIPE, text=True)
    st = None
    try:
        pid, st, first = attach_when_ready(schedtop, tp, "exec_target", "0.25")
        os.kill(pid, signal.SIGUSR1)
        again = read_line(tp, 10) or ""
        if again.split() != ["ready", str(pid)]:
            fail("stall_target after the exec printed %r" % again)
        time.sleep(0.3)
        os.kill(pid, signal.SIGUSR1)
        spawn = read_line(tp, 10) or ""
        if not spawn.startswith("spawn_line "):
            fail("stall_target printed %r" % spawn)
        flagged = []
        for o in json_until_final(st):
            flagged += lints_of(o, "long-poll")
        st.wait(10)
    finally:
        kill_all(tp, st)
    if not flagged:
        fail("a 1.5 s poll of the program exec'd was never flagged")
    print("long-poll: %s" % flagged[0])
    if "spin_poll" not in flagged[0] or "stall_target.c:%s" % spawn.split()[1] not in flagged[0]:
        fail("long-poll does not name spin_poll and its spawn line: %s" % flagged[0])
    print("PASS: the long poll of the program exec'd is named")
    longpoll_exec_away(schedtop, load)


def longpoll_exec_away(schedtop, load):
    # The other way: a poll spins 0.6 s, then execs `sleep 3` from inside
    # the poll. The process runs on without weft: its registry is gone
    # and the poll with it. schedtop reported it "still running" for as
    # long as sleep ran, 3.5 s and counting, until the end.
    target = os.path.join(os.path.dirname(load), "stall_target")
    st = subprocess.Popen([schedtop, "--batch", "--json", "0.25", "--", target, "0.6", "exec"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    flagged, spun, objs = [], False, 0
    try:
        while True:
            l = read_line(st, 10)
            if l is None:
                break
            if l.startswith("ready "):
                pid = int(l.split()[1])
                in_sigwait(pid)
                os.kill(pid, signal.SIGUSR1)
                continue
            if l.startswith("spawn_line "):
                spun = True
                continue
            o = json.loads(l)
            objs += 1
            flagged += lints_of(o, "long-poll")
            if o["final"]:
                break
        st.wait(10)
    finally:
        kill_all(st)
    if st.returncode == SKIP:
        skip("schedtop exited 77: " + st.stderr.read().strip())
    if not spun or st.returncode != 0:
        fail("stall_target 0.6 exec: rc %s, spun %s: %s" % (st.returncode, spun,
                                                              st.stderr.read()))
    if not flagged:
        fail("the 0.6 s poll before the exec was never flagged")
    ages = [float(re.search(r"in one poll for ([0-9.]+) s", d).group(1)) for d in flagged]
    print("exec away: %d intervals, long-poll ages %s" % (objs, ages))
    # 0.6 s of spin; the exec'd sleep runs 3 s more
    if max(ages) > 1.6:
        fail("a poll of the program exec'd away reported for %.2f s: %s" %
             (max(ages), flagged[-1]))
    print("PASS: a poll exec'd away is not reported after the exec")


def test_longpoll(schedtop, load, lib):
    # a poll task (spin_poll), then a fiber (spin_fiber), whose task's poll
    # function is weft's fiber_poll: named before as fiber_poll (fiber.c)
    longpoll_once(schedtop, load, "spin_poll", [])
    longpoll_once(schedtop, load, "fiber spin_fiber", ["fiber"])
    blocking_fiber(schedtop, load)
    blocking_fiber(schedtop, load, "lockexit")
    blocking_idle(schedtop, load, "lock")
    blocking_idle(schedtop, load, "lockspare")
    longpoll_healthy(schedtop, load)


def in_sigwait(pid, secs=10):
    """Wait until pid's main thread sleeps in sigwait (ready_wait.h)."""
    end = time.time() + secs
    while time.time() < end:
        try:
            with open("/proc/%d/task/%d/wchan" % (pid, pid)) as f:
                if "sigtimedwait" in f.read():
                    return
        except OSError:
            return
        time.sleep(0.01)


def blocking_fiber(schedtop, load, mode="lock"):
    # A fiber's stack ends where the next stack's guard begins: the BPF
    # side copied 2 KiB from sp, else 256 bytes, else nothing, so a call
    # made a few frames below the top came with no frame of the task's
    # code ("stack: __GI___lll_lock_wait+0x2b (futex-internal.h:146)").
    # Started under schedtop (-- CMD); blocking_idle attaches by pid.
    # `lockexit`: the process exits with the fiber still blocked, so the
    # final report (the target gone, and its memory) has the call too:
    # it named it "task at 0x55..." with the futex wait alone, where every
    # interval before had named the fiber and its stack.
    target = os.path.join(os.path.dirname(load), "stall_target")
    st = subprocess.Popen([schedtop, "--batch", "--json", "0.25", "--", target, "2.0", mode],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    calls, finals, lock_line, end = [], [], None, None  # finals: the last report's
    try:
        while True:
            l = read_line(st, 10)
            if l is None:
                break
            if l.startswith("ready "):
                # once its main thread waits for it: sent sooner, a worker
                # thread (which does not block it) takes it and dies
                pid = int(l.split()[1])
                in_sigwait(pid)
                os.kill(pid, signal.SIGUSR1)
                continue
            if l.startswith("spawn_line "):
                f = l.split()
                if len(f) != 6 or f[4] != "lock_line":
                    fail("stall_target lock printed %r" % l)
                lock_line = int(f[5])
                continue
            if l.startswith("tids "):
                continue
            o = json.loads(l)
            calls += lints_of(o, "blocking-call")
            if o["final"]:
                finals = lints_of(o, "blocking-call")
                end = o.get("end")
                break
        st.wait(10)
    finally:
        kill_all(st)
    if st.returncode == SKIP:
        skip("schedtop exited 77: " + st.stderr.read().strip())
    if mode == "lockexit":
        # the call returns as the process dies: reported in the final
        # interval (or, when an interval ended between the two, in the one
        # before it, the target's memory already gone too)
        done = [d for d in calls if "(returned)" in d]
        if end != "target-exited" or not done:
            fail("lockexit: no report (end %r) of the call that ended with the process: %s"
                 % (end, finals))
        for d in done:
            stack = d.split("; stack: ", 1)[-1]
            if ("fiber lock_fiber" not in d or "lock_fiber+" not in stack or
                    "stall_target.c:%d" % lock_line not in stack):
                fail("lockexit: the report after the target exited does not name the task "
                     "and its stack as the intervals before did: %s" % d)
        print("PASS: lockexit: the final report names the call: %s" % done[-1])
    if lock_line is None:
        fail("stall_target lock never blocked (schedtop rc %s): %s" %
             (st.returncode, st.stderr.read()))
    if not calls:
        fail("a fiber blocked 2 s in pthread_mutex_lock drew no blocking-call")
    print("blocking-call: %s" % calls[0])
    want, site = "lock_fiber+", "stall_target.c:%d" % lock_line
    # while it blocks: once the target has exited (the final report), its
    # memory, where the task and the call instructions are read, is gone
    calls = [d for d in calls if "(still blocked)" in d]
    if not calls:
        fail("no blocking-call while the fiber was still blocked")
    for d in calls:
        if "futex()" not in d or "fiber lock_fiber" not in d:
            fail("blocking-call does not name the futex wait and the fiber: %s" % d)
        stack = d.split("; stack: ", 1)[-1]
        if want not in stack or site not in stack:
            fail("blocking-call's stack lacks the fiber's call (%s, %s): %s" % (want, site, d))
    print("PASS: a fiber blocked on a mutex: its call named in %d intervals" % len(calls))


def blocking_idle(schedtop, load, mode):
    # schedtop -p attached to a runtime whose workers all sleep in their
    # parks since before the attach: the BPF side knew a core's thread
    # only from a probe of it (worker_start, maintenance), and a worker
    # woken by the spawn that blocked in its task at once fired none, so
    # blocking-call never fired and the rows had no thread (tid 0). Now
    # schedtop reads each core's thread from the target's memory (the
    # counters' holder_tid). `lockspare`: 4 cores, one handed to a spare
    # and back, two retired (their threads spares now) before the attach.
    # Their states, which no probe told either, read `unknown` for good:
    # now what the counters tell (parker word, cur_task, holder_tid):
    # parked after the attach, the retired cores stopped, the blocked
    # worker running (in a poll) while it blocks.
    target = os.path.join(os.path.dirname(load), "stall_target")
    tp = subprocess.Popen([target, "2.0", mode], stdout=subprocess.PIPE, text=True)
    st = None
    calls, rows, states, blocked = [], [], [], []
    try:
        l = read_line(tp, 20) or ""
        if not l.startswith("tids "):
            fail("stall_target %s printed %r" % (mode, l))
        tids = [int(t) for t in l.split()[1:]]
        # "ready" comes right after: perhaps read into tp.stdout's buffer
        # with "tids" already, where read_line's select does not see it
        pid, st, first = attach_when_ready(schedtop, tp, "stall_target", "0.25",
                                           tp.stdout.readline())
        o = json.loads(first)
        rows = sorted((w["core"], w["tid"]) for w in o["worker"])
        states = sorted((w["core"], w["state"]) for w in o["worker"])
        in_sigwait(pid)
        os.kill(pid, signal.SIGUSR1)
        l = read_line(tp, 10) or ""
        if not l.startswith("spawn_line "):
            fail("stall_target %s printed %r" % (mode, l))
        for o in json_until_final(st):
            now = [d for d in lints_of(o, "blocking-call") if "(still blocked)" in d]
            calls += now
            for d in now:
                m = re.match(r"W(\d+) blocked", d)
                if m:
                    blocked += [w["state"] for w in o["worker"] if w["core"] == int(m.group(1))]
        st.wait(10)
    finally:
        kill_all(tp, st)
    print("%s: threads %s, schedtop's rows after the attach (core, tid) %s"
          % (mode, tids, rows))
    want = [(0, tids[0]), (1, tids[1])]
    if [r for r in rows if r[0] < 2] != want:
        fail("%s: the rows of cores 0 and 1 after the attach are %s, not the threads "
             "that hold them %s" % (mode, rows, want))
    if any(t for c, t in rows if c >= 2):
        fail("%s: a retired core has a thread: %s" % (mode, rows))
    want = [(c, "parked" if c < 2 else "stopped") for c, _ in states]
    if states != want:
        fail("%s: the states after the attach (core, state) are %s, not %s" % (mode, states, want))
    if not blocked or any(x != "running" for x in blocked):
        fail("%s: the worker blocked in a poll reads %s, not running" % (mode, blocked))
    if not calls:
        fail("%s: a fiber blocked 2 s in pthread_mutex_lock on a runtime idle since "
             "before the attach drew no blocking-call" % mode)
    if not all("futex()" in d and "fiber lock_fiber" in d for d in calls):
        fail("%s: blocking-call does not name the futex wait and the fiber: %s"
             % (mode, calls))
    print("PASS: %s: blocked after an idle attach, named in %d intervals: %s"
          % (mode, len(calls), calls[0]))


def longpoll_once(schedtop, load, fn_name, extra):
    target = os.path.join(os.path.dirname(load), "stall_target")
    tp = subprocess.Popen([target, "2.0", *extra], stdout=subprocess.PIPE, text=True)
    st = None
    try:
        pid, st, first = attach_when_ready(schedtop, tp, "stall_target", "0.25")
        if lints_of(json.loads(first), "long-poll"):
            fail("long-poll before the spin: %s" % first)
        os.kill(pid, signal.SIGUSR1)
        t0 = time.time()
        lines = read_line(tp, 10) or ""
        if not lines.startswith("spawn_line "):
            fail("stall_target printed %r" % lines)
        f = lines.split()
        spawn_line, fn_line = int(f[1]), int(f[3])
        flagged = []   # (seconds after the spin started, detail)
        for o in json_until_final(st):
            for d in lints_of(o, "long-poll"):
                flagged.append((time.time() - t0, d))
        st.wait(10)
    finally:
        kill_all(tp, st)
    if not flagged:
        fail("a 2 s poll was never flagged")
    when, detail = flagged[0]
    print("first long-poll %.2f s after the spin began: %s" % (when, detail))
    if "fiber_poll" in detail:
        fail("long-poll names weft's fiber_poll, not the fiber's function: %s" % detail)
    for want in ("in one poll for", "(still running)", fn_name,
                 "stall_target.c:%d" % spawn_line, "spawned at main"):
        if want not in detail:
            fail("long-poll detail lacks %r: %s" % (want, detail))
    if not any("stall_target.c:%d" % l in detail.split("spawned at")[0]
               for l in (fn_line, fn_line + 1)):
        fail("poll function not at stall_target.c:%d: %s" % (fn_line, detail))
    # 100 ms threshold + one 0.25 s interval + a sample period and slack
    if when > 0.1 + 0.25 + 0.25:
        fail("flagged %.2f s after the spin began: later than one interval past 100 ms" % when)
    if len(flagged) < 4:
        fail("flagged in %d intervals of a 2 s spin" % len(flagged))
    print("%s: long poll named in %d intervals" % (fn_name, len(flagged)))


def longpoll_healthy(schedtop, load):
    # Healthy: many short polls, no long-poll lint, first interval included.
    wl = start_load(load, "2", "100")
    try:
        time.sleep(0.2)
        p = run_schedtop([schedtop, "-p", str(wl.pid), "--batch", "--json", "-n", "6", "0.25"])
    finally:
        wl.kill()
        wl.wait()
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    if len(objs) != 6:
        fail("healthy run: %d objects: %s" % (len(objs), p.stderr))
    bad = [d for o in objs for d in lints_of(o, "long-poll")]
    if bad:
        fail("long-poll on a healthy load: %s" % bad)
    stalls = [l.get("stalls") for o in objs for l in o["latency"]]
    if any(s for s in stalls):
        fail("stalls counted on a healthy load: %s" % stalls)
    if not any(s == 0 for s in stalls):
        fail("no stall count read on a healthy load (the library keeps one): %s" % stalls)
    print("PASS: long polls named (poll task and fiber); healthy load: none in 6, no stall")


def test_stalls(schedtop, load, lib):
    """Polls over the runtime's stall threshold (10 ms) but under the
    long-poll lint's 100 ms: stall_target shortstalls runs a fiber of 30 ms
    polls for 2 s. schedtop shows the runtime's stall count per interval
    and names the latest stall: the fiber's own function and line, its
    spawn site (they showed nothing at all before: found by a review)."""
    target = os.path.join(os.path.dirname(load), "stall_target")
    tp = subprocess.Popen([target, "2.0", "shortstalls"], stdout=subprocess.PIPE, text=True)
    st = None
    objs = []
    try:
        pid, st, first = attach_when_ready(schedtop, tp, "stall_target", "0.25")
        os.kill(pid, signal.SIGUSR1)
        l0 = read_line(tp, 10) or ""
        if not l0.startswith("spawn_line "):
            fail("stall_target printed %r" % l0)
        f = l0.split()
        spawn_line, fn_line = int(f[1]), int(f[3])
        objs = list(json_until_final(st))
        st.wait(10)
    finally:
        kill_all(tp, st)
    counts = [l.get("stalls") for o in objs for l in o["latency"]]
    named = [l["last_stall"] for o in objs for l in o["latency"] if l.get("last_stall")]
    print("stalls per interval:", counts)
    print("latest:", named[:1])
    if sum(c or 0 for c in counts) < 10:
        fail("2 s of 30 ms polls counted as %s stalls" % counts)
    if not named:
        fail("no stall named")
    d = named[-1]
    if "short_stall_fiber" not in d or "fiber_poll" in d:
        fail("the stall does not name the fiber's function: %s" % d)
    if not any("stall_target.c:%d" % n in d.split("spawned at")[0] for n in (fn_line, fn_line + 1)):
        fail("the stall's function not at stall_target.c:%d: %s" % (fn_line, d))
    site = d.split("spawned at")[-1]
    if not site.startswith(" main") or "stall_target.c:%d)" % spawn_line not in site:
        fail("the stall's spawn site is not stall_target.c:%d: %s" % (spawn_line, d))
    lp = [x for o in objs for x in lints_of(o, "long-poll")]
    if lp:
        fail("long-poll drawn by 30 ms polls: %s" % lp)
    stalls_live(schedtop, target)
    print("PASS: stalls counted and the latest named, in the live view too")


def stalls_live(schedtop, target):
    """The live view at 80x24 shows them on its lint line."""
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    tp = subprocess.Popen([target, "6.0", "shortstalls"], stdout=subprocess.PIPE, text=True)
    T = [tmux, "-L", "schedtop-stalls-%d" % os.getpid()]
    screen = ""
    try:
        ready = read_line(tp, 10) or ""
        if not ready.startswith("ready "):
            fail("stall_target: %r" % ready)
        pid = ready.split()[1]
        subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", "80", "-y", "24",
                            "%s -p %s 0.5; sleep 30" % (schedtop, pid)], check=True)
        time.sleep(0.5)
        os.kill(int(pid), signal.SIGUSR1)
        end = time.time() + 6
        while time.time() < end:
            screen = subprocess.run(T + ["capture-pane", "-p", "-t", "st"],
                                    stdout=subprocess.PIPE, text=True).stdout
            if "[stalls " in screen and "short_stall_fiber" in screen:
                break
            time.sleep(0.25)
    finally:
        subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        if tp.poll() is None:
            tp.kill()
        tp.wait()
    line = [l for l in screen.split("\n") if "[stalls " in l]
    if not line or "short_stall_fiber" not in line[0]:
        fail("the live view shows no named stall; screen:\n%s" % screen)
    if any(len(l) > 80 for l in screen.split("\n")):
        fail("a line wider than 80 columns:\n%s" % screen)
    print("live:", line[0].strip())


# scenario, workers, intervals of 0.25 s, lints it must draw (in at least
# half the intervals after the first), lints it may draw besides (none
# other is allowed, in any interval, the first after attaching included)
SCENARIOS = [
    # healthy: the demo's shape; the first interval after attaching once
    # drew stuck-worker (no poll-counter baseline yet)
    ("skew", 2, 6, set(), set()),
    # overload: every worker's queue deep in turn; imbalance used to flag
    # whichever was deep this interval. It may fire now only on a worker
    # that was deep three intervals in a row (checked below).
    ("flood", 2, 8, set(), {"imbalance"}),
    # healthy, nearly idle: half the wakes find nothing (the relayed
    # searcher), which drew herd at a 0.5 threshold
    ("trickle", 4, 6, set(), set()),
    ("pingpong", 2, 6, set(), set()),
    # a wake storm: 512 fibers woken every 2 ms
    ("wakestorm", 2, 8, {"herd"}, set()),
    # one worker's queue stays 200 deep while the other runs 50 ms polls.
    # 12 intervals: the lint needs 3 in a row with both depths current, the
    # keeper's worker is unknown for the first 2-3 (no probe from inside
    # its 50 ms polls yet), and one interval in ~50 without a current
    # depth restarts the count (CI saw 3 of 7 with 8 intervals)
    ("imbalance", 2, 12, {"imbalance"}, set()),
    # 64 fibers send into one channel of 64 that one fiber drains: the
    # woken senders bounce between the workers (steal-storm, second shape)
    ("fanout", 2, 6, {"steal-storm"}, set()),
    # one task spins in one poll all along
    ("longpoll", 2, 6, {"long-poll"}, {"stuck-worker"}),
    # one worker spinning in a poll while 8 tasks it spawned wait in its
    # own queue: no one can run them (the lint's real case)
    ("stuck", 1, 6, {"stuck-worker", "long-poll"}, set()),
    # healthy: nothing to do; bursts of 2,000 tasks every 200 ms
    ("idle", 2, 6, set(), set()),
    ("bursty", 2, 6, set(), set()),
    # two runtimes in one process (2 and 1 workers): kept apart (below)
    ("two", 2, 6, set(), set()),
    # sleep(1) and read() on a pipe inside tasks: the workers hold queued
    # tasks they do not run (stuck-worker), the poll lasts (long-poll), and
    # one's queue may fill while the other's does not (imbalance)
    ("blocking", 2, 8, {"blocking-call", "long-poll"}, {"stuck-worker", "imbalance"}),
]

# what a lint's detail must name, per scenario
DETAILS = {
    "blocking": ("blocking-call", [("clock_nanosleep()", "sleep+", "sleeper+", "lint_target.c:"),
                                   ("read()", "reader+", "lint_target.c:")]),
    "fanout": ("steal-storm", [("tasks bounce between workers", "both ways")]),
}


def run_scenario(schedtop, target, name, workers, n):
    """Lint names per interval of schedtop attached to a running scenario."""
    secs = n * 0.25 + 15   # killed when schedtop is done; slack for a slow attach
    tp = subprocess.Popen([target, name, str(secs), str(workers)], stdout=subprocess.PIPE,
                          text=True)
    st = None
    try:
        ready = read_line(tp, 10)
        if not ready or not ready.startswith("ready "):
            fail("lint_target %s did not get ready: %r" % (name, ready))
        time.sleep(0.3)   # attach to a runtime that is already busy
        p = run_schedtop([schedtop, "-p", ready.split()[1], "--batch", "--json", "-n", str(n),
                          "0.25"], timeout=30)
    finally:
        tp.kill()
        tp.wait()
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    if p.returncode != 0 or len(objs) != n:
        fail("%s: schedtop rc %d, %d objects: %s" % (name, p.returncode, len(objs), p.stderr))
    return objs


def check_two_runtimes(objs):
    """Two runtimes of 2 and 1 workers: every interval shows both, each
    worker as its own row (runtime, core) with one tid all along."""
    bad, tids = [], {}
    for k, o in enumerate(objs):
        rows = {(w["rt"], w["core"]): w for w in o["worker"]}
        sizes = sorted(sum(1 for r, _ in rows if r == rt) for rt in {r for r, _ in rows})
        if o["runtimes"] != 2 or o["workers"] != 3 or len(rows) != 3 or sizes != [1, 2]:
            bad.append("two: interval %d: runtimes %s workers %s rows %s" %
                       (k, o["runtimes"], o["workers"], sorted(rows)))
        for key, w in rows.items():
            if w["tid"] and tids.setdefault(key, w["tid"]) != w["tid"]:
                bad.append("two: %s changed tid %s -> %s" % (key, tids[key], w["tid"]))
        if len(o["steal_matrix"]) != o["workers"]:
            bad.append("two: steal matrix %d rows" % len(o["steal_matrix"]))
    if len(set(tids.values())) != len(tids):
        bad.append("two: one tid on two rows: %s" % tids)
    return bad


def check_two_trace(schedtop, target):
    """The trace of two runtimes: one track per (runtime, core), named so."""
    tp = subprocess.Popen([target, "two", "6"], stdout=subprocess.PIPE, text=True)
    d = tempfile.mkdtemp(prefix="schedtop-two-")
    try:
        ready = read_line(tp, 10)
        if not ready or not ready.startswith("ready "):
            return ["two: lint_target did not get ready: %r" % ready]
        out = os.path.join(d, "two.json")
        p = run_schedtop([schedtop, "trace", "-p", ready.split()[1], "--duration", "1.5",
                          "-o", out])
        if p.returncode != 0:
            return ["two: schedtop trace exited %d: %s" % (p.returncode, p.stderr)]
        with open(out) as f:
            evs = json.load(f)["traceEvents"]
    finally:
        tp.kill()
        tp.wait()
        shutil.rmtree(d)
    names = {e["tid"]: e["args"]["name"] for e in evs if e.get("name") == "thread_name"
             and e["tid"]}
    spans = {e["tid"] for e in evs if e.get("ph") == "X"}
    bad = []
    rts = {n.split()[2] for n in names.values() if n.startswith("runtime ")}
    if len(names) != 3 or len(rts) != 2 or not spans <= set(names):
        bad.append("two: trace tracks %s (spans on %s)" % (names, sorted(spans)))
    tids = [n.split("tid ")[1] for n in names.values()]
    if len(set(tids)) != len(tids):
        bad.append("two: two tracks of one thread: %s" % names)
    print("two: trace tracks %s" % sorted(names.values()))
    return bad


def test_lints(schedtop, load, lib):
    target = os.path.join(os.path.dirname(load), "lint_target")
    only = os.environ.get("SCENARIO")
    bad = []
    for name, workers, n, must, may in SCENARIOS:
        if only and name != only:
            continue
        # A pathology's lint must show in half the intervals; the staged
        # programs are CPU-bound and a noisy machine weakens them below the
        # lints' documented thresholds (the fanout's bounce under a busy
        # neighbour: 8-9k steals/s against the 20k the lint asks, then 9-29k
        # in the next run; the wake storm's 900 wakes/s against 1000), the
        # lint rightly silent. Such a shortfall alone runs the scenario
        # again, up to 3 times; every other check counts in every run, and
        # a lint that cannot fire still fails all 3.
        for attempt in range(3):
            objs = run_scenario(schedtop, target, name, workers, n)
            sbad, short = [], []
            per = [{l["name"] for l in o["lints"]} for o in objs]
            print("%-10s %s" % (name, " ".join(",".join(sorted(s)) or "-" for s in per)))
            for o in objs:
                for l in o["lints"]:
                    print("    %s: %s" % (l["name"], l["detail"]))
            # what the herd and steal-storm lints read, per interval (for a
            # failure's post-mortem): unparks/s, parked share, polls per unpark,
            # empty unparks, steals/s
            for o in objs:
                ws, dt = o["worker"], max(o["interval_s"], 1e-9)
                up = sum(w["unparks"] for w in ws)
                print("    stats: unparks/s %.0f parked %.0f%% polls/unpark %.1f empty %d "
                      "steals/s %.0f polls/s %.0f" %
                      (up / dt, sum(w["parked_pct"] for w in ws) / max(len(ws), 1),
                       sum(w["polls"] for w in ws) / max(up, 1),
                       sum(w["noop_unparks"] for w in ws), sum(w["steals_in"] for w in ws) / dt,
                       sum(w["polls"] for w in ws) / dt))
            for k, o in enumerate(objs):
                for d in lints_of(o, "imbalance"):
                    m = re.search(r"w(\d+) deep for", d)
                    w = int(m.group(1)) if m else -1
                    for j in range(max(0, k - 2), k + 1):
                        ds = [x["local_depth"] for x in objs[j]["worker"]]
                        if k < 2 or w < 0 or ds[w] <= min(ds) + 64:
                            sbad.append("%s: imbalance on w%d, not deep in interval %d: %s" %
                                       (name, w, j, ds))
                            break
            if name == "two":
                sbad += check_two_runtimes(objs)
            if name == "pingpong":
                # two fibers: no queue ever holds more than 2. The depth read
                # from memory as two reads (head, then tail, two system calls)
                # counted every push in between: 4-5 on the busy worker in
                # 36 of 80 readings.
                deep = [(k, w["core"], w["local_depth"]) for k, o in enumerate(objs)
                        for w in o["worker"] if w["local_depth"] > 2]
                if deep:
                    sbad.append("pingpong: depths above 2 (interval, worker, depth): %s" % deep)
            if name in DETAILS:
                lint, alts = DETAILS[name]
                ds = [l["detail"] for o in objs for l in o["lints"] if l["name"] == lint]
                if not any(all(w in d for w in alt) for d in ds for alt in alts):
                    short.append("%s: no %s detail names %s" % (name, lint, alts))
            # every probe-reported value carries its age; stale ones say so.
            # Both numbers come rounded to ms in the JSON and schedtop compares
            # them unrounded: within a rounding step of each other either
            # verdict is right (a CI run failed on age 0.251 vs interval 0.251).
            nstale = 0
            for o in objs:
                for w in o["worker"]:
                    want = w["state"] not in ("parked", "stopped") and \
                        (w["age_s"] < 0 or w["age_s"] > max(o["interval_s"], 1e-9))
                    if w["age_s"] >= 0 and abs(w["age_s"] - o["interval_s"]) <= 0.0011:
                        want = w["stale"]
                    if w["stale"] != want:
                        sbad.append("%s: worker %d age %.3f state %s stale %s" %
                                   (name, w["core"], w["age_s"], w["state"], w["stale"]))
                    nstale += w["stale"]
                if "inject_age_s" not in o or "inject_stale" not in o:
                    sbad.append("%s: no inject_age_s / inject_stale" % name)
            # task-level latency, kept by the runtime: one runtime listed; after
            # the first interval (the baseline) skew's jobs, which spin 5 us per
            # poll, show polls of 4 us .. 1 ms and a wake -> poll delay
            for k, o in enumerate(objs):
                if len(o.get("latency", [])) != (2 if name == "two" else 1):
                    sbad.append("%s: latency for %d runtimes" % (name, len(o.get("latency", []))))
                    break
                lt = o["latency"][0]
                if name == "skew" and k > 0 and not (
                        lt["polls_timed"] > 0 and 4096 <= lt["poll_p50_ns"] <= lt["poll_p99_ns"]
                        and lt["poll_p50_ns"] <= 1 << 20 and 0 < lt["wake_p50_ns"] <= lt["wake_p99_ns"]):
                    sbad.append("skew: implausible latency in interval %d: %s" % (k, lt))
            if name == "blocking" and not nstale:
                sbad.append("blocking: the blocked workers' state was never marked stale")
            # queue depths are read from memory: current even when the workers
            # are silent (blocked): the 2,000 tasks/s pile up in sight
            if name == "blocking" and not any(o["inject_depth"] > 100 and not o["inject_stale"]
                                              and any(w["local_depth"] > 64 and not w["depth_stale"]
                                                      for w in o["worker"]) for o in objs[1:]):
                sbad.append("blocking: queued tasks not shown as current: %s" %
                           [(o["inject_depth"], o["inject_stale"]) for o in objs])
            extra = set().union(*per) - must - may
            if extra:
                sbad.append("%s: unexpected %s" % (name, sorted(extra)))
            for m in must:
                hits = sum(1 for s in per[1:] if m in s)
                # Two staged storms change shape from interval to interval
                # on a loaded machine, in no fixed share, and in some
                # shapes are under the lint's documented thresholds (the
                # lint rightly silent): fanout's bounce at 7-15k steals/s
                # (the senders stay put; the lint asks 20k) or 120-220k;
                # the wake storm at ~900 wakes/s with 256 polls each (the
                # lint asks 1000), or 24k wakes/s with 5 polls each and
                # few empty, or a herd. For these one drawn interval
                # suffices; the healthy scenarios still may not draw the
                # lint at all.
                need = 1 if name in ("fanout", "wakestorm") else (len(per) - 1 + 1) // 2
                if hits < need:
                    short.append("%s: %s in %d of %d intervals after the first" % (name, m, hits,
                                                                                   len(per) - 1))
            bad += sbad
            if not short:
                break
            if attempt == 2:
                bad += short
            else:
                print("%s: again (run %d of 3)" % ("; ".join(short), attempt + 2))

    if not only or only == "two":
        bad += check_two_trace(schedtop, target)
    if bad:
        fail("; ".join(bad))
    print("PASS: every scenario drew exactly its lints")


def test_elastic(schedtop, load, lib):
    """weft_runtime_set_workers seen live: lint_target's elastic scenario
    starts with 1 worker, grows to 3 after 1 s and shrinks to 1 at 2.5 s.
    schedtop, attached before the growth, shows the new cores with their
    threads, then the removed ones stopped (no thread), and no lint."""
    target = os.path.join(os.path.dirname(load), "lint_target")
    objs = run_scenario(schedtop, target, "elastic", 1, 16)
    seq = []
    for o in objs:
        live = sorted(w["core"] for w in o["worker"] if w["tid"] and w["state"] != "stopped")
        seq.append(live)
    print("elastic: cores with a thread per interval:", seq)
    bad = []
    if seq[0] != [0]:
        bad.append("first interval: %s, want [0]" % seq[0])
    grown = [k for k, c in enumerate(seq) if c == [0, 1, 2]]
    if not grown:
        bad.append("never 3 cores with threads")
    elif not any(c == [0] for c in seq[grown[-1] + 1:]):
        bad.append("cores 1 and 2 never shown stopped after the shrink")
    else:
        k = grown[-1] + 1 + [c == [0] for c in seq[grown[-1] + 1:]].index(True)
        if objs[k]["workers"] < 3:
            bad.append("retired cores dropped from the rows: %d" % objs[k]["workers"])
    lints = sorted({l["name"] for o in objs[1:] for l in o["lints"]})
    if lints:
        bad.append("lints on a healthy resize: %s" % lints)
    bad += grown_steals(schedtop, target)
    if bad:
        fail("elastic: " + "; ".join(bad))
    print("PASS: schedtop followed the worker count up and down")


def grown_steals(schedtop, target):
    """lint_target grow: 2 workers grown to 4 under skew's waves, watched to
    the end. Every steal is counted at its thief (steals_in) and at its
    victim (steals_out), also the first cores' steals from the new ones
    (the cores that were running read only as many victims as the runtime
    had when they started)."""
    tp = subprocess.Popen([target, "grow", "3", "2"], stdout=subprocess.PIPE, text=True)
    pid, st, first = attach_when_ready(schedtop, tp, "lint_target grow", "0.25")
    try:
        rest, err = st.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        st.kill()
        tp.kill()
        return ["grow: schedtop did not end when its target exited"]
    if tp.wait(10) != 0 or st.returncode != 0:
        return ["grow: lint_target rc %s, schedtop rc %s: %s" % (tp.returncode, st.returncode, err)]
    final = json.loads((first + rest).strip().splitlines()[-1])
    sin = [w["total"]["steals_in"] for w in final["worker"]]
    sout = [w["total"]["steals_out"] for w in final["worker"]]
    print("grow: %d workers, steals_in %s steals_out %s" % (final["workers"], sin, sout))
    bad = []
    if final["workers"] != 4:
        bad.append("grow: %d workers at the end, want 4" % final["workers"])
    if sum(sin[2:]) == 0 or sum(sout[2:]) == 0:
        bad.append("grow: no steal by or from the new cores (test cannot fail usefully)")
    if sum(sin) != sum(sout):
        bad.append("grow: sum of steals_in %d != sum of steals_out %d" % (sum(sin), sum(sout)))
    return bad


def test_handoff(schedtop, load, lib):
    """A weft_block_in_place hand-off seen live: lint_target handoff (1
    worker) gives its core to a spare after 1 s, which runs a 3 s poll
    while the giving thread sleeps 100 ms and wakes. The core's row is
    never "stopped": the thread that gave it away did not stop the core
    (it used to fire worker_stop when its call returned, and the row read
    "stopped" for the rest of the spare's poll). lint_target exits at once
    if the call did not hand the core off (run_scenario then fails)."""
    target = os.path.join(os.path.dirname(load), "lint_target")
    objs = run_scenario(schedtop, target, "handoff", 1, 16)
    seq = [[(w["core"], w["tid"], w["state"]) for w in o["worker"]] for o in objs]
    print("handoff: (core, tid, state) per interval:", seq)
    bad = []
    # the spare's poll, seen (it lasts 3 s; the intervals are 0.25 s)
    spinning = [k for k, o in enumerate(objs) if lints_of(o, "long-poll")]
    if len(spinning) < 4:
        bad.append("the spare's long poll seen in %d intervals (test cannot fail usefully)"
                   % len(spinning))
    stopped = [k for k, o in enumerate(objs)
               if any(w["core"] == 0 and w["state"] == "stopped" for w in o["worker"])]
    if stopped:
        bad.append("core 0 \"stopped\" in intervals %s while the spare drives it" % stopped)
    if bad:
        fail("handoff: " + "; ".join(bad))
    print("PASS: a hand-off leaves the core's row driven by the spare")


NOBODY = 65534
SCHEDTOP_GID = 64999   # the group that may run the capability copy (numeric: no /etc/group entry needed)


def proc_status(pid):
    """{'Uid': [...], 'CapEff': int, ...} of a live process."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            k, _, v = l.partition(":")
            v = v.split()
            if k in ("Uid", "Gid"):
                out[k] = [int(x) for x in v]
            elif k.startswith("Cap"):
                out[k] = int(v[0], 16)
    return out


def test_caps(schedtop, load, lib):
    if os.geteuid() != 0:
        skip("needs root to set file capabilities and switch users")
    for tool in ("setpriv", "setcap", "strace"):
        if not shutil.which(tool):
            skip("%s not found (scripts/setup-deps installs it)" % tool)
    d = tempfile.mkdtemp(prefix="schedtop-caps-")
    procs = []
    try:
        schedtop, load = unpriv_copies(d, schedtop, load, lib)
        env = dict(os.environ, LD_LIBRARY_PATH=d)
        # The documented install: group-owned, 0750, permitted-only capabilities.
        full = os.path.join(d, "schedtop-caps")
        shutil.copy(schedtop, full)
        os.chown(full, 0, SCHEDTOP_GID)
        os.chmod(full, 0o750)
        subprocess.run(["setcap", "cap_bpf,cap_perfmon,cap_sys_admin=p", full], check=True)
        partial = os.path.join(d, "schedtop-bpf-perfmon")
        shutil.copy(schedtop, partial)
        os.chown(partial, 0, SCHEDTOP_GID)
        os.chmod(partial, 0o750)
        subprocess.run(["setcap", "cap_bpf,cap_perfmon=p", partial], check=True)
        # setpriv still holds root's capabilities when it execs (they go only
        # at that exec), so the exec permission check would pass for anyone:
        # a shell with none left execs the program, as a login would.
        base = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--inh-caps=-all"]
        shell = ["sh", "-c", 'exec "$@"', "sh"]
        user = base + ["--groups=%d" % SCHEDTOP_GID] + shell
        outsider = base + ["--clear-groups"] + shell

        def load_as(prefix, *extra):
            p = subprocess.Popen(prefix + [load, *extra, "2", "3000"], stdout=subprocess.DEVNULL,
                                 env=env)
            procs.append(p)
            time.sleep(0.3)
            if p.poll() is not None:
                fail("weft_load %s exited early (%s)" % (extra, p.returncode))
            return p.pid

        own = load_as(outsider)
        roots = load_as([])
        undumpable = load_as(outsider, "--undumpable")
        if proc_status(own)["Uid"] != [NOBODY] * 4:
            fail("weft_load does not run as nobody: %s" % proc_status(own))

        # 1. Not in the group: the copy cannot even be executed.
        p = subprocess.run(outsider + [full, "-p", str(own), "--batch", "-n", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           timeout=20)
        if p.returncode == 0 or "ermission denied" not in p.stderr:
            fail("a user outside the group ran the 0750 copy: rc %d %s" % (p.returncode, p.stderr))

        # 2. Own process: works, and no capability is left after the attach.
        st = subprocess.Popen(user + [full, "-p", str(own), "--batch", "--json", "-n", "3", "0.4"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        procs.append(st)
        first = read_line(st, 15)
        if first is None:
            st.wait(5)
            fail("schedtop as nobody printed nothing (rc %s): %s" % (st.returncode,
                                                                     st.stderr.read()))
        caps = proc_status(st.pid)
        rest, err = st.communicate(timeout=20)
        if st.returncode != 0:
            fail("schedtop as nobody on its own process exited %d: %s" % (st.returncode, err))
        objs = [json.loads(l) for l in (first + rest).splitlines() if l.strip()]
        if len(objs) != 3 or objs[-1]["workers"] != 2:
            fail("expected 3 JSON objects with 2 workers: %s" % (first + rest)[:300])
        if sum(w["total"]["polls"] for w in objs[-1]["worker"]) == 0:
            fail("attached, but saw no poll: %s" % objs[-1])
        if caps["Uid"] != [NOBODY] * 4 or caps["CapEff"] or caps["CapPrm"] or caps["CapInh"] \
                or caps["CapAmb"]:
            fail("schedtop after the attach: uid %s CapEff %x CapPrm %x CapInh %x CapAmb %x" %
                 (caps["Uid"], caps["CapEff"], caps["CapPrm"], caps["CapInh"], caps["CapAmb"]))
        print("ok: nobody attached to its own process; afterwards uid %s, CapEff %x CapPrm %x"
              % (caps["Uid"], caps["CapEff"], caps["CapPrm"]))

        # 3. Refusals: root's process, and nobody's own non-dumpable one. No
        #    BPF program loaded, no perf event opened: nothing changed.
        for target, want in ((roots, "real uid is 0 (root)"), (undumpable, "not dumpable")):
            log = os.path.join(d, "strace.%d" % target)
            p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=bpf,perf_event_open", "-o", log]
                               + user + [full, "-p", str(target), "--batch", "-n", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, timeout=30)
            with open(log) as f:
                calls = [l for l in f if "bpf(" in l or "perf_event_open(" in l]
            if p.returncode != 1 or want not in p.stderr or "not attaching" not in p.stderr:
                fail("expected a refusal (%r, exit 1), got rc %d: %s" % (want, p.returncode,
                                                                       p.stderr))
            if calls:
                fail("refused, but schedtop made %d BPF/perf calls: %s" % (len(calls), calls[:3]))
            print("ok: refused with no bpf()/perf_event_open() call:", p.stderr.strip())

        # 4. `-- CMD`: runs as nobody with no capabilities.
        st = subprocess.Popen(user + [full, "--batch", "-n", "2", "0.4", "--", load, "2", "3000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        procs.append(st)
        line = read_line(st, 15) or ""
        if not line.startswith("Attached to pid "):
            st.kill()
            fail("schedtop -- CMD: %r %s" % (line, st.stderr.read()))
        child = int(line.split()[3])
        c = proc_status(child)
        st.communicate(timeout=20)
        if c["Uid"] != [NOBODY] * 4 or c["CapEff"] or c["CapPrm"] or c["CapInh"] or c["CapAmb"]:
            fail("the command runs with uid %s CapEff %x CapPrm %x CapInh %x CapAmb %x" %
                 (c["Uid"], c["CapEff"], c["CapPrm"], c["CapInh"], c["CapAmb"]))
        print("ok: -- CMD ran as uid %s with CapEff %x CapPrm %x" % (c["Uid"], c["CapEff"],
                                                                   c["CapPrm"]))

        # 5. A set-user-ID root copy is refused before it does anything.
        suid = os.path.join(d, "schedtop-suid")
        shutil.copy(schedtop, suid)
        os.chmod(suid, 0o4755)
        p = subprocess.run(outsider + [suid, "-p", str(own), "--batch", "-n", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           timeout=20)
        if p.returncode != 1 or "set-user-ID" not in p.stderr:
            fail("a set-user-ID copy was not refused: rc %d %s" % (p.returncode, p.stderr))
        print("ok: set-user-ID copy refused:", p.stderr.strip())

        # 6. Without CAP_SYS_ADMIN: fine before Linux 6.16; since, the uprobes
        #    are refused and the message names exactly CAP_SYS_ADMIN.
        p = subprocess.run(user + [partial, "-p", str(own), "--batch", "-n", "1", "0.3"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           timeout=30)
        rel = tuple(int(x) for x in os.uname().release.split(".")[:2])
        if p.returncode == SKIP:
            if "Missing: CAP_SYS_ADMIN" not in p.stderr or "CAP_BPF\n" in p.stderr:
                fail("the refusal does not name exactly CAP_SYS_ADMIN: %s" % p.stderr)
            print("ok: cap_bpf,cap_perfmon only: exit 77 naming CAP_SYS_ADMIN")
        elif p.returncode == 0 and rel < (6, 16):
            print("ok: cap_bpf,cap_perfmon suffice on Linux %d.%d" % rel)
        else:
            fail("cap_bpf,cap_perfmon only on Linux %d.%d: rc %d %s" % (rel + (p.returncode,
                                                                          p.stderr)))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(d)
    print("PASS: the privilege model holds")


def test_bpftrace(schedtop, load, lib):
    """bpftrace (Debian package) attaches to the probes by pid: proves they
    are ordinary USDT probes with semaphores. (bpftrace 0.17 -c cannot
    resolve probes in a library the command has not loaded yet.)"""
    bt = shutil.which("bpftrace")
    if not bt:
        skip("bpftrace not installed")
    wl = start_load(load, "--wait", "2", "30")
    ready = read_line(wl, 10)
    if not ready or not ready.startswith("ready "):
        fail("weft_load did not get ready: %r" % ready)
    pid = int(ready.split()[1])
    prog = ("usdt:%s:weft:steal { @steals = count(); @tasks = sum(arg2); } "
            "usdt:%s:weft:runtime_shutdown { exit(); }" % (lib, lib))
    p = subprocess.Popen([bt, "-p", str(pid), "-e", prog], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    line = ""
    while "Attaching" not in line:
        line = read_line(p, 20)
        if line is None:
            wl.kill()
            p.kill()
            out = p.communicate()[0]
            if "permission" in out.lower() or "not permitted" in out.lower():
                skip("bpftrace: " + out.strip())
            fail("bpftrace did not attach: %s" % out)
    time.sleep(0.5)
    os.kill(pid, signal.SIGUSR1)
    wl.communicate(timeout=25)
    try:
        out = p.communicate(timeout=15)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        fail("bpftrace did not exit at runtime_shutdown")
    vals = {}
    for l in out.splitlines():
        if l.startswith("@"):
            k, v = l.split(":", 1)
            vals[k.strip()] = int(v)
    if vals.get("@steals", 0) <= 0 or vals.get("@tasks", 0) < vals.get("@steals", 0):
        fail("bpftrace saw no steals: %s" % out)
    print("PASS: bpftrace counted %d steals, %d tasks" % (vals["@steals"], vals["@tasks"]))


def test_unpark_reasons(schedtop, load, lib):
    """The unpark probe says why a worker woke: lint_target elastic (1
    worker, 3 after 1 s, 1 again at 2.5 s, a trickle of tasks all along),
    counted by reason with bpftrace. The two cores retired while parked
    wake with reason 3 (retire; they said 0, notified, until 2026-12-05),
    the trickle's wakes with 0, and shutdown's with 1."""
    bt = shutil.which("bpftrace")
    if not bt:
        skip("bpftrace not installed")
    target = os.path.join(os.path.dirname(load), "lint_target")
    tp = subprocess.Popen([target, "elastic", "4", "1"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    prog = ("usdt:%s:weft:unpark { @r[arg1] = count(); } "
            "usdt:%s:weft:runtime_shutdown { exit(); }" % (lib, lib))
    p = subprocess.Popen([bt, "-p", str(tp.pid), "-e", prog], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        out = p.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        tp.kill()
        fail("bpftrace did not exit at runtime_shutdown")
    tp.wait(10)
    if "Attaching" not in out:
        fail("bpftrace did not attach: %s" % out)
    r = {}
    for l in out.splitlines():
        m = re.match(r"@r\[(\d+)\]: (\d+)", l)
        if m:
            r[int(m.group(1))] = int(m.group(2))
    print("unpark reasons:", r)
    bad = []
    if r.get(3, 0) != 2:
        bad.append("%d retire wakes, want 2 (the two retired cores)" % r.get(3, 0))
    if r.get(0, 0) < 10:
        bad.append("%d notified wakes under a trickle of tasks" % r.get(0, 0))
    if r.get(1, 0) < 1:
        bad.append("no shutdown wake")
    if set(r) - {0, 1, 2, 3}:
        bad.append("unknown reasons %s" % sorted(set(r) - {0, 1, 2, 3}))
    if bad:
        fail("unpark reasons: " + "; ".join(bad))
    print("PASS: retire, notified and shutdown wakes told apart")


def test_stall_probe(schedtop, load, lib):
    """The stall probe's poll_fn names a fiber's own function: bpftrace on
    `stall_target 1.5 shortstalls` (a fiber's 30 ms polls, each over the
    10 ms threshold) prints usym(arg2) of the first stall. It was weft's
    fiber_poll, the same for every fiber (a listed limit until 2026-12-06).
    (One long poll on an otherwise idle runtime is not counted as a stall
    at all: with nothing queued behind it no worker watches - the
    long-poll lint reads the registry instead.)"""
    bt = shutil.which("bpftrace")
    if not bt:
        skip("bpftrace not installed")
    target = os.path.join(os.path.dirname(load), "stall_target")
    for mode, want in (("shortstalls", "short_stall_fiber"),):
        tp = subprocess.Popen([target, "1.5"] + ([mode] if mode else []),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        p = None
        try:
            ready = read_line(tp, 10) or ""
            if not ready.startswith("ready "):
                fail("stall_target printed %r" % ready)
            prog = ('usdt:%s:weft:stall { printf("stall %%s\\n", usym(arg2)); exit(); }' % lib)
            p = subprocess.Popen([bt, "-p", str(tp.pid), "-e", prog], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            said = []
            while not said or "Attaching" not in said[-1]:
                said.append(read_line(p, 20) or "")
                if not said[-1]:
                    fail("bpftrace did not attach: %r" % said)
            # "Attaching" comes before the probe is in place: a stall
            # counted before that is never reported again
            time.sleep(1.0)
            os.kill(tp.pid, signal.SIGUSR1)
            out = p.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            fail("bpftrace saw no stall of a 1 s poll (%s)" % (mode or "poll task"))
        finally:
            kill_all(tp, p)
        line = [l for l in out.splitlines() if l.startswith("stall ")]
        print("%s: %s (bpftrace: %r)" % (mode or "poll task", line, out))
        if not line or want not in line[0]:
            fail("the stall probe's poll_fn for a %s: %r, want %s"
                 % (mode or "poll task", line, want))
    print("PASS: the stall probe names the fiber's function")


def kernel_figures(objs):
    """Per core: (max cpu_pct, vol_cs, futex_waits, max park_p50_ns) over
    all intervals."""
    k = {}
    for o in objs:
        for w in o["worker"]:
            c = k.setdefault(w["core"], [0.0, 0, 0, 0])
            c[0] = max(c[0], w["cpu_pct"])
            c[1] += w["vol_cs"]
            c[2] += w["futex_waits"]
            c[3] = max(c[3], w["park_p50_ns"])
    return k


def test_pidns(schedtop, load, lib):
    """schedtop in a pid namespace: the pid it sees is not the kernel's
    global id, which the tracepoints compare with (task->tgid). Both ways
    in: `-- CMD` (schedtop forks it, pid 2 or 3 there) and `-p PID` with a
    pid from the namespace (a tool in a container beside its target)."""
    us = shutil.which("unshare")
    if not us:
        fail("unshare (util-linux) not found: cannot run schedtop in a pid namespace")
    target = os.path.join(os.path.dirname(load), "count_target")
    work = ["rounds", "2", "30", "100", "300", "20"]
    ways = {
        "-- CMD": [us, "-p", "-f", "--mount-proc", schedtop, "--batch", "--json", "0.5", "--",
                   target] + work,
        # the target's "ready" line and counts go to a file; once it says
        # ready (its runtime made: libweft mapped - attaching before that
        # is refused, 4 of 8 runs), the namespace's pid 1 becomes
        # schedtop, attached to the target by the pid it has there
        "-p PID": [us, "-p", "-f", "--mount-proc", "sh", "-c",
                   'out=$(mktemp); "$0" "$@" >"$out" & t=$!; n=0; '
                   'until grep -q "^ready" "$out"; do n=$((n+1)); '
                   '[ $n -gt 200 ] && { echo "target never ready" >&2; exit 1; }; sleep 0.05; done; '
                   'rm -f "$out"; exec "$SCHEDTOP" -p $t --batch --json 0.5',
                   target] + work,
    }
    bad = []
    for way, cmd in ways.items():
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=40, env=dict(os.environ, SCHEDTOP=schedtop))
        if p.returncode == SKIP:
            skip("schedtop exited 77: " + p.stderr.strip())
        if p.returncode != 0:
            fail("%s in a pid namespace: exit %d: %s" % (way, p.returncode, p.stderr))
        # (the -- CMD target prints its counts on the same stdout)
        objs = [o for o in (json.loads(l) for l in p.stdout.splitlines() if l.startswith("{"))
                if "schema" in o]
        if not objs or not objs[-1]["final"]:
            fail("%s: no final report: %s" % (way, p.stdout[-500:]))
        k = kernel_figures(objs)
        print("%s: per core (max cpu_pct, vol_cs, futex_waits, max park_p50_ns): %s"
              % (way, k))
        if sorted(k) != [0, 1]:
            bad.append("%s: cores %s, want [0, 1]" % (way, sorted(k)))
        for core, (cpu, vol, fut, park) in sorted(k.items()):
            if cpu <= 0 or vol <= 0 or park <= 0:
                bad.append("%s: core %d: cpu_pct %.1f vol_cs %d park_p50_ns %d (all must be "
                           "> 0)" % (way, core, cpu, vol, park))
        # the worker holding the I/O driver parks in epoll_wait, not a futex
        if sum(c[2] for c in k.values()) <= 0:
            bad.append("%s: no futex waits" % way)
    if bad:
        fail("kernel figures in a pid namespace: " + "; ".join(bad))
    print("PASS: kernel-side figures inside a pid namespace")


def test_mntns_static(schedtop, load, lib):
    """A program linked statically with weft (its probes in the executable)
    runs in a mount namespace of its own, where DIR/view/app is its file
    (DIR/real bound there); on the host DIR/view/app is a FIFO. `-p PID`
    attaches to the program's own file (/proc/PID/root/...). Before, the
    path /proc/PID/exe shows was used as it stood: the attach opened the
    host's FIFO and blocked (or, with nothing there, said the program had
    no weft:runtime_create probe)."""
    us = shutil.which("unshare")
    if not us:
        fail("unshare (util-linux) not found")
    target = os.path.join(os.path.dirname(load), "count_target_static")
    d = tempfile.mkdtemp(prefix="schedtop-mntns-")
    tp = None
    try:
        real, view = os.path.join(d, "real"), os.path.join(d, "view")
        os.mkdir(real)
        os.mkdir(view)
        shutil.copy(target, os.path.join(real, "app"))
        os.chmod(os.path.join(real, "app"), 0o755)
        os.mkfifo(os.path.join(view, "app"))
        # unshare without --fork execs sh, which execs the program: one pid
        tp = subprocess.Popen([us, "-m", "sh", "-c",
                               'r=$1; v=$2; shift 2; mount --make-rprivate / && '
                               'mount --bind "$r" "$v" && exec "$v/app" "$@"', "sh", real, view,
                               "rounds", "2", "100", "100", "1500", "20"],
                              stdout=subprocess.PIPE, text=True)
        line = read_line(tp, 20)
        if not line or not line.startswith("ready"):
            fail("count_target_static in a mount namespace did not start: %r" % line)
        if os.readlink("/proc/%d/exe" % tp.pid) != os.path.join(view, "app"):
            fail("the target's exe is %s" % os.readlink("/proc/%d/exe" % tp.pid))
        try:
            p = subprocess.run([schedtop, "-p", str(tp.pid), "--batch", "--json", "0.5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=40)
        except subprocess.TimeoutExpired:
            fail("schedtop -p on a static program in another mount namespace blocked 40 s "
                 "(the host's FIFO at its path opened?)")
        if p.returncode == SKIP:
            skip("schedtop exited 77: " + p.stderr.strip())
        print(p.stderr.strip())
        if p.returncode != 0:
            fail("static program in another mount namespace: exit %d: %s" % (p.returncode,
                                                                             p.stderr))
        objs = [o for o in (json.loads(l) for l in p.stdout.splitlines() if l.startswith("{"))
                if "schema" in o]
        if not objs or objs[-1]["workers"] != 2 or \
                not sum(w["total"]["polls"] for w in objs[-1]["worker"]):
            fail("no polls seen: %s" % p.stdout[-500:])
        print("PASS: a static weft program in another mount namespace, attached by pid")
    finally:
        if tp:
            tp.kill()
            tp.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_handoff_cpu(schedtop, load, lib):
    """After a weft_block_in_place hand-off the giving thread is no longer
    the core's: its CPU time and switches go to other_threads."""
    target = os.path.join(os.path.dirname(load), "count_target")
    p = run_schedtop([schedtop, "--batch", "--json", "0.5", "--", target, "handoff", "3"])
    if p.returncode != 0:
        fail("schedtop -- count_target handoff: exit %d: %s" % (p.returncode, p.stderr))
    objs = [o for o in (json.loads(l) for l in p.stdout.splitlines() if l.startswith("{"))
            if "schema" in o]
    rows = []
    for o in objs:
        w = [w for w in o["worker"] if w["core"] == 0]
        if len(o["worker"]) != 1 or not w:
            fail("want one worker, core 0: %s" % o["worker"])
        rows.append((w[0]["tid"], w[0]["state"], w[0]["cpu_pct"], w[0]["vol_cs"],
                     o["other_threads"]["cpu_pct"], o["other_threads"]["vol_cs"]))
    print("per interval (core tid, state, cpu_pct, vol_cs; other cpu_pct, vol_cs):")
    for r in rows:
        print("  %s" % (r,))
    # fn's intervals, whichever row it is charged to
    fn = [r for r in rows if r[2] + r[4] > 25]
    bad = []
    if len(fn) < 3:
        bad.append("fn's CPU seen in %d intervals, want 3 or more" % len(fn))
    for r in fn:
        if r[2] >= 10 or r[3] >= 50 or r[4] <= 25:
            bad.append("core %.1f %% CPU, %d switches; other_threads %.1f %%"
                       % (r[2], r[3], r[4]))
    if bad:
        fail("hand-off: the giving thread's CPU: " + "; ".join(bad))
    print("PASS: the thread that gave its core away counts in other_threads")


def test_slow_attach(schedtop, load, lib):
    """Attached by pid to a runtime that polls a task every 100 ms: its
    cores are counted from the attach, not from their first maintenance
    (every 61 polls: seconds on such a target)."""
    target = os.path.join(os.path.dirname(load), "count_target")
    tp = subprocess.Popen([target, "rounds", "2", "40", "1", "2500", "100"],
                          stdout=subprocess.PIPE, text=True)
    ready = read_line(tp, 10)
    if not ready or not ready.startswith("ready "):
        kill_all(tp)
        fail("count_target did not get ready: %r" % ready)
    time.sleep(0.3)
    st = subprocess.Popen([schedtop, "-p", ready.split()[1], "--batch", "--json", "0.5"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, _ = tp.communicate(timeout=30)
        rest, err = st.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        kill_all(tp, st)
        fail("count_target or schedtop did not end")
    if st.returncode == SKIP:
        skip("schedtop exited 77: " + err.strip())
    if tp.returncode != 0 or st.returncode != 0:
        fail("count_target exited %d, schedtop %d: %s" % (tp.returncode, st.returncode, err))
    truth = json.loads(out.strip().splitlines()[-1])
    objs = [json.loads(l) for l in rest.splitlines() if l.strip()]
    if not objs or not objs[-1]["final"]:
        fail("no final report")
    workers = objs[-1]["worker"]
    parks = sum(w["total"]["parks"] for w in workers)
    print("parks per interval:", [sum(w["parks"] for w in o["worker"]) for o in objs])
    print("runtime's parks over the rounds %d, schedtop's total since attach %d"
          % (truth["parks"], parks))
    if truth["parks"] < 40:
        fail("the runtime parked %d times in 40 rounds: the test cannot tell" % truth["parks"])
    if not truth["parks"] - 2 * len(workers) <= parks <= truth["parks"]:
        fail("schedtop counted %d parks, the runtime %d (want %d..%d)"
             % (parks, truth["parks"], truth["parks"] - 2 * len(workers), truth["parks"]))
    # each park here follows a poll or is counted a no-op one (a parked
    # worker the relay called in to take the driver from a sleeper between
    # two watch timeouts finds nothing and parks again: since the watch
    # timeouts of 2026-12-07, idle.c "The watch"): an interval with a
    # core's parks has its polls or no-op unparks too, except the core's
    # first interval with parks when its counters were first read in it
    # (the park's maintenance probe gives their address; the first read is
    # the baseline, so its polls read 0: a CI run's (4, 1) when the rounds
    # began in that interval). Blind for longer (the bug: seconds, every
    # counter 0) still fails.
    first_parks = {}
    for k, o in enumerate(objs):
        for w in o["worker"]:
            if w["parks"] > 0:
                first_parks.setdefault(w["core"], k)
    blind = [(k, w["core"]) for k, o in enumerate(objs) for w in o["worker"]
             if w["parks"] > 0 and w["polls"] == 0 and w["noop_unparks"] == 0 and
             not (k == first_parks[w["core"]] and w["total"]["polls"] == 0)]
    if blind:
        fail("parks without polls in (interval, core) %s" % blind)
    print("PASS: a lightly loaded runtime is counted from the attach")


def test_long_park(schedtop, load, lib):
    """A park longer than 2^32 ns has a true bound in the percentiles."""
    target = os.path.join(os.path.dirname(load), "count_target")
    p = run_schedtop([schedtop, "--batch", "--json", "1", "--", target, "rounds", "1", "1", "1",
                      "5000", "0"])
    if p.returncode != 0:
        fail("schedtop -- count_target: exit %d: %s" % (p.returncode, p.stderr))
    objs = [o for o in (json.loads(l) for l in p.stdout.splitlines() if l.startswith("{"))
            if "schema" in o]
    p99 = [w["park_p99_ns"] for o in objs for w in o["worker"]]
    print("park_p99_ns per interval:", p99)
    if not p99 or not 5000000000 <= max(p99) <= 1 << 33:
        fail("a 5 s park: park p99 %s, want 5e9..2^33 ns" % (max(p99) if p99 else None))
    print("PASS: a 5 s park reads as under 2^33 ns, not 2^32")


def test_uring_park(schedtop, load, lib):
    """The io_uring driver (WEFT_IO_DRIVER=uring): one worker, which holds
    the driver and parks in io_uring_enter between 6 rounds 400 ms apart.
    Every interval after the first shows it parked most of the time, with
    park durations. It read running 100 % and park p50 0 (only epoll_wait
    and the futex were taken for a park sleep). Then the same, with either
    driver, under the syscall tracepoints (SCHEDTOP_FUTEX=tp, what kernels
    before 5.15 get): no park sleep was seen there at all, and the worker
    read running, 0 % parked, no park durations (2026-12-07)."""
    for extra in ({"WEFT_IO_DRIVER": "uring"},
                  {"WEFT_IO_DRIVER": "uring", "SCHEDTOP_FUTEX": "tp"},
                  {"SCHEDTOP_FUTEX": "tp"}):
        parks_read(schedtop, load, extra)
    print("PASS: a park in the io_uring driver reads as a park, and any park does under "
          "the syscall tracepoints")


def parks_read(schedtop, load, extra):
    """count_target's one worker parks between rounds: under environment
    `extra`, every interval after the first shows it parked, with park
    durations."""
    target = os.path.join(os.path.dirname(load), "count_target")
    env = dict(os.environ, **extra)
    p = subprocess.run([schedtop, "--batch", "--json", "0.5", "--", target, "rounds", "1", "6",
                        "1", "300", "400"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30, env=env)
    if p.returncode == SKIP:
        skip("schedtop exited 77: " + p.stderr.strip())
    if "io_uring is not available" in p.stderr:
        skip("io_uring refused here: " + p.stderr.strip())
    if p.returncode != 0:
        fail("%s schedtop -- count_target: exit %d: %s" % (extra, p.returncode, p.stderr))
    objs = [o for o in (json.loads(l) for l in p.stdout.splitlines() if l.startswith("{"))
            if "schema" in o and not o["final"]]
    if "SCHEDTOP_FUTEX" in extra and objs and \
            not objs[0]["overhead"]["futex_probe"].startswith("tp_btf"):
        fail("%s: futex probe %s" % (extra, objs[0]["overhead"]["futex_probe"]))
    rows = [(w["state"], w["parked_pct"], w["park_p50_ns"]) for o in objs[1:]
            for w in o["worker"]]
    print("%s: (state, parked %%, park p50 ns) per interval after the first: %s"
          % (extra, rows))
    if len(rows) < 3:
        fail("%s: too few intervals: %s" % (extra, p.stdout[-500:]))
    bad = [r for r in rows if r[1] < 50 or r[2] == 0]
    if bad:
        fail("%s: a parked worker shown %s" % (extra, bad))


def test_exec(schedtop, load, lib):
    """The target execs: count_target's 2-worker runtime polls for 1 s,
    then the process execs weft_load (same pid, a new program). The old
    runtime's workers are stopped from the exec on (they read "parked" with
    their dead threads to the end), and the new program's runtime is read
    from its registry (latency sampled: the registry's old address was
    never looked up again); the new runtime's counts equal its own."""
    target = os.path.join(os.path.dirname(load), "count_target")
    p = run_schedtop([schedtop, "--batch", "--json", "0.25", "--", target, "exec", "1", load,
                      "2", "60"], timeout=40)
    if p.returncode != 0:
        fail("schedtop -- count_target exec: exit %d: %s" % (p.returncode, p.stderr))
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    own = [o for o in objs if "schema" not in o]
    snaps = [o for o in objs if "schema" in o]
    if len(own) != 1 or not snaps or not snaps[-1]["final"]:
        fail("no counts or no final report: %s" % p.stdout[-500:])
    old = {w["rt"] for w in snaps[0]["worker"]}
    after = [o for o in snaps if {w["rt"] for w in o["worker"]} - old]
    if len(old) != 1 or len(after) < 3:
        fail("the exec not seen (runtimes %s, %d intervals after it)" % (old, len(after)))
    new = ({w["rt"] for w in snaps[-1]["worker"]} - old).pop()
    states = [sorted(w["state"] for w in o["worker"] if w["rt"] in old) for o in after[1:]]
    print("old runtime's states after the exec:", states)
    bad = []
    if any(s != ["stopped", "stopped"] for s in states):
        bad.append("the runtime before the exec not stopped: %s" % states)
    timed = [l["polls_timed"] for o in after for l in o["latency"] if l["rt"] == new]
    print("new runtime's latency samples per interval:", timed)
    if not sum(timed):
        bad.append("no latency sample of the new program's runtime (registry not read)")
    rows = [w for w in snaps[-1]["worker"] if w["rt"] == new]
    for i, (w, m) in enumerate(zip(rows, own[0]["worker"])):
        if w["total"]["parks"] != m["park_count"] or w["total"]["polls"] != m["poll_count"]:
            bad.append("new runtime worker %d: parks %d polls %d, its own %d %d"
                       % (i, w["total"]["parks"], w["total"]["polls"], m["park_count"],
                          m["poll_count"]))
    if bad:
        fail("; ".join(bad))
    print("PASS: an exec stops the old runtime's rows and the new one is read")


def test_exec_window(schedtop, load, lib):
    d = os.path.dirname(load)
    env = dict(os.environ, LD_PRELOAD=os.path.join(d, "libexec_window.so"))
    st = subprocess.Popen([schedtop, "--batch", "--json", "0.25", "--",
                           os.path.join(d, "stall_target"), "1.5"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    flagged, spawn = [], None
    try:
        while True:
            l = read_line(st, 10)
            if l is None:
                break
            if l.startswith("ready "):
                pid = int(l.split()[1])
                in_sigwait(pid)
                os.kill(pid, signal.SIGUSR1)
                continue
            if l.startswith("spawn_line "):
                spawn = l.split()
                continue
            o = json.loads(l)
            flagged += lints_of(o, "long-poll")
            if o["final"]:
                break
        st.wait(10)
    finally:
        kill_all(st)
    err = st.stderr.read()
    if st.returncode == SKIP:
        skip("schedtop exited 77: " + err.strip())
    if "opened before its exec" not in err:
        fail("the read across the exec was not staged (rc %s): %s" % (st.returncode, err))
    if st.returncode != 0 or not spawn:
        fail("stall_target 1.5: rc %s, spawn line %s: %s" % (st.returncode, spawn, err))
    if not flagged:
        fail("a 1.5 s poll never flagged: the maps read empty during the exec were kept")
    print("long-poll: %s" % flagged[0])
    if "spin_poll" not in flagged[0] or "stall_target.c:%s" % spawn[1] not in flagged[0]:
        fail("long-poll does not name spin_poll and its spawn line: %s" % flagged[0])
    print("PASS: maps read empty as the target exec'd are read again")


def test_epoll_block(schedtop, load, lib):
    """A task that blocks in its own epoll_wait inside its poll
    (count_target epollblock: 1 worker, 1 s waits): blocking-call names
    epoll_wait, and the worker is not shown parked. It read parked 100 %,
    with 1 s "parks" and no blocking-call: any epoll_wait of a worker was
    taken for the I/O driver's. The same under the syscall tracepoints
    (SCHEDTOP_FUTEX=tp, what kernels before 5.15 get), where blocking-call
    never fired: it took the call from registers only sched_switch with
    bpf_task_pt_regs could read (2026-12-07)."""
    for extra in ({}, {"SCHEDTOP_FUTEX": "tp"}):
        epoll_block_once(schedtop, load, extra)
    print("PASS: a task's epoll_wait is a blocking call, not a park")


def epoll_block_once(schedtop, load, extra):
    target = os.path.join(os.path.dirname(load), "count_target")
    p = subprocess.run([schedtop, "--batch", "--json", "0.5", "--", target, "epollblock", "4"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=40,
                       env=dict(os.environ, **extra))
    if p.returncode == SKIP:
        skip("schedtop exited 77: " + p.stderr.strip())
    if p.returncode != 0:
        fail("%s schedtop -- count_target epollblock: exit %d: %s"
             % (extra, p.returncode, p.stderr))
    objs = [o for o in (json.loads(l) for l in p.stdout.splitlines() if l.startswith("{"))
            if "schema" in o]
    rows = [(w["state"], w["parked_pct"]) for o in objs[1:] for w in o["worker"]]
    calls = [l["detail"] for o in objs for l in o["lints"] if l["name"] == "blocking-call"]
    print("%s: (state, parked %%) per interval after the first: %s" % (extra, rows))
    print("%s: blocking-call details: %s" % (extra, [c[:100] for c in calls]))
    bad = []
    if len(rows) < 4:
        bad.append("too few intervals: %d" % len(rows))
    if any(r[1] > 50 for r in rows):
        bad.append("the worker inside its poll shown parked: %s" % rows)
    if not any("epoll_wait" in c for c in calls):
        bad.append("no blocking-call naming epoll_wait")
    if bad:
        fail("%s: %s" % (extra, "; ".join(bad)))


def test_many_rt(schedtop, load, lib):
    """40 runtimes of 2 workers (80 cores, more than the 64 slots): the
    figures then cover only some of the workers, and schedtop must say so
    (cores_over_limit) instead of showing 64 workers' counts as the whole;
    a process that fits shows every worker and never says it."""
    target = os.path.join(os.path.dirname(load), "many_rt")
    for n, rounds in ((40, 20), (4, 10)):
        p = run_schedtop([schedtop, "--batch", "--json", "0.5", "--", target, str(n), "2",
                          str(rounds)], timeout=60)
        if p.returncode != 0:
            fail("schedtop -- many_rt %d: exit %d: %s" % (n, p.returncode, p.stderr))
        objs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        own = [o for o in objs if "schema" not in o]
        snaps = [o for o in objs if "schema" in o]
        if len(own) != 1 or not snaps or not snaps[-1]["final"]:
            fail("many_rt %d: no counts or no final snapshot: %s" % (n, p.stdout[-500:]))
        fin = snaps[-1]
        polls = sum(w["total"]["polls"] for w in fin["worker"])
        over = fin.get("cores_over_limit", False)
        print("many_rt %d: target %d workers %d polls; schedtop %d workers %d polls, "
              "cores_over_limit %s" % (n, own[0]["workers"], own[0]["polls"], fin["workers"],
                                       polls, over))
        if fin["workers"] < own[0]["workers"] and not over:
            fail("%d of the target's %d workers shown, %d of its %d polls, and nothing "
                 "says the rest are missing" % (fin["workers"], own[0]["workers"], polls,
                                                own[0]["polls"]))
        if fin["workers"] == own[0]["workers"] and (over or polls != own[0]["polls"]):
            fail("every worker fits: want all %d polls and no cores_over_limit"
                 % own[0]["polls"])
    print("PASS: more cores than slots is said")


def test_two_totals(schedtop, load, lib):
    """--batch text with two runtimes: the closing totals name each row's
    runtime, as the interval rows do (both runtimes have a W0: the totals
    listed "0 ... 0 ..." with nothing to tell them apart)."""
    target = os.path.join(os.path.dirname(load), "lint_target")
    p = run_schedtop([schedtop, "--batch", "0.5", "-n", "2", "--", target, "two", "3"])
    if p.returncode != 0:
        fail("schedtop -- lint_target two: exit %d: %s" % (p.returncode, p.stderr))
    lines = p.stdout.splitlines()
    at = [i for i, l in enumerate(lines) if l.startswith("--- totals")]
    if len(at) != 1:
        fail("no totals: %s" % p.stdout[-800:])
    head, rows = lines[at[0] + 1], lines[at[0] + 2:]
    rows = [r for r in rows if r.strip() and r.split()[0].startswith("0x")]
    print("\n".join(lines[at[0]:]))
    if not head.startswith("RT") or len(rows) != 3:
        fail("totals of two runtimes (3 workers) without the runtime: %s"
             % "\n".join(lines[at[0]:]))
    keys = {(r.split()[0], r.split()[1]) for r in rows}
    if len(keys) != 3 or len({k[0] for k in keys}) != 2:
        fail("totals rows do not name 3 distinct (runtime, worker): %s" % sorted(keys))
    print("PASS: the totals name the runtime of each row")


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        sys.exit(2)
    schedtop, load, lib, test = sys.argv[1:]
    if test != "unpriv" and os.geteuid() != 0:
        # Capabilities instead of root are fine for schedtop; schedtop itself
        # reports 77 when they are missing.
        pass
    tests = {"counts": test_counts, "json": test_json, "trace": test_trace,
             "unpriv": test_unpriv, "nobpf": test_nobpf, "bpftrace": test_bpftrace,
             "caps": test_caps, "longpoll": test_longpoll,
             "longpoll_swap": test_longpoll_swap,
             "longpoll_exec": test_longpoll_exec, "lints": test_lints,
             "elastic": test_elastic, "handoff": test_handoff, "trace_warmup": test_trace_warmup,
             "trace_late_rt": test_trace_late_rt,
             "trace_ended_rt": test_trace_ended_rt,
             "unpark_reasons": test_unpark_reasons, "stalls": test_stalls,
             "pidns": test_pidns, "mntns_static": test_mntns_static,
             "handoff_cpu": test_handoff_cpu,
             "slow_attach": test_slow_attach, "long_park": test_long_park,
             "many_rt": test_many_rt, "two_totals": test_two_totals,
             "uring_park": test_uring_park, "exec": test_exec,
             "epoll_block": test_epoll_block, "stall_probe": test_stall_probe,
             "exec_window": test_exec_window}
    if test not in tests:
        print("unknown test", test)
        sys.exit(2)
    tests[test](schedtop, load, lib)


if __name__ == "__main__":
    main()
