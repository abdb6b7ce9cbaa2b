#!/usr/bin/env python3
"""schedtop for operations (issue 16): end reasons, messages, perf, diff,
metrics, wrappers, flight recorder. Real processes, real BPF.

    test_schedtop_ops.py SCHEDTOP WEFT_LOAD_TEST WEFT_LOAD LIBWEFT TEST

WEFT_LOAD_TEST is tests/bpf/weft_load, WEFT_LOAD is tools/load/weft-load.
TEST is one of:
  faults    `report` prints the recorded pid (it printed "pid 0"); the batch
            text's totals say POLLS counts since the runtime started; JSON's
            last object says why it is last ("end": "count",
            "target-exited", "signal", "end-of-file" for report); --no-bpf
            on weft-load (threads named load-<n>) lists the thread names it
            found and suggests --prefix load; a pid that does not exist is
            reported as "no process N", with no "permission" in it.
  diff      two real weft-load runs under `schedtop --batch --json -- ...`, the
            second made slower (--extra-spin): `schedtop diff` of the
            weft-load JSON and of the schedtop JSON both mark tasks/s or
            polls/s as a significant, worse change and exit 1 with
            --fail-over 30; diff of a run with itself exits 0; a file that
            is no recording exits 2; two traces (the steal-trace fixture and
            a copy with half its steals) show steal events/s changed, and a
            neutral metric does not gate.
  metrics   `schedtop metrics -p PID --listen 127.0.0.1:PORT` scraped twice
            with curl while weft_load runs, each scrape parsed with
            prometheus_client's parser (python3-prometheus-client): every
            name has the weft_ prefix, counters end in _total and never go
            down between scrapes, polls and steals grow, worker metrics carry
            runtime and worker labels, histogram buckets are cumulative with
            increasing le bounds and +Inf equal to _count; another path is a
            404; --once prints one scrape that parses too. Then --once on
            stall_target lockspare idle since before the attach (its
            workers fire no probe): 4 workers, cores 0 and 1 parked, 2 and
            3 stopped, and polls (no worker series at all before).
            (STALL_TARGET)
  wrappers  `schedtop -- sh -c "weft_load 2 40; true"` (sh forks) and
            `-- env X=1 taskset -c 0,1 weft_load 2 40` (exec chain): schedtop
            names the process that loads libweft, attaches before its first
            instruction (BPF totals equal the runtime's own metrics
            exactly) and ends with it; --no-bpf through sh -c finds the two
            workers; a wrapper that starts nothing with libweft exits 1
            saying so; `-p PID --wait` on a process that dlopens a plugin
            linked with libweft after 1.5 s waits, then attaches and sees
            its steals. As nobody with a cap_bpf,cap_perfmon,cap_sys_admin=p
            copy: `-- sh -c` works and the shell and the program it starts
            hold no capability (CapPrm, CapEff 0). As root through
            `setpriv --reuid=65534` to nobody's program: the loader schedtop
            asks for the program's libweft (ld.so --list) runs as nobody. A
            wrapper with 300 jobs in the background when it execs the
            program: all 300 finish, every one detached at once (none said
            not to stop).
            (LATE_TARGET, LATE_PLUGIN in the environment.)
  record    the flight recorder. tests/bpf/stall_target spins 2 s in one poll
            under `schedtop record --last 5s 0.25`: a dump named
            *-lint-long-poll.* appears while it spins, its JSON names the
            lint (spin_poll) and its window is 5 s ending at the dump; then
            an exit dump. weft_load under `record --last 2s 0.5`, SIGUSR1 to
            schedtop after 4 s: a *-signal.* dump whose window is exactly
            2 s, every event inside it, the oldest within 0.5 s of its start
            (older ones were dropped), the trace JSON parses, the events
            file has the window's count; with --max-events 1024 the ring
            stays at 1024 events and the dump says it is truncated.
  record_dir
            -o DIR that cannot take dumps: a regular file is refused at
            once, with -- CMD before CMD starts (it started CMD, attached,
            then stopped it); a DIR made for a run that attaches nothing
            (-p of no process) is not left behind; dumps that could not be
            written are not counted as written.
  record_full
            dumps that cannot be written whole (the file size limit, 16 KiB,
            standing in for a full disk): each failed dump (SIGUSR1, exit)
            names its file and the reason, its files are removed, the
            summary says 0 written, 2 failed, exit 1 (the cut files stayed
            and only "(1 failed, see above)" was said). `--batch --record
            FILE` past the same limit says so, exits 1 and leaves FILE
            with its whole snapshots, which report reads (exit 0, nothing
            said, a snapshot cut short).
  record_early_usr1
            SIGUSR1 to `record -- weft_load` as soon as schedtop catches
            SIGINT (before the attach): exit 0, a signal dump and an exit
            dump (it killed schedtop, status 138). With --on lint,exit a
            SIGUSR1 is said to make no dump (it was dropped silently).
  record_sigint
            SIGINT 1.5 s into a 5 s interval of `record -- weft_load`: the
            exit dump holds one partial interval report marked "end":
            "signal" (it held none: reports stopped at the last whole
            interval).
  record_symlink
            dumps into a directory others may write: symlinks planted at
            every name a SIGUSR1 dump could take over 3 s (.trace.json and
            .events.jsonl to existing files, .json to a file that does not
            exist) are not followed: the files they point to are unchanged,
            the missing one is not created, and the dump is written under
            the next name (-2) as regular files that parse.
  list_sparse
            `schedtop list` with a 20 GiB sparse copy of /bin/sleep running
            (and weft_load): done within 5 s, weft_load listed with its
            libweft, the copy not listed (it read every byte of each
            executable with no libweft mapped: 45 s).
  metrics_interval
            `schedtop metrics -p PID --once 3e6` (an interval past INT_MAX
            ms): it waits, and prints its scrape when weft_load is killed
            1.5 s later (the interval in ms was cast to int: INT_MIN, the
            scrape at once).
  metrics_port
            `--listen 127.0.0.1:99999` (and 65536, -1, +80) exits 1 naming
            the range 0-65535 (99999 listened on 34463, said 99999);
            `--listen 127.0.0.1:0` and `[::1]:0` say the port bound, and
            a GET there answers the scrape (it said ":0").
  metrics_http
            HEAD /metrics: the headers, no body (the scrape followed); POST:
            405 with Allow: GET, HEAD; `GET` alone and bytes with a NUL:
            400 at once (closed silently, the NUL one after 2 s); a 10 KB
            header or query: the scrape (a reset, nothing read); a 100 KB
            head: 431 at once; a GET behind 3 idle connections: the scrape
            at once (it waited 6 s).
  tui       the live view under tmux (a pseudo-terminal) at 80x24, 200x50 and
            40x10, against weft_load: views 1, 2, 3 and the help captured; every
            capture has exactly the terminal's lines, no line wrapped (the
            capture joined with -J equals the plain one), each line where
            it belongs (header, columns, one row per worker starting with
            its index and state, the footer last), at 200 columns every
            column, at 80 the footer says how many are hidden; the
            histogram view shows its four boxes side by side without
            overlap, bucket bounds in units (ns/us/ms/s), and a box whose
            rows merge N buckets says xN in its title at 80 columns too
            (it was dropped when the title was long); at 40x10 each
            histogram row still shows its count (cut off after the
            bounds: the columns kept their 80-column widths). On the help screen
            2 shows the steal matrix, a resize keeps the help up and q
            quits (2 and q only closed the help, back to the view it was
            opened from, and a resize closed it). `-p PID 0.02 200` ends
            in under 20 s, the attach included (each interval lasted the
            0.1 s the view waited for a key and more: over 20 s).
  tui_dumb  the live view under tmux with TERM=dumb (known to terminfo, no
            cursor addressing), with -p PID and with -- CMD: schedtop says the
            terminal cannot move the cursor, to use --batch, and exits 1
            within seconds, the command not started (it ran, and each redraw
            scrolled the screen: blank lines and the footer, never the view).
            The same with --no-bpf: the terminal cannot clear the screen
            (it ran, writing raw ESC [H ESC [2J each interval).
  tui_empty the live view of a weft process with no runtime yet
            (late_rt_target before its SIGUSR1) at 80x24: views 1, 2 and 3
            drawn with 0 workers; the histogram titles say p50- p99- for
            every box (tasks/steal said "p50<0 p99<0").
  tui_small the histogram view under tmux at 80x8, 30x24 and 20x12, and the
            steal matrix at 80x24 with a million steals a cell (the test
            adds them to the cells of schedtop's BPF .bss through a
            mapping of its own): no line longer than the width, every
            histogram row shows its count and a title's p50/p99 stands
            whole (under 34 columns counts and percentiles were cut), a
            box whose title is drawn has a row under it and the footer
            says when a pair is left out (at 80x8 the bottom pair was drawn
            over the footer), a matrix cell stays 6 columns, shortened to
            e.g. 2.5M (1000000 pushed the row's cells a column right);
            at 80x8 the steal matrix's footer asks for a taller terminal
            (it said "widen").
  tui_two   the live view of lint_target two (two runtimes) at 80x24: the
            header says `runtimes 2`; the steal matrix labels r1w0 r1w1
            r2w0 (or r1w0 r2w0 r2w1), with a legend naming r1 and r2.
            Then the window at 80x8 down to 80x1: the footer alone on the
            last line, saying "make taller", each line above it whole (the
            header's, the title, the labels, a row, the legend) - under 6
            lines the footer was drawn over the title, under 3 over the
            header, their tails left after it.
  tui_utf8  the live view at 80x24 and 81x24 with a long-poll lint naming
            a function spin_ééé... (stall_target utf8): the lint line is
            cut on a character and fills the width (it was cut by bytes:
            short of the edge, or inside a character).
            (STALL_TARGET)
  tui_lints the live view at 80x24 of lint_target blocking, whose intervals
            draw long-poll (a detail of 150 columns) and blocking-call
            together: every lint of the last interval (the text printed
            when the count runs out) is named on the view's lint line
            (blocking-call was pushed off it by long-poll's detail).
  first_interval
            the first interval after attaching by pid to a busy weft-load
            (bursty, 2 workers): --batch --json -n 1 and the live view with
            count 1 (its text on exit) show the polls beside the parks.
            They read 0 polls/s in every run (the attach snapshot was not
            given the poll counts read from memory, which the interval in
            which a core's counters are first known counts from).
  tui_cmd   the live view with `-- review_target restart 40 0.3` (a line
            of output every 0.3 s) under tmux at 80x24: no output of the
            command on the view, which keeps its 24 lines; on q schedtop
            names the log file in TMPDIR that holds the output.
            (REVIEW_TARGET)
  escapes   a target whose name and threads' names hold ESC, BEL and the C1
            CSI (U+009B), its libweft loaded from a directory whose name
            holds them too: `schedtop list`, `--batch` text and `--no-bpf`
            text (with --prefix matching one such thread, and with one
            matching none, which lists the names) print no raw control
            byte, and show the escapes as \\xNN. (REVIEW_TARGET)
  restart   a target that destroys its 2-worker runtime and creates another
            40 times, every 0.1 s, while busy (at the same addresses, runtime
            and cores' counters, as glibc often gives them): under
            `schedtop --batch --json 0.25 -- review_target restart 40 0.1`
            every worker's totals
            since attach (all but polls, which count since the runtime
            started) never decrease and stay plausible; nor does
            total.polls, and no interval but maybe the first and the
            last shows polls/s 0 (a restart read as 0). (REVIEW_TARGET)
  keep_outputs
            output files that exist already (trace's -o FILE, its .jsonl
            and .latency.json, --batch --record FILE) are left as they were
            by a run that fails before it has anything to write: -p of a
            process that is not a weft program, a pid that does not exist,
            a target that exits during --warmup (trace removed the old
            trace, --record emptied the file); a new file is not left
            behind; a run that works replaces them whole.
  trace_stdout
            `trace -o /dev/stdout` into a pipe and into a file: status 0,
            stdout is the trace-event JSON alone (the summary on stderr),
            no /dev/stdout.jsonl or .latency.json made (it exited 1 into a
            pipe, truncating it failed).
  batch_pipe
            `schedtop --batch --json 0.2` (-p PID, --no-bpf, and -- CMD)
            into a pipe whose reader reads one line and leaves (`| head -1`):
            schedtop ends within seconds, status 1, no message, and stops
            CMD (SIGPIPE is ignored: the writes failed with EPIPE and it ran
            on, attached, until the target exited).
  hangup    SIGHUP to `schedtop --batch --json 0.2 -- CMD` (its terminal
            hung up): it ends as on SIGTERM - a final object ending
            "signal", status 0, CMD stopped (it was killed where it stood,
            CMD running on). Started with SIGHUP ignored (nohup), it runs on.
  files     the commands that read files, no BPF needed: `convert EV -o EV`
            (also through ./ and a symlink) exits 2 naming the reason, the
            events unchanged (the trace was written over them, exit 0);
            `convert -o OLD` whose write fails (16 KiB file size limit)
            exits 1 with OLD as it was (truncated, a cut trace left).
            `diff A B > /dev/full` (text and --json) exits 2 saying why, and
            `diff DIR B` says "Is a directory" (both were: exit 0 silent,
            "DIR: empty"); `convert DIR -o T` and `report DIR` say "Is a
            directory", exit 1 (an empty trace written with exit 0; "need
            at least 2 snapshots, found 0"); `report` of --batch --json
            output, events, a record dump, weft-load's output says what
            the file is and what reads it (all were "malformed snapshot
            1"); `diff run.json ...` (trace-event JSON, large and
            small) says it is one and points to the .jsonl (it said
            "run.json:1: not JSON"); `report`, `report --json`, `list`, `convert`
            and `-h` into /dev/full exit 1 saying why (they exited 0);
            last, with BPF, `metrics -p PID --once > /dev/full` exits 1
            saying why (it exited 0); `record` and `metrics` -p of a
            zombie say it has exited (they said it does not use weft);
            `--no-bpf -p` of one exits 1 saying so (it printed an empty
            report, exit 0).
  perf      perf probe + perf record of sdt_weft:steal, nothing else
            attached: perf sets the semaphore, and records exactly as many
            steals as the runtime counted. Mounts tracefs when missing.

Exit 0 pass, 1 fail, 77 skip (needs root or the capabilities of
docs/OBSERVABILITY.md, Privileges). When the environment variable CI is
"true", a skip is a failure.
"""
import json
import os
import re
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


def pane_readers(T):
    """capture-pane of tmux session "st" on server T, and a wait for a text on it (10 s)."""
    def cap():
        return subprocess.run(T + ["capture-pane", "-p", "-t", "st"], stdout=subprocess.PIPE,
                              text=True).stdout

    def wait_for(text):
        end = time.time() + 10
        while time.time() < end:
            c = cap()
            if text in c:
                return c
            time.sleep(0.2)
        fail("%r never appeared; screen:\n%s" % (text, cap()))
    return cap, wait_for


def kill_and_remove(procs, d):
    """Kill the processes a test started that still run, remove its directory."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(d, ignore_errors=True)


def skip(msg):
    if os.environ.get("CI") == "true":
        print("FAIL (skip not allowed in CI):", msg)
        sys.exit(1)
    print("SKIP:", msg)
    sys.exit(SKIP)


def run(args, timeout=60, **kw):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, **kw)
    if p.returncode == SKIP and os.path.basename(args[0]) == "schedtop":
        skip("schedtop exited 77: " + p.stderr.strip())
    return p


def jlines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def wait_ready(proc):
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        fail("workload did not get ready: %r" % line)
    return int(line.split()[1])


def test_faults(st, wl_test, wl, lib):
    d = tempfile.mkdtemp(prefix="schedtop-faults-")
    try:
        # -n ran out: "end":"count"; the recording keeps the pid
        load = subprocess.Popen([wl_test, "2", "400"], stdout=subprocess.DEVNULL)
        time.sleep(0.3)
        rec = os.path.join(d, "rec.jsonl")
        p = run([st, "-p", str(load.pid), "--batch", "--json", "-n", "2", "0.3", "--record", rec])
        if p.returncode:
            load.kill()
            fail("schedtop -n 2 exited %d: %s" % (p.returncode, p.stderr))
        objs = jlines(p.stdout)
        if [o["final"] for o in objs] != [False, True] or objs[-1].get("end") != "count":
            fail("-n 2: want final only on the last, end=count: %s" %
                 [(o["final"], o.get("end")) for o in objs])
        if "end" in objs[0]:
            fail("a non-final object has an end reason")
        # the text's closing totals say what their POLLS counts (it said
        # "since attach", but polls are the runtime's own counter)
        p = run([st, "-p", str(load.pid), "--batch", "-n", "1", "0.2"])
        if "--- totals: POLLS since the runtime started, the others since attach" \
                not in p.stdout:
            fail("batch totals title: %s" % p.stdout[-600:])
        # SIGINT to schedtop: "end":"signal"
        sp = subprocess.Popen([st, "-p", str(load.pid), "--batch", "--json", "0.2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = sp.stdout.readline()
        if not first:
            load.kill()
            fail("schedtop printed nothing: %s" % sp.stderr.read())
        sp.send_signal(signal.SIGINT)
        rest, err = sp.communicate(timeout=10)
        last = jlines(first + rest)[-1]
        if not last["final"] or last.get("end") != "signal":
            fail("SIGINT: last object %s/%s" % (last["final"], last.get("end")))
        load.kill()
        load.wait()
        # the target exits: "end":"target-exited"
        load = subprocess.Popen([wl_test, "--wait", "2", "20"], stdout=subprocess.PIPE,
                                text=True)
        pid = wait_ready(load)
        sp = subprocess.Popen([st, "-p", str(pid), "--batch", "--json", "0.2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = sp.stdout.readline()   # attached
        os.kill(pid, signal.SIGUSR1)
        load.communicate(timeout=30)
        rest, err = sp.communicate(timeout=10)
        objs2 = jlines(first + rest)
        if sp.returncode or not objs2 or objs2[-1].get("end") != "target-exited":
            fail("target exit: rc %d, end %s: %s" % (sp.returncode, objs2 and
                                                     objs2[-1].get("end"), err))
        # report: the recorded pid, and end-of-file on the last object
        p = run([st, "report", rec])
        head = p.stdout.splitlines()[0] if p.stdout else ""
        print("report:", head[:100])
        if p.returncode or not head.startswith("pid %d " % objs[0]["pid"]):
            fail("report's header is not 'pid %d ...': %r" % (objs[0]["pid"], head))
        rj = jlines(run([st, "report", rec, "--json"]).stdout)
        if rj[-1].get("end") != "end-of-file" or rj[-1]["pid"] != objs[0]["pid"]:
            fail("report --json: last end %s pid %s" % (rj[-1].get("end"), rj[-1]["pid"]))
        # --no-bpf on threads named otherwise: the names found and a --prefix
        load = subprocess.Popen([wl, "--shape", "skewed", "--workers", "2", "--duration", "5",
                                 "-q"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        p = run([st, "-p", str(load.pid), "--no-bpf", "--batch", "-n", "1", "0.2"])
        pj = run([st, "-p", str(load.pid), "--no-bpf", "--batch", "--json", "-n", "1", "0.2"])
        load.kill()
        load.wait()
        print(p.stdout)
        names = jlines(pj.stdout)[-1]["other_thread_names"]
        if "load-0" not in names or "load-1" not in names:
            fail("--no-bpf JSON other_thread_names lacks load-0/load-1: %s" % names)
        if "threads, named:" not in p.stdout or "load-0" not in p.stdout or \
                "try --prefix load" not in p.stdout:
            fail("--no-bpf text does not list the threads / suggest --prefix load")
        # no such process: says so, and not "permission"
        pid = 4194303
        while os.path.exists("/proc/%d" % pid):
            pid -= 1
        for extra in ([], ["--no-bpf"]):
            p = run([st, "-p", str(pid), "--batch", "-n", "1"] + extra)
            if p.returncode != 1 or p.stderr.strip() != "schedtop: no process %d" % pid:
                fail("missing pid%s: rc %d, %r" % (extra, p.returncode, p.stderr))
        print("PASS: end reasons, report pid, --no-bpf thread names, no-process message")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_perf(st, wl_test, wl, lib):
    perf = shutil.which("perf")
    if not perf:
        skip("perf not installed (linux-perf)")
    if os.geteuid() != 0:
        skip("perf probe needs root")
    if not os.path.exists("/sys/kernel/tracing/uprobe_events"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        if not os.path.exists("/sys/kernel/tracing/uprobe_events"):
            skip("no tracefs")
    lib = os.path.realpath(lib)
    # uprobe_events is one list for the machine: runs of this test from other
    # build trees take turns, and a stale event from a killed run goes first
    import fcntl
    lock = open("/tmp/weft-schedtop-perf-probe.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    subprocess.run([perf, "probe", "-d", "sdt_weft:*"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    d = tempfile.mkdtemp(prefix="schedtop-perf-")
    try:
        run([perf, "buildid-cache", "--add", lib])
        p = run([perf, "probe", "-x", lib, "sdt_weft:steal"])
        if p.returncode:
            fail("perf probe: %s" % p.stderr)
        load = subprocess.Popen([wl_test, "--wait", "2", "60"], stdout=subprocess.PIPE,
                                text=True)
        pid = wait_ready(load)
        data = os.path.join(d, "perf.data")
        rec = subprocess.Popen([perf, "record", "-e", "sdt_weft:steal", "-p", str(pid), "-o",
                                data], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
        time.sleep(1.5)   # perf has opened its events
        os.kill(pid, signal.SIGUSR1)
        out, _ = load.communicate(timeout=30)
        rec.wait(timeout=10)  # perf ends with its target
        metrics = json.loads(out.strip().splitlines()[-1])
        runtime = sum(w["steal_operations"] for w in metrics["worker"])
        script = run([perf, "script", "-i", data]).stdout
        seen = sum(1 for l in script.splitlines() if "sdt_weft:steal:" in l)
        print("runtime steal operations %d, perf events %d" % (runtime, seen))
        if runtime == 0:
            fail("the workload stole nothing: the test cannot fail usefully")
        if seen != runtime:
            fail("perf recorded %d steals, the runtime counted %d" % (seen, runtime))
        print("PASS: perf sets the semaphore itself and sees every steal")
    finally:
        subprocess.run([perf, "probe", "-d", "sdt_weft:*"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        shutil.rmtree(d, ignore_errors=True)


def test_diff(st, wl_test, wl, lib):
    d = tempfile.mkdtemp(prefix="schedtop-diff-")
    try:
        runs = {}
        for name, extra in (("fast", []), ("slow", ["--extra-spin", "20000"])):
            load_json = os.path.join(d, name + ".load.json")
            p = run([st, "--batch", "--json", "0.25", "--", wl, "--shape", "skewed",
                     "--workers", "2", "--duration", "2", "-q", "--output", load_json] + extra,
                    timeout=60)
            if p.returncode:
                fail("schedtop -- weft-load (%s) exited %d: %s" % (name, p.returncode, p.stderr))
            st_json = os.path.join(d, name + ".schedtop.jsonl")
            with open(st_json, "w") as f:   # weft-load's own summary shares stdout
                f.write("".join(l + "\n" for l in p.stdout.splitlines()
                                if l.startswith('{"schema":"schedtop/1"')))
            runs[name] = (load_json, st_json)
        for which in (0, 1):
            a, b = runs["fast"][which], runs["slow"][which]
            p = run([st, "diff", a, b, "--fail-over", "30"])
            print(p.stdout)
            key = "throughput.tasks_per_s" if which == 0 else "polls_per_s"
            row = [l for l in p.stdout.splitlines() if l.startswith(key + " ")]
            if p.returncode != 1:
                fail("diff fast slow --fail-over 30 exited %d, want 1: %s" %
                     (p.returncode, p.stderr))
            if not row or "* worse" not in row[0] or "PAST --fail-over" not in row[0]:
                fail("%s not marked as a significant worse change past the threshold: %s" %
                     (key, row))
            pj = run([st, "diff", a, b, "--fail-over", "30", "--json"])
            obj = json.loads(pj.stdout)
            m = [x for x in obj["metrics"] if x["name"] == key][0]
            if not (m["significant"] and m["verdict"] == "worse" and m["past_threshold"]
                    and m["change_pct"] < -30):
                fail("--json: %s" % m)
            p = run([st, "diff", a, a, "--fail-over", "0"])
            if p.returncode != 0:
                fail("a run against itself exited %d:\n%s" % (p.returncode, p.stdout))
            p = run([st, "diff", b, a, "--fail-over", "30", "--json"])
            m = [x for x in json.loads(p.stdout)["metrics"] if x["name"] == key][0]
            if m["verdict"] != "better":
                fail("slow -> fast: %s is not better: %s" % (key, m))
        # traces (schedtop trace JSON lines): per-second event rates; neutral,
        # so a change is shown but never gates
        fx = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                          "steal-trace.jsonl")
        lines = open(fx).read().splitlines()
        fewer = os.path.join(d, "fewer-steals.jsonl")
        with open(fewer, "w") as f:
            n = 0
            for l in lines:
                if '"type":"steal"' in l:
                    n += 1
                    if n % 2:
                        continue
                f.write(l + "\n")
        p = run([st, "diff", fx, fewer, "--fail-over", "0", "--json"])
        m = {x["name"]: x for x in json.loads(p.stdout)["metrics"]}
        if p.returncode != 0 or m["steal events/s"]["verdict"] != "changed" or \
                m["steal events/s"]["change_pct"] > -40:
            fail("trace diff: rc %d, %s" % (p.returncode, m.get("steal events/s")))
        bad = os.path.join(d, "bad.json")
        with open(bad, "w") as f:
            f.write("{\"hello\":1}\n")
        p = run([st, "diff", runs["fast"][0], bad])
        if p.returncode != 2 or "not weft-load" not in p.stderr:
            fail("diff with a non-recording: rc %d, %s" % (p.returncode, p.stderr))
        p = run([st, "diff", runs["fast"][0], runs["fast"][1]])
        if p.returncode != 2 or "nothing to compare" not in p.stderr:
            fail("diff weft-load vs schedtop: rc %d, %s" % (p.returncode, p.stderr))
        print("PASS: the slower run is flagged in both recordings and the exit status gates")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fixture(name):
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", name)


def test_files(st, wl_test, wl, lib):
    """The commands that read files (convert, diff), no BPF: what they do
    with outputs that name their input and with outputs that fail."""
    d = tempfile.mkdtemp(prefix="schedtop-files-")
    try:
        ev = os.path.join(d, "run.events.jsonl")
        shutil.copy(fixture("steal-trace.jsonl"), ev)
        with open(ev, "rb") as f:
            before = f.read()
        link = os.path.join(d, "link.json")
        os.symlink(ev, link)
        # convert -o its input (or a link to it): the trace was written over
        # the events once read, exit 0 (a review, 2026-12-06)
        for o in (ev, os.path.join(d, ".", "run.events.jsonl"), link):
            p = run([st, "convert", ev, "-o", o])
            if p.returncode != 2 or "would destroy the events" not in p.stderr:
                fail("convert %s -o %s: rc %d, want 2 with a reason: %r" % (ev, o, p.returncode, p.stderr))
            with open(ev, "rb") as f:
                if f.read() != before:
                    fail("convert -o %s changed the input" % o)
        p = run([st, "convert", ev, "-o", os.path.join(d, "run.json")])
        if p.returncode != 0 or "traceEvents" not in open(os.path.join(d, "run.json")).read():
            fail("convert to another file: rc %d %r" % (p.returncode, p.stderr))
        # convert -o an earlier trace, the write failing (the file size
        # limit, 16 KiB, standing in for a full disk): the earlier trace
        # was truncated and a cut one left in its place, exit 1 (a review,
        # 2026-12-07). Now it is as it was, and no file is left beside it.
        import resource

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
        with open(os.path.join(d, "run.json"), "rb") as f:
            good = f.read()
        if len(good) <= 16384:
            fail("the converted trace (%d bytes) fits under the 16 KiB limit" % len(good))
        names = sorted(os.listdir(d))
        p = run([st, "convert", fixture("steal-trace.jsonl"), "-o", os.path.join(d, "run.json")],
                preexec_fn=limit)
        with open(os.path.join(d, "run.json"), "rb") as f:
            kept = f.read() == good
        if p.returncode != 1 or "File too large" not in p.stderr or not kept or sorted(os.listdir(d)) != names:
            fail("convert -o past the limit: rc %d %r, earlier trace kept: %s, files %s (were %s)"
                 % (p.returncode, p.stderr, kept, sorted(os.listdir(d)), names))
        # convert -o as an open for writing would (2026-12-07, a listed
        # limit): OUT keeps its mode (it got 0666 & ~umask); as nobody, a
        # read-only OUT is refused and left (it was replaced), and an OUT
        # nobody may write in a directory nobody may not is written in
        # place (it failed: no temp file could be made there)
        os.chmod(os.path.join(d, "run.json"), 0o640)
        p = run([st, "convert", fixture("steal-trace.jsonl"), "-o", os.path.join(d, "run.json")])
        mode = os.stat(os.path.join(d, "run.json")).st_mode & 0o777
        if p.returncode != 0 or mode != 0o640:
            fail("convert -o a 0640 file: rc %d, mode now %o: %r" % (p.returncode, mode, p.stderr))
        if os.geteuid() == 0 and shutil.which("setpriv"):
            os.chmod(d, 0o755)
            mine, fixed = os.path.join(d, "mine"), os.path.join(d, "fixed")
            os.mkdir(mine)
            os.mkdir(fixed, 0o755)
            os.chown(mine, 65534, 65534)
            ro, rw = os.path.join(mine, "ro.json"), os.path.join(fixed, "rw.json")
            for path, m in ((ro, 0o444), (rw, 0o644)):
                with open(path, "w") as f:
                    f.write("earlier\n")
                os.chown(path, 65534, 65534)
                os.chmod(path, m)
            ev_copy = os.path.join(mine, "ev.jsonl")
            shutil.copy(fixture("steal-trace.jsonl"), ev_copy)
            os.chmod(ev_copy, 0o644)
            nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            p = run(nobody + [st, "convert", ev_copy, "-o", ro])
            with open(ro) as f:
                kept = f.read() == "earlier\n"
            if p.returncode != 1 or "Permission denied" not in p.stderr or not kept:
                fail("as nobody, convert -o a read-only file: rc %d, kept %s: %r"
                     % (p.returncode, kept, p.stderr))
            p = run(nobody + [st, "convert", ev_copy, "-o", rw])
            with open(rw) as f:
                got = f.read()
            if p.returncode != 0 or "traceEvents" not in got or sorted(os.listdir(fixed)) != ["rw.json"]:
                fail("as nobody, convert -o a writable file in a fixed directory: rc %d, files %s: %r"
                     % (p.returncode, sorted(os.listdir(fixed)), p.stderr))
        else:
            print("note: convert -o as nobody not checked (needs root and setpriv)")
        print("PASS: convert refuses -o naming its input; converts to another file; a failed write "
              "leaves the earlier trace as it was; -o keeps OUT's mode, refuses a read-only OUT "
              "and writes in place in a directory it may not write")
        # diff into stdout that takes nothing: exit 0, nothing said, a CI
        # gate read "no regression" (a review, 2026-12-06)
        fx = fixture("steal-trace.jsonl")
        for extra in ([], ["--json"]):
            with open("/dev/full", "w") as full:
                p = subprocess.run([st, "diff", fx, fx] + extra, stdout=full, stderr=subprocess.PIPE,
                                   text=True, timeout=30)
            if p.returncode != 2 or "writing to stdout: No space left on device" not in p.stderr:
                fail("diff %s > /dev/full: rc %d, want 2 and the reason: %r" % (extra, p.returncode, p.stderr))
        # a directory was read as an empty file ("DIR: empty")
        p = run([st, "diff", d, fx])
        if p.returncode != 2 or "%s: Is a directory" % d not in p.stderr:
            fail("diff DIR FILE: rc %d, want 2 and 'Is a directory': %r" % (p.returncode, p.stderr))
        # trace's run.json given for its run.jsonl: "run.json:1: not JSON"
        # (a large one) or "one JSON object, not ..." (a review, 2026-12-06)
        big = os.path.join(d, "big.json")   # > 4096 values, one event a line as schedtop writes
        with open(big, "w") as f:
            f.write('{"displayTimeUnit":"ns","traceEvents":[\n')
            f.write(",\n".join('{"name":"running","ph":"X","ts":%d,"dur":5,"pid":1,"tid":2}' % i
                                for i in range(1000)))
            f.write("\n]}\n")
        small = os.path.join(d, "run.json")   # converted above
        with open(small, "w") as f:
            f.write('{"displayTimeUnit":"ns","traceEvents":[{"name":"x","ph":"i","ts":1,"pid":1,"tid":1}]}\n')
        for tj in (big, small):
            p = run([st, "diff", tj, fx])
            if p.returncode != 2 or "a trace-event file" not in p.stderr or ".jsonl" not in p.stderr:
                fail("diff of trace-event JSON %s: rc %d, want 2 naming the .jsonl: %r" % (tj, p.returncode, p.stderr))
        print("PASS: diff says a stdout that takes nothing and a directory, exit 2; a trace-event file "
              "is named as such")
        # a directory opened and read as an empty input: `convert DIR -o T`
        # wrote an empty trace, exit 0; `report DIR` "need at least 2
        # snapshots, found 0" (a review, 2026-12-06)
        t = os.path.join(d, "fromdir.json")
        for args in ([st, "convert", d, "-o", t], [st, "report", d]):
            p = run(args)
            if p.returncode != 1 or "%s: Is a directory" % d not in p.stderr or os.path.exists(t):
                fail("%s DIR: rc %d, want 1 and 'Is a directory', nothing written: %r"
                     % (args[1], p.returncode, p.stderr))
        # report of schedtop's other outputs: "malformed snapshot 1" for
        # each (a review, 2026-12-06); now what the file is, and what reads it
        def put(name, text):
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(text)
            return path
        for path, want in (
                (put("batch.jsonl", '{"schema":"schedtop/1","final":false,"interval_s":1,"worker":[]}\n' * 3),
                 "--batch --json interval reports, not snapshots"),
                (ev, "schedtop events (trace or record JSON lines), not snapshots: schedtop convert"),
                (put("dump.json", '{\n  "schema": "schedtop-record/1",\n  "intervals": []\n}\n'),
                 "a schedtop record dump"),
                (put("load.json", '{"tool": "weft-load", "version": 1}\n'), "weft-load's output, not snapshots"),
                (put("other.txt", "hello\n"), "malformed snapshot 1 (report reads what schedtop --batch --record")):
            p = run([st, "report", path])
            if p.returncode != 1 or want not in p.stderr:
                fail("report %s: rc %d, want 1 and %r: %r" % (os.path.basename(path), p.returncode, want, p.stderr))
        # the other commands whose stdout is their result: exit 0, silent
        for args, what in (([st, "report", fixture("skewed.snap.jsonl")], "report"),
                           ([st, "report", fixture("skewed.snap.jsonl"), "--json"], "report"),
                           ([st, "list"], "list"),
                           ([st, "convert", fx, "-o", os.path.join(d, "c.json")], "convert"),
                           ([st, "-h"], "--help")):
            with open("/dev/full", "w") as full:
                p = subprocess.run(args, stdout=full, stderr=subprocess.PIPE, text=True, timeout=30)
            if p.returncode != 1 or "%s: writing to stdout: No space left on device" % what not in p.stderr:
                fail("%s > /dev/full: rc %d, want 1 and the reason: %r" % (args[1:], p.returncode, p.stderr))
        print("PASS: report, list, convert and -h say a stdout that takes nothing, exit 1")
        # metrics --once likewise (BPF: last, a skip skips only this)
        load = subprocess.Popen([wl_test, "2", "400"], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            with open("/dev/full", "w") as full:
                p = subprocess.run([st, "metrics", "-p", str(load.pid), "--once", "0.2"], stdout=full,
                                   stderr=subprocess.PIPE, text=True, timeout=30)
        finally:
            load.kill()
            load.wait()
        if p.returncode == SKIP:
            skip("schedtop exited 77: " + p.stderr)
        if p.returncode != 1 or "writing the scrape to stdout: No space left on device" not in p.stderr:
            fail("metrics --once > /dev/full: rc %d, want 1 and the reason: %r" % (p.returncode, p.stderr))
        print("PASS: metrics --once says a stdout that takes nothing, exit 1")
        # -p of a process that has exited and is not reaped yet (a zombie):
        # "process N does not use weft" (a review, 2026-12-06)
        z = subprocess.Popen([wl_test, "2", "20"], stdout=subprocess.DEVNULL)
        try:
            deadline = time.time() + 20
            while time.time() < deadline:
                with open("/proc/%d/stat" % z.pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
                time.sleep(0.05)
            else:
                fail("weft_load 2 20 did not exit within 20 s")
            # --no-bpf printed one empty report and exited 0 (a listed
            # limit, mended 2026-12-06)
            for mode in (["record", "-o", os.path.join(d, "zdir")], ["metrics", "--once", "0.2"],
                         ["--no-bpf", "--batch", "-n", "1", "0.2"]):
                p = run([st] + mode + ["-p", str(z.pid)])
                if p.returncode != 1 or "process %d has exited" % z.pid not in p.stderr:
                    fail("%s -p ZOMBIE: rc %d, want 1 and 'has exited': %r" % (mode[0], p.returncode, p.stderr))
            if os.path.exists(os.path.join(d, "zdir")):
                fail("record -p ZOMBIE left its DIR")
        finally:
            z.wait()
        print("PASS: -p of an exited, unreaped process says it has exited")
        # -p of a thread id: refused with the process's id, with BPF and
        # without; --no-bpf watched it as "pid TID" (/proc/TID/task lists
        # the whole group) and ended as exited when that thread did (a
        # review of OBSERVABILITY.md, 2026-12-07)
        load = subprocess.Popen([wl_test, "--wait", "2", "600"], stdout=subprocess.PIPE, text=True)
        try:
            wait_ready(load)
            os.kill(load.pid, signal.SIGUSR1)
            deadline = time.time() + 20
            tids = []
            while not tids and time.time() < deadline:
                tids = [int(x) for x in os.listdir("/proc/%d/task" % load.pid) if int(x) != load.pid]
                time.sleep(0.05)
            if not tids:
                fail("weft_load started no thread within 20 s")
            for mode in (["--batch", "-n", "1", "0.2"], ["--no-bpf", "--batch", "-n", "1", "0.2"]):
                p = run([st] + mode + ["-p", str(tids[0])])
                want = "%d is a thread of process %d: use -p %d" % (tids[0], load.pid, load.pid)
                if p.returncode == SKIP:
                    continue  # no BPF here: the --no-bpf run still counts
                if p.returncode != 1 or want not in p.stderr:
                    fail("%s -p TID: rc %d, want 1 and %r: %r" % (mode[0], p.returncode, want, p.stderr))
        finally:
            load.kill()
            load.wait()
        print("PASS: -p of a thread id names the process to watch instead")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def prom_parser():
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        # the Debian package, when python3 here is another interpreter
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            skip("python3-prometheus-client is not installed (scripts/setup-deps)")
    return text_string_to_metric_families


def check_scrape(parse, text):
    """Parse and check one scrape; returns {(sample name, labels): value}."""
    fams = list(parse(text))
    if not fams:
        fail("empty scrape")
    vals = {}
    for fam in fams:
        if not fam.name.startswith("weft_"):
            fail("metric %s lacks the weft_ prefix" % fam.name)
        if fam.type not in ("counter", "gauge", "histogram"):
            fail("%s: type %s" % (fam.name, fam.type))
        buckets = {}
        for smp in fam.samples:
            key = (smp.name, tuple(sorted((k, v) for k, v in smp.labels.items() if k != "le")))
            if fam.type == "counter" and not smp.name.endswith("_total"):
                fail("counter sample %s does not end in _total" % smp.name)
            if fam.name.startswith("weft_worker_") and not (
                    "worker" in smp.labels and "runtime" in smp.labels):
                fail("%s without worker/runtime labels: %s" % (smp.name, smp.labels))
            if smp.name.endswith("_bucket"):
                buckets.setdefault(key[1], []).append((float(smp.labels["le"]), smp.value))
            else:
                vals[key] = smp.value
        if fam.type == "histogram":
            if not fam.name.endswith(("_seconds", "_tasks")):
                fail("histogram %s has no unit suffix" % fam.name)
            for lab, bs in buckets.items():
                les = [b[0] for b in bs]
                if les != sorted(les) or les[-1] != float("inf"):
                    fail("%s: le bounds not increasing up to +Inf" % fam.name)
                counts = [b[1] for b in bs]
                if counts != sorted(counts):
                    fail("%s%s: buckets not cumulative" % (fam.name, lab))
                if vals.get((fam.name + "_count", lab)) != counts[-1]:
                    fail("%s%s: +Inf bucket != _count" % (fam.name, lab))
    return vals


def test_metrics(st, wl_test, wl, lib):
    import socket
    parse = prom_parser()
    curl = shutil.which("curl")
    if not curl:
        fail("curl not found")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    load = subprocess.Popen([wl_test, "2", "400"], stdout=subprocess.DEVNULL)
    srv = None
    try:
        time.sleep(0.3)
        addr = "127.0.0.1:%d" % port
        srv = subprocess.Popen([st, "metrics", "-p", str(load.pid), "--listen", addr],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        scrapes = []
        deadline = time.time() + 15
        while len(scrapes) < 2 and time.time() < deadline:
            if srv.poll() is not None:
                if srv.returncode == SKIP:
                    skip("schedtop exited 77: " + srv.stderr.read())
                fail("schedtop metrics exited %d: %s" % (srv.returncode, srv.stderr.read()))
            p = subprocess.run([curl, "-sSf", "--max-time", "5", "http://%s/metrics" % addr],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if p.returncode == 0:
                scrapes.append(p.stdout)
                time.sleep(0.7)
            else:
                time.sleep(0.2)   # not listening yet
        if len(scrapes) < 2:
            fail("no two scrapes within 15 s")
        v1, v2 = check_scrape(parse, scrapes[0]), check_scrape(parse, scrapes[1])
        for k, v in v1.items():
            if k[0].endswith("_total") and v2.get(k, -1) < v:
                fail("counter %s%s went down: %s -> %s" % (k[0], k[1], v, v2.get(k)))

        def tot(vals, name):
            return sum(v for k, v in vals.items() if k[0] == name)
        for name in ("weft_worker_polls_total", "weft_worker_steals_total"):
            if not tot(v2, name) > tot(v1, name):
                fail("%s did not grow between scrapes (%s -> %s)" %
                     (name, tot(v1, name), tot(v2, name)))
        if tot(v2, "weft_workers") != 2:
            fail("weft_workers %s, want 2" % tot(v2, "weft_workers"))
        p = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            "http://%s/other" % addr], stdout=subprocess.PIPE, text=True)
        if p.stdout != "404":
            fail("GET /other: %s, want 404" % p.stdout)
        print("\n".join(l for l in scrapes[1].splitlines()
                        if "polls_total" in l or "park_duration_seconds_bucket" in l
                        and "worker=\"0\"" in l)[:3000])
        once = run([st, "metrics", "-p", str(load.pid), "--once", "0.3"])
        if once.returncode:
            fail("metrics --once exited %d: %s" % (once.returncode, once.stderr))
        check_scrape(parse, once.stdout)
        print("PASS: 2 scrapes + --once parsed by prometheus_client, counters monotonic")
    finally:
        stop_metrics(srv, load)
    metrics_idle(st, parse)


def metrics_idle(st, parse):
    """A runtime whose workers sleep in their parks since before the attach
    (stall_target lockspare before SIGUSR1: 4 cores, 2 retired) fires no
    probe: the scrape had no worker series at all, where the live view
    names all four cores from the target's registry. Now the scrape reads
    the registry too: 4 workers, cores 0 and 1 parked, 2 and 3 stopped,
    and the polls the runtime counted (handoff_fiber's)."""
    tp = subprocess.Popen([os.environ["STALL_TARGET"], "1.0", "lockspare"],
                          stdout=subprocess.PIPE, text=True)
    try:
        l = tp.stdout.readline()
        if not l.startswith("tids "):
            fail("stall_target lockspare printed %r" % l)
        pid = wait_ready(tp)
        once = run([st, "metrics", "-p", str(pid), "--once", "0.3"])
        if once.returncode:
            fail("metrics --once exited %d: %s" % (once.returncode, once.stderr))
        v = check_scrape(parse, once.stdout)
    finally:
        tp.kill()
        tp.wait()
    workers = [x for k, x in v.items() if k[0] == "weft_workers"]
    states = sorted((int(dict(k[1])["worker"]), dict(k[1])["state"]) for k, x in v.items()
                    if k[0] == "weft_worker_state" and x == 1)
    polls = sum(x for k, x in v.items() if k[0] == "weft_worker_polls_total")
    print("idle runtime: weft_workers %s, states %s, polls %s" % (workers, states, polls))
    if workers != [4]:
        fail("metrics of a runtime idle since before the attach: weft_workers %s, not [4] "
             "(the live view names 4 cores)" % workers)
    if states != [(0, "parked"), (1, "parked"), (2, "stopped"), (3, "stopped")]:
        fail("metrics of the idle runtime: states %s, not cores 0 and 1 parked, 2 and 3 "
             "stopped" % states)
    if polls < 1:
        fail("metrics of the idle runtime: weft_worker_polls_total %s: handoff_fiber was "
             "polled" % polls)
    print("PASS: metrics name the workers of a runtime idle since before the attach")


def stop_metrics(srv, load):
    """A test's clean-up: the metrics server (if any, still running) asked
    to stop with SIGINT, killed after 10 s; then the load killed."""
    if srv and srv.poll() is None:
        srv.send_signal(signal.SIGINT)
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
    load.kill()
    load.wait()


def serve_metrics(st, pid, addr):
    """Start `schedtop metrics -p PID --listen ADDR`; (the process, its
    first stderr line: the serving line, or "" after 15 s). A skip (77)
    is a skip here."""
    import select
    srv = subprocess.Popen([st, "metrics", "-p", str(pid), "--listen", addr],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    r, _, _ = select.select([srv.stderr], [], [], 15)
    line = srv.stderr.readline() if r else ""
    if srv.poll() is not None and srv.returncode == SKIP:
        skip("schedtop exited 77: " + line + srv.stderr.read())
    return srv, line


def test_metrics_port(st, wl_test, wl, lib):
    """--listen's port (a review, 2026-12-06): 127.0.0.1:99999 listened on
    34463 (getaddrinfo keeps the low 16 bits) and said "serving
    http://127.0.0.1:99999/metrics"; port 0 (any free port) said
    ":0/metrics", never the port bound. Now a port past 65535 is refused
    before anything is attached, and the line names the port bound. And
    ":PORT" serves IPv4 and IPv6 scrapers (it bound 0.0.0.0 alone)."""
    import urllib.request
    load = subprocess.Popen([wl_test, "2", "1000"], stdout=subprocess.DEVNULL)
    srv = None
    try:
        time.sleep(0.3)
        for bad in ("127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80"):
            try:
                p = run([st, "metrics", "-p", str(load.pid), "--listen", bad], timeout=10)
            except subprocess.TimeoutExpired:
                fail("--listen %s: still serving after 10 s" % bad)
            if p.returncode != 1 or "from 0 to 65535" not in p.stderr:
                fail("--listen %s: rc %d, want 1 and the port's range: %r" % (bad, p.returncode, p.stderr))
        for addr, host in (("127.0.0.1:0", "127.0.0.1"), ("[::1]:0", "[::1]")):
            if addr.startswith("[") and not os.path.exists("/proc/net/if_inet6"):
                continue
            srv, line = serve_metrics(st, load.pid, addr)
            m = re.match(r"schedtop: serving http://(.*):(\d+)/metrics for pid \d+$", line.strip())
            if not m or m.group(1) != host or m.group(2) == "0":
                fail("--listen %s: %r, want the port bound" % (addr, line))
            url = "http://%s:%s/metrics" % (host, m.group(2))
            with urllib.request.urlopen(url, timeout=10) as r:
                body = r.read().decode()
            if r.status != 200 or "weft_worker_polls_total" not in body:
                fail("GET %s: %d %r" % (url, r.status, body[:200]))
            print("--listen %s -> %s" % (addr, line.strip()))
            srv.send_signal(signal.SIGINT)
            srv.wait(10)
        # ":PORT" listens on both families, as Prometheus's ":9090" (it
        # took getaddrinfo's first passive address, 0.0.0.0: IPv4 only)
        srv, line = serve_metrics(st, load.pid, ":0")
        m = re.match(r"schedtop: serving http://:(\d+)/metrics for pid \d+$", line.strip())
        if not m or m.group(1) == "0":
            fail("--listen :0: %r, want the port bound" % line)
        hosts = ["127.0.0.1"] + (["[::1]"] if os.path.exists("/proc/net/if_inet6") else [])
        for host in hosts:
            url = "http://%s:%s/metrics" % (host, m.group(1))
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    body = r.read().decode()
            except OSError as e:
                fail("--listen :0, GET %s: %s" % (url, e))
            if r.status != 200 or "weft_worker_polls_total" not in body:
                fail("GET %s: %d %r" % (url, r.status, body[:200]))
        print("--listen :0 -> %s, scraped over %s" % (line.strip(), " and ".join(hosts)))
        srv.send_signal(signal.SIGINT)
        srv.wait(10)
        print("PASS: ports past 65535 refused; port 0 names the port bound, which serves; "
              "':PORT' serves both families")
    finally:
        if srv and srv.poll() is None:
            srv.kill()
            srv.wait()
        load.kill()
        load.wait()


def test_metrics_http(st, wl_test, wl, lib):
    """The metrics server's answers to what is not a plain GET (a review,
    2026-12-06): HEAD got the whole scrape after the headers (RFC 9110: no
    content in a HEAD response); a 405 named no allowed method (Allow is
    required); a request line that is not METHOD PATH was closed without
    a word, and one holding a NUL byte after the client's 2 s. 16 workers:
    a scrape larger than the socket buffers hold (the client that does
    not read, below)."""
    import resource
    import select
    import socket
    load = subprocess.Popen([wl_test, "16", "3000"], stdout=subprocess.DEVNULL)
    srv = None
    try:
        time.sleep(0.3)
        srv, line = serve_metrics(st, load.pid, "127.0.0.1:0")
        m = re.match(r"schedtop: serving http://127\.0\.0\.1:(\d+)/metrics", line)
        if not m:
            fail("no serving line: %r" % line)
        port = int(m.group(1))

        def read_to_end(s, data):
            """Read s to its end into the bytearray data (kept on a reset)."""
            while True:
                k = s.recv(65536)
                if not k:
                    return bytes(data)
                data += k

        def ask(req):
            t = time.time()
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            data = bytearray()
            try:
                s.sendall(req)
                data = read_to_end(s, data)
            except ConnectionResetError:
                data = b"(reset) " + bytes(data)
            s.close()
            head, _, body = data.partition(b"\r\n\r\n")
            return head.decode(errors="replace"), body, time.time() - t

        head, body, _ = ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        glen = int(re.search(r"Content-Length: (\d+)", head).group(1))
        if not head.startswith("HTTP/1.1 200") or len(body) != glen:
            fail("GET: %r, %d bytes" % (head, len(body)))
        # The absolute form (a review, 2026-12-07), which a server must
        # accept (RFC 9112 3.2.2): it got 404.
        for target, want in ((b"http://127.0.0.1:%d/metrics" % port, "200"),
                             (b"HTTP://x/metrics?a=b", "200"), (b"http://x", "404"),
                             (b"http://x/other", "404")):
            head, body, _ = ask(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            if not head.startswith("HTTP/1.1 " + want):
                fail("GET %r: %r, want %s" % (target, head[:60], want))
        head, body, _ = ask(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        if not head.startswith("HTTP/1.1 200") or body or "Content-Length: " not in head:
            fail("HEAD /metrics: %r and %d bytes of body, want the headers alone" % (head, len(body)))
        head, body, _ = ask(b"POST /metrics HTTP/1.0\r\n\r\n")
        if not head.startswith("HTTP/1.1 405") or "\r\nAllow: GET, HEAD" not in head:
            fail("POST: %r, want 405 with Allow: GET, HEAD" % head)
        for bad in (b"GET\r\n\r\n", b"\x00\x01\x02\r\n\r\n"):
            head, body, took = ask(bad)
            if not head.startswith("HTTP/1.1 400") or took > 1.5:
                fail("%r: %r after %.1f s, want 400 at once" % (bad, head, took))
        # A scraper set to https (a review, 2026-12-07): its ClientHello
        # has no blank line, so it waited the 2 s for the head and was
        # closed without a word ("EOF"). Now what cannot begin a request
        # gets 400 at once, and a TLS client sees an HTTP answer.
        import ssl
        bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ssl.create_default_context().wrap_bio(bio_in, bio_out, server_hostname="x")
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        head, body, took = ask(bio_out.read())
        if not head.startswith("HTTP/1.1 400") or took > 1.5:
            fail("a TLS ClientHello: %r after %.1f s, want 400 at once" % (head[:60], took))
        # A head past the 4 KiB the server keeps (a review, 2026-12-07):
        # it answered, then closed with the rest unread, a reset that took
        # the answer away (ECONNRESET, nothing read). Now the rest is read
        # and dropped; past 64 KiB the answer is 431, and the server reads
        # on until the client is done sending, so it sees that answer.
        for big in (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n",
                    b"GET /metrics?" + b"q" * 10000 + b" HTTP/1.1\r\n\r\n"):
            head, body, _ = ask(big)
            if not head.startswith("HTTP/1.1 200") or b"weft_worker_polls_total" not in body:
                fail("a %d-byte GET: %r, %d bytes, want the scrape" % (len(big), head[:60], len(body)))
        head, body, took = ask(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
        if not head.startswith("HTTP/1.1 431") or took > 1.5:
            fail("a 100 KB head: %r after %.1f s, want 431 at once" % (head[:60], took))
        # Idle connections (a review, 2026-12-07): served one at a time,
        # each held every other one up for its 2 s; three made a scrape
        # wait 6 s. Now they are read side by side.
        idle = []
        for part in (b"", b"GET /met", b"GET /metrics HTTP/1.1\r\n"):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(part)
            idle.append(c)
        time.sleep(0.2)
        head, body, took = ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        if not head.startswith("HTTP/1.1 200") or took > 1.5:
            fail("GET behind 3 idle connections: %r after %.1f s, want the scrape at once"
                 % (head[:60], took))
        for c in idle:  # closed unanswered after their 2 s
            if c.recv(100) != b"":
                fail("an idle connection got an answer")
            c.close()
        # A scraper that does not read (a review, 2026-12-07): the answer
        # was written with a blocking loop, so one larger than the socket
        # buffers take held the whole server - every other scrape, the
        # target's exit - until that client read or went away. A small
        # receive buffer and small segments (so a small send buffer on
        # the server's side) make 16 workers' scrape more than they take.
        # Now the answer is sent as the socket takes it, within 10 s.
        get = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        until = time.time() + 20
        while True:  # the workers' figures appear as they start
            head, body, _ = ask(get)
            if len(body) > 100000 or time.time() > until:
                break
            time.sleep(0.2)
        if len(body) <= 100000:
            fail("16 workers' scrape is %d bytes, want more than 100 KB to test with" % len(body))

        def slow_client():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's least
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 88)
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            return s

        def whole_answer(data, what):
            h, _, b = data.partition(b"\r\n\r\n")
            m = re.search(rb"Content-Length: (\d+)", h)
            if not h.startswith(b"HTTP/1.1 200") or not m or int(m.group(1)) != len(b):
                fail("%s: %r, %d bytes of body" % (what, h[:200], len(b)))

        slow = slow_client()
        slow.sendall(get)
        time.sleep(0.5)
        try:
            head, body, took = ask(get)
        except socket.timeout:
            fail("GET while a client does not read its answer: no answer in 10 s")
        if not head.startswith("HTTP/1.1 200") or took > 5:
            fail("GET while a client does not read its answer: %r after %.1f s, want the scrape"
                 % (head[:60], took))
        data = read_to_end(slow, bytearray())  # read now, within its 10 s: the whole answer
        slow.close()
        whole_answer(data, "the slow client's answer")
        # Bytes after the request head (a review, 2026-12-07): a second,
        # pipelined request, or a body past what the first read takes,
        # was never read, and the close after the answer, with them
        # unread, was a reset that threw away what the kernel had not
        # sent yet: a client reading slowly got ECONNRESET after 8 KB.
        # Now they are read and dropped while the answer goes out, and
        # the server closes after the client does (or a 2 s linger).
        for what, first, then in (("a pipelined second request", get, get),
                                  ("a 20 KB body", get + b"x" * 20000, b"")):
            s = slow_client()
            s.sendall(first)
            time.sleep(0.2)  # the head read, the answer going out
            s.sendall(then)
            time.sleep(0.5)
            try:
                data = read_to_end(s, bytearray())
            except ConnectionResetError:
                fail("%s, read slowly: reset before the whole answer" % what)
            s.close()
            whole_answer(data, what)
        # Every slot held by a client that does not read (a review,
        # 2026-12-07): 16 such clients held all 16 slots for their 10 s,
        # and a scrape waited in the listen backlog (9.5 s). Now, with
        # every slot taken, the client stalled longest (0.5 s at least)
        # makes room for the next connection.
        hogs = []
        for _ in range(16):
            hogs.append(slow_client())
            hogs[-1].sendall(get)
        time.sleep(0.5)
        for n in range(2):
            try:
                head, body, took = ask(get)
            except socket.timeout:
                fail("GET %d while 16 clients do not read their answers: no answer in 10 s" % n)
            if not head.startswith("HTTP/1.1 200") or took > 5:
                fail("GET %d while 16 clients do not read their answers: %r after %.1f s, want "
                     "the scrape at once" % (n, head[:60], took))
        for h in hogs:
            h.close()
        head, body, _ = ask(b"GET /metrics HTTP/1.0\r\n\r\n")
        if not head.startswith("HTTP/1.1 200") or b"weft_worker_polls_total" not in body:
            fail("GET after the bad requests: %r" % head)
        # Out of fds (a review, 2026-12-07): accept4 failed with EMFILE,
        # the connection stayed in the backlog and the listener readable,
        # and the poll loop spun at 100% CPU (1.8 s of 2). Now the
        # listener is left alone 100 ms at a time, said once on stderr,
        # and the scrape is served once an fd is free. The limit is set
        # at the lowest free fd once the server holds no client socket.
        fdir = "/proc/%d/fd" % srv.pid
        until = time.time() + 10
        def fd_links():
            # an fd the server closes between the listing and its readlink
            # (a /proc file read per interval) is left out, not an error
            out = {}
            for f in os.listdir(fdir):
                try:
                    out[int(f)] = os.readlink(os.path.join(fdir, f))
                except FileNotFoundError:
                    pass
            return out
        while True:
            fds = fd_links()
            if sum(1 for v in fds.values() if v.startswith("socket:")) == 1 or time.time() > until:
                break
            time.sleep(0.1)
        lowest = min(set(range(len(fds) + 1)) - set(fds))
        old = resource.prlimit(srv.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (lowest, old[1]))
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(get)

        def cpu_s():
            f = open("/proc/%d/stat" % srv.pid).read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        c0, t0 = cpu_s(), time.time()
        time.sleep(2)
        used, took = cpu_s() - c0, time.time() - t0
        if used > 0.25 * took:
            fail("out of fds: the server used %.2f s of CPU in %.1f s, want it idle" % (used, took))
        if select.select([c], [], [], 0)[0]:
            fail("the limit at fd %d took no effect: answered %r" % (lowest, c.recv(100)[:30]))
        resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, old)
        whole_answer(read_to_end(c, bytearray()), "the scrape waiting while out of fds")
        c.close()
        srv.send_signal(signal.SIGINT)
        srv.wait(10)
        said = srv.stderr.read().count("cannot accept a connection: Too many open files")
        if said != 1:
            fail("out of fds: said %d times on stderr, want once" % said)
        print("PASS: HEAD has no body, 405 says Allow, a malformed request gets 400 at once, "
              "a large head is read whole (431 past 64 KiB), idle connections hold no scrape up, "
              "nor does a client that does not read, nor 16 of them; bytes after the head cost no "
              "answer; out of fds the server idles, says so once and serves once fds are free; "
              "a TLS ClientHello gets 400 at once")
    finally:
        stop_metrics(srv, load)


def exact_counts(out, what):
    lines = out.splitlines()
    st = [json.loads(l) for l in lines if l.startswith('{"schema":"schedtop/1"')]
    rt = [json.loads(l) for l in lines if l.startswith('{"workers"')]
    if not st or not rt:
        fail("%s: no schedtop JSON or no runtime metrics line:\n%s" % (what, out[-2000:]))
    last = st[-1]
    if last.get("end") != "target-exited":
        fail("%s: last object ends with %s" % (what, last.get("end")))
    bad = []
    for i, (r, b) in enumerate(zip(rt[-1]["worker"], last["worker"])):
        for rk, bk in (("steal_operations", "steals_in"), ("park_count", "parks"),
                       ("overflow_count", "overflows")):
            if r[rk] != b["total"][bk]:
                bad.append("w%d %s runtime %d bpf %d" % (i, rk, r[rk], b["total"][bk]))
    if sum(w["steal_operations"] for w in rt[-1]["worker"]) == 0:
        bad.append("no steals: the check cannot fail usefully")
    if bad:
        fail("%s: %s" % (what, "; ".join(bad)))
    return last["pid"]


def test_wrappers(st, wl_test, wl, lib):
    taskset = shutil.which("taskset")
    if not taskset:  # util-linux: the env -> taskset leg would drop out unseen
        fail("taskset not found (util-linux)")
    chains = [("sh -c", ["sh", "-c", "%s 2 40; true" % wl_test]),
              ("env", ["env", "WEFT_X=1", taskset, "-c", "0,1", wl_test, "2", "40"])]
    for what, cmd in chains:
        p = run([st, "--batch", "--json", "0.5", "--"] + cmd, timeout=60)
        print(what, "->", p.stderr.strip())
        if p.returncode:
            fail("%s: schedtop exited %d: %s" % (what, p.returncode, p.stderr))
        pid = exact_counts(p.stdout, what)
        if "started pid %d, which loads" % pid not in p.stderr:
            fail("%s: schedtop did not name the process it followed to" % what)
    p = run([st, "--no-bpf", "--batch", "--json", "0.3", "--", "sh", "-c",
             "%s 2 40; true" % wl_test], timeout=60)
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{"schema"')]
    if p.returncode or not objs or max(o["workers"] for o in objs) != 2:
        fail("--no-bpf -- sh -c: rc %d, workers %s" % (p.returncode,
                                                       [o["workers"] for o in objs]))
    # the wrapper's exit status is the wrapper's: it was told as the status
    # of the process followed ("schedtop: PID exited with status 3", PID
    # the program, which exited 0)
    p = run([st, "--batch", "--json", "0.5", "--", "sh", "-c", "%s 2 40; exit 3" % wl_test],
            timeout=60)
    pid = exact_counts(p.stdout, "sh -c ...; exit 3")
    print("sh -c '...; exit 3' ->", p.stderr.strip())
    if "%d exited with status 3" % pid in p.stderr or \
            not re.search(r"sh \(pid (\d+)\) exited with status 3", p.stderr) or \
            re.search(r"sh \(pid (\d+)\)", p.stderr).group(1) == str(pid):
        fail("the wrapper's status 3 not told as sh's: %s" % p.stderr)
    # ... and it is schedtop's exit status, as under time(1) or strace: a
    # failing `-- CMD` exited 0 (a listed limit, mended 2026-12-06); the
    # same without BPF, and a CMD killed by a signal is 128 + its number
    if p.returncode != 3:
        fail("-- sh -c '...; exit 3': schedtop exited %d, want CMD's 3" % p.returncode)
    p = run([st, "--no-bpf", "--batch", "0.3", "--", "sh", "-c", "%s 2 40; exit 4" % wl_test],
            timeout=60)
    if p.returncode != 4:
        fail("--no-bpf -- sh -c '...; exit 4': schedtop exited %d, want 4: %s"
             % (p.returncode, p.stderr))
    p = run([st, "--batch", "0.3", "--", "sh", "-c", "%s 2 40; kill -9 $$" % wl_test],
            timeout=60)
    if p.returncode != 128 + 9 or "killed by signal 9" not in p.stderr:
        fail("-- sh -c '...; kill -9 $$': schedtop exited %d, want 137: %s"
             % (p.returncode, p.stderr))
    # a CMD that schedtop stops itself (-n) is no failure, and not told as
    # one: "weft_load (pid N) killed by signal 15" followed every -n run
    for cmd in ([wl_test, "2", "100000"], ["sh", "-c", "%s 2 100000; true" % wl_test]):
        p = run([st, "--batch", "-n", "2", "0.3", "--", *cmd], timeout=60)
        if p.returncode != 0 or "killed by signal" in p.stderr or "exited with" in p.stderr:
            fail("-n 2 -- %s: rc %d, %r" % (cmd[0], p.returncode, p.stderr))
    many_children(st, wl_test)
    p = run([st, "--batch", "--", "sh", "-c", "true"])
    if p.returncode != 1 or "started nothing that does" not in p.stderr:
        fail("a wrapper without libweft: rc %d, %r" % (p.returncode, p.stderr))
    # a late loader: dlopen after 1.5 s
    late, plugin = os.environ.get("LATE_TARGET"), os.environ.get("LATE_PLUGIN")
    if not late or not plugin:
        fail("LATE_TARGET / LATE_PLUGIN not set (run through ctest)")
    tgt = subprocess.Popen([late, plugin, "1500", "2", "40"], stdout=subprocess.PIPE, text=True)
    pid = wait_ready(tgt)
    p = run([st, "-p", str(pid), "--wait", "--batch", "--json", "0.25"], timeout=60)
    tgt.wait(10)
    print("--wait ->", p.stderr.strip())
    if p.returncode:
        fail("--wait: schedtop exited %d: %s" % (p.returncode, p.stderr))
    if "waiting for process %d to load libweft" % pid not in p.stderr or \
            "process %d loaded" % pid not in p.stderr:
        fail("--wait: no waiting/loaded messages: %s" % p.stderr)
    objs = jlines(p.stdout)
    steals = sum(w["total"]["steals_in"] for w in objs[-1]["worker"])
    if objs[-1].get("end") != "target-exited" or objs[-1]["workers"] != 2 or steals == 0:
        fail("--wait: end %s, workers %s, steals %d" % (objs[-1].get("end"),
                                                        objs[-1]["workers"], steals))
    p = run([st, "-p", str(pid), "--wait", "--batch", "-n", "1"])
    if p.returncode != 1 or "no process %d" % pid not in p.stderr:
        fail("--wait on a gone pid: rc %d, %r" % (p.returncode, p.stderr))
    if os.geteuid() == 0 and shutil.which("setpriv"):
        root_wrapper_to_nobody(st, wl_test, lib)
    wrapper_as_nobody(st, wl_test, lib)
    print("PASS: sh -c, env/taskset, --no-bpf through sh -c, --wait on dlopen (%d steals), "
          "root through setpriv to nobody, as nobody with file capabilities" % steals)


def root_wrapper_to_nobody(st, wl_test, lib):
    """Root's schedtop follows a wrapper that becomes nobody (setpriv) to
    nobody's program: the loader schedtop runs to ask which libweft the
    program loads (ld.so --list, with the program's environment) runs as
    nobody too. It ran as root: nobody's LD_AUDIT library ran as root (found
    by a review). LD_DEBUG_OUTPUT makes each loader write a file owned by
    whoever ran it: the program's and schedtop's listing's."""
    d = tempfile.mkdtemp(prefix="schedtop-wrap-root-")
    try:
        os.chmod(d, 0o755)
        prog = os.path.join(d, "weft_load")
        shutil.copy(wl_test, prog)
        os.chmod(prog, 0o755)
        soname = [l.split()[0] for l in subprocess.run(["ldd", wl_test], stdout=subprocess.PIPE,
                                                          text=True).stdout.splitlines()
                  if l.split() and l.split()[0].startswith("libweft")][0]
        shutil.copy(lib, os.path.join(d, soname))
        os.chmod(os.path.join(d, soname), 0o755)
        out = os.path.join(d, "ld")
        os.mkdir(out)
        os.chmod(out, 0o777)
        p = run([st, "--batch", "--json", "0.5", "--", "setpriv", "--reuid=65534",
                 "--regid=65534", "--clear-groups", "env", "LD_LIBRARY_PATH=" + d,
                 "LD_DEBUG=files", "LD_DEBUG_OUTPUT=" + os.path.join(out, "ld"), prog, "2", "40"],
                timeout=60)
        print("root -- setpriv nobody ->", p.stderr.strip())
        if p.returncode:
            fail("root -- setpriv nobody: schedtop exited %d: %s" % (p.returncode, p.stderr))
        exact_counts(p.stdout, "root -- setpriv nobody")
        owners = {f: os.stat(os.path.join(out, f)).st_uid for f in os.listdir(out)}
        print("loader output files and their owners:", owners)
        if len(owners) < 2 or any(u != 65534 for u in owners.values()):
            fail("a loader ran as another user than nobody's program (want 2 or more files, "
                 "all uid 65534): %s" % owners)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def many_children(st, wl_test):
    """A wrapper with 300 jobs in the background when it execs the
    program: every one runs on, untraced, after the attach. schedtop
    followed at most 256 processes; the others stayed traced, unknown,
    and a job waiting on its child stopped at its SIGCHLD for good, then
    was killed when schedtop exited (PTRACE_O_EXITKILL): 232 of 300
    markers were made."""
    d = tempfile.mkdtemp(prefix="schedtop-bg-")
    try:
        p = run([st, "--batch", "--json", "0.5", "--", "sh", "-c",
                 "for i in $(seq 300); do (sleep 3; touch %s/m$i) & done; exec %s 2 40"
                 % (d, wl_test)], timeout=60)
        if p.returncode:
            fail("300 background jobs: schedtop exited %d: %s" % (p.returncode, p.stderr))
        exact_counts(p.stdout, "300 background jobs")
        end = time.time() + 30
        while time.time() < end and len(os.listdir(d)) < 300:
            time.sleep(0.2)
        n = len(os.listdir(d))
        print("300 background jobs ->", p.stderr.strip().splitlines()[-1:], n, "finished")
        if n != 300:
            fail("%d of the wrapper's 300 background jobs finished: the rest stayed traced "
                 "and died with schedtop: %s" % (n, p.stderr))
        # a child whose first stop came before its parent's fork event was
        # detached, then listed again from the event and waited for: the
        # target held 2 s at its exec, and a false "did not stop"
        if "did not stop to be detached" in p.stderr:
            fail("300 background jobs: %s" % p.stderr)
    finally:
        shutil.rmtree(d)


def wrapper_as_nobody(st, wl_test, lib):
    if os.geteuid() != 0 or not shutil.which("setcap") or not shutil.which("setpriv"):
        skip("the unprivileged wrapper check needs root, setcap and setpriv")
    d = tempfile.mkdtemp(prefix="schedtop-wrap-")
    try:
        os.chmod(d, 0o755)
        for src, name in ((st, "schedtop"), (wl_test, "weft_load")):
            shutil.copy(src, os.path.join(d, name))
            os.chmod(os.path.join(d, name), 0o755)
        soname = [l.split()[0] for l in subprocess.run(["ldd", wl_test], stdout=subprocess.PIPE,
                                                          text=True).stdout.splitlines()
                  if l.split() and l.split()[0].startswith("libweft")][0]
        shutil.copy(lib, os.path.join(d, soname))
        os.chmod(os.path.join(d, soname), 0o755)
        stc = os.path.join(d, "schedtop")
        subprocess.run(["setcap", "cap_bpf,cap_perfmon,cap_sys_admin=p", stc], check=True)
        script = ("grep -E '^Cap(Prm|Eff)' /proc/self/status; %s/weft_load 2 40; true" % d)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "env", "LD_LIBRARY_PATH=" + d, stc, "--batch", "--json", "0.5",
                            "--", "sh", "-c", script], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60, cwd=d)
        print("as nobody ->", p.stderr.strip())
        if p.returncode:
            fail("as nobody: schedtop -- sh -c exited %d: %s" % (p.returncode, p.stderr))
        caps = [l for l in p.stdout.splitlines() if l.startswith("Cap")]
        if len(caps) != 2 or any(int(l.split()[1], 16) for l in caps):
            fail("the wrapper held capabilities: %s" % caps)
        exact_counts(p.stdout, "as nobody")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def wait_recording(rp, secs=20):
    """The first line of `schedtop record`'s stderr, once recording runs
    ("schedtop: recording pid N: ..."): DIR is made before the attach, so
    its existence no longer says that recording runs. Skips on 77, fails
    when record ends or says something else first."""
    import select
    r, _, _ = select.select([rp.stderr], [], [], secs)
    line = rp.stderr.readline() if r else ""
    if "recording pid" not in line:
        if rp.poll() is not None or line == "":
            rp.wait(5)
            if rp.returncode == SKIP:
                skip("schedtop exited 77: " + line + rp.stderr.read())
        fail("record did not start recording: %r" % (line + (rp.stderr.read() if rp.poll() is not None else "")))
    return line


def load_dump(path):
    d = json.load(open(path))
    base = path[:-len(".json")]
    trace = json.load(open(base + ".trace.json"))
    evs = [json.loads(l) for l in open(base + ".events.jsonl") if l.strip()]
    w = d["window"]
    if len(evs) != w["events"]:
        fail("%s: %d events in the file, %d in the JSON" % (path, len(evs), w["events"]))
    out = [e["ts_ns"] for e in evs if not (w["start_ns"] <= e["ts_ns"] <= w["end_ns"])]
    if out:
        fail("%s: %d events outside the window" % (path, len(out)))
    if abs((w["end_ns"] - w["start_ns"]) / 1e9 - w["last_s"]) > 0.001:
        fail("%s: window %.3f s, --last %s" % (path, (w["end_ns"] - w["start_ns"]) / 1e9,
                                               w["last_s"]))
    if "traceEvents" not in trace:
        fail("%s: no traceEvents" % path)
    return d, evs


def dumps(d, reason):
    return sorted(os.path.join(d, f) for f in os.listdir(d)
                  if f.endswith("Z-%s.json" % reason))


def test_record(st, wl_test, wl, lib):
    d = tempfile.mkdtemp(prefix="schedtop-record-")
    procs = []
    try:
        # 1. a real lint: one 2 s poll
        stall = os.path.join(os.path.dirname(wl_test), "stall_target")
        tp = subprocess.Popen([stall, "2.0"], stdout=subprocess.PIPE, text=True)
        procs.append(tp)
        pid = wait_ready(tp)
        out1 = os.path.join(d, "lint")
        rp = subprocess.Popen([st, "record", "-p", str(pid), "--last", "5s", "-o", out1, "0.25"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(rp)
        wait_recording(rp)
        time.sleep(0.3)
        os.kill(pid, signal.SIGUSR1)
        t0 = time.time()
        found = []
        while time.time() - t0 < 1.8 and not found:   # while it still spins
            found = dumps(out1, "lint-long-poll")
            time.sleep(0.05)
        if not found:
            fail("no lint-long-poll dump within 1.8 s of the spin: %s" % os.listdir(out1))
        print("long-poll dump %.2f s after the spin began: %s" % (time.time() - t0, found[0]))
        tp.wait(10)
        _, err = rp.communicate(timeout=15)
        print(err.strip())
        dj, _ = load_dump(found[0])
        if dj["reason"] != "lint-long-poll" or dj["lint"] != "long-poll" or \
                "spin_poll" not in dj["detail"]:
            fail("lint dump: %s %s %s" % (dj["reason"], dj.get("lint"), dj.get("detail")))
        if not any(l["name"] == "long-poll" for iv in dj["intervals"] for l in iv["lints"]):
            fail("the dump's intervals do not show the lint")
        if rp.returncode or len(dumps(out1, "exit")) != 1:
            fail("record: rc %d, exit dumps %s" % (rp.returncode, dumps(out1, "exit")))
        # 2. on SIGUSR1: the window's bounds
        load = subprocess.Popen([wl_test, "2", "300"], stdout=subprocess.DEVNULL)
        procs.append(load)
        out2 = os.path.join(d, "sig")
        time.sleep(0.2)
        rp = subprocess.Popen([st, "record", "-p", str(load.pid), "--last", "2s", "-o", out2,
                               "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(rp)
        time.sleep(4)
        rp.send_signal(signal.SIGUSR1)
        deadline = time.time() + 5
        while not dumps(out2, "signal") and time.time() < deadline:
            time.sleep(0.05)
        rp.send_signal(signal.SIGINT)
        _, err = rp.communicate(timeout=15)
        print(err.strip())
        sig = dumps(out2, "signal")
        if len(sig) != 1 or rp.returncode:
            fail("signal dumps %s, rc %d" % (sig, rp.returncode))
        dj, evs = load_dump(sig[0])
        w = dj["window"]
        lead = (w["first_event_ns"] - w["start_ns"]) / 1e9
        print("signal dump: %d events, window %.3f s, oldest event %.3f s after its start, "
              "%d intervals" % (w["events"], (w["end_ns"] - w["start_ns"]) / 1e9, lead,
                                len(dj["intervals"])))
        if w["events"] < 100 or lead > 0.5 or w["truncated"]:
            fail("signal window: %d events, oldest %.3f s after the start, truncated %s"
                 % (w["events"], lead, w["truncated"]))
        if not 3 <= len(dj["intervals"]) <= 5:
            fail("%d interval reports in a 2 s window of 0.5 s intervals" % len(dj["intervals"]))
        if len(dumps(out2, "exit")) != 1:
            fail("no exit dump after SIGINT")
        # 3. bounded: 1024 events at most
        out3 = os.path.join(d, "small")
        load.kill()
        load.wait()
        load = subprocess.Popen([wl_test, "2", "300"], stdout=subprocess.DEVNULL)
        procs.append(load)
        time.sleep(0.2)
        rp = subprocess.Popen([st, "record", "-p", str(load.pid), "--last", "30s",
                               "--max-events", "1024", "--on", "exit", "-o", out3, "0.5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(rp)
        time.sleep(3)
        rp.send_signal(signal.SIGINT)
        rp.communicate(timeout=15)
        ex = dumps(out3, "exit")
        if len(ex) != 1 or os.listdir(out3) and [f for f in os.listdir(out3) if "-lint-" in f]:
            fail("--on exit: dumps %s" % os.listdir(out3))
        dj, evs = load_dump(ex[0])
        w = dj["window"]
        if w["events"] > 1024 or not w["truncated"] or w["complete_from_ns"] <= w["start_ns"]:
            fail("--max-events 1024: %s" % w)
        print("PASS: lint and signal dumps, window bounds, bounded ring (%d events, "
              "truncated)" % w["events"])
    finally:
        kill_and_remove(procs, d)


def test_record_stuck(st, wl_test, wl, lib):
    """record's interval reports are those of --batch --json: attached to a
    worker stuck in a poll since before the attach (lint_target stuck: it
    fires no probe), each interval has its row and, from the second on,
    stuck-worker. Before: 0 workers and no stuck-worker in every interval of
    the dump (the registry's cores and the depths read from memory were
    left out), so a lint-stuck-worker dump never came."""
    d = tempfile.mkdtemp(prefix="schedtop-record-stuck-")
    procs = []
    try:
        target = os.path.join(os.path.dirname(wl_test), "lint_target")
        tp = subprocess.Popen([target, "stuck", "20", "1"], stdout=subprocess.PIPE, text=True)
        procs.append(tp)
        pid = wait_ready(tp)
        time.sleep(0.3)   # stuck before the attach
        out = os.path.join(d, "rec")
        rp = subprocess.Popen([st, "record", "-p", str(pid), "--last", "5s", "--on", "exit",
                               "-o", out, "0.25"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(rp)
        wait_recording(rp)
        time.sleep(2)
        rp.send_signal(signal.SIGINT)
        _, err = rp.communicate(timeout=15)
        ex = dumps(out, "exit")
        if rp.returncode or len(ex) != 1:
            fail("record: rc %d, exit dumps %s: %s" % (rp.returncode, ex, err))
        dj, _ = load_dump(ex[0])
        ivs = dj["intervals"]
        seen = [(iv["workers"], sorted(l["name"] for l in iv["lints"])) for iv in ivs]
        print("intervals (workers, lints): %s" % seen)
        if len(ivs) < 4:
            fail("%d interval reports in 2 s of 0.25 s intervals" % len(ivs))
        if any(w != 1 for w, _ in seen):
            fail("the stuck worker has no row in some interval: %s" % seen)
        if any("stuck-worker" not in l for _, l in seen[1:]):
            fail("stuck-worker missing from the intervals after the first: %s" % seen)
        print("PASS: record's intervals show the stuck worker and its lint")
    finally:
        kill_and_remove(procs, d)


def test_record_dir(st, wl_test, wl, lib):
    """record -o DIR where DIR cannot take a dump: a regular file is refused
    at once (before: it recorded on and said "afile: Not a directory" only
    when a dump was due, the window it was to keep lost); dumps that could
    not be written are not counted as written (before: "1 dump written to
    DIR (some failed)" when none was)."""
    d = tempfile.mkdtemp(prefix="schedtop-record-dir-")
    procs = []
    try:
        load = subprocess.Popen([wl_test, "2", "1000"], stdout=subprocess.DEVNULL)
        procs.append(load)
        time.sleep(0.3)
        afile = os.path.join(d, "afile")
        open(afile, "w").close()
        try:
            p = run([st, "record", "-p", str(load.pid), "--last", "2s", "-o", afile, "0.5"],
                    timeout=10)
        except subprocess.TimeoutExpired:
            fail("record -o FILE: still recording after 10 s, into a regular file")
        if p.returncode == SKIP:
            skip("schedtop exited 77: " + p.stderr)
        print("record -o FILE ->", p.returncode, p.stderr.strip())
        if p.returncode != 1 or "Not a directory" not in p.stderr:
            fail("record -o FILE: rc %d, %r" % (p.returncode, p.stderr))
        # with -- CMD: refused before CMD starts (it was started, attached
        # to, then stopped with SIGTERM: a review, 2026-12-06)
        mark = os.path.join(d, "started")
        p = run([st, "record", "--last", "2s", "-o", afile, "--", "sh", "-c",
                 'touch "$0"; exec "$1" 2 100', mark, wl_test], timeout=20)
        print("record -o FILE -- CMD ->", p.returncode, p.stderr.strip())
        if p.returncode != 1 or "Not a directory" not in p.stderr or os.path.exists(mark):
            fail("record -o FILE -- CMD: rc %d, CMD started: %s, %r" % (p.returncode, os.path.exists(mark),
                                                                        p.stderr))
        # DIR made for a run that then attaches nothing: not left behind
        newdir = os.path.join(d, "new")
        p = run([st, "record", "--last", "2s", "-o", newdir, "-p", "999999999"], timeout=20)
        if p.returncode != 1 or os.path.exists(newdir):
            fail("record -o NEWDIR -p (no such process): rc %d, NEWDIR left: %s, %r"
                 % (p.returncode, os.path.exists(newdir), p.stderr))
        gone = os.path.join(d, "gone")
        rp = subprocess.Popen([st, "record", "-p", str(load.pid), "--last", "2s", "-o", gone,
                               "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(rp)
        # DIR is made before the attach: wait until recording runs, or the
        # DIR removed during the attach is made again when it starts
        first = wait_recording(rp)
        time.sleep(0.3)
        shutil.rmtree(gone)
        rp.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        rp.send_signal(signal.SIGINT)
        _, err = rp.communicate(timeout=15)
        err = first + err
        print("DIR removed ->", rp.returncode, err.strip())
        if rp.returncode != 1 or "0 dumps written" not in err:
            fail("two dumps that failed: rc %d, %r" % (rp.returncode, err))
        print("PASS: record refuses a DIR it cannot write and counts no failed dump")
    finally:
        kill_and_remove(procs, d)


def test_record_full(st, wl_test, wl, lib):
    """dumps that cannot be written whole (a full disk; here the file size
    limit, 16 KiB, SIGXFSZ ignored: each write past it fails with EFBIG):
    the file and the reason are said and the dump's files removed. Before:
    the line said `N events` as for a good dump, then `1 dump written
    ... (1 failed, see above)` with nothing above saying what failed, and
    the cut files stayed (a .trace.json that does not parse)."""
    import resource
    d = tempfile.mkdtemp(prefix="schedtop-record-full-")
    procs = []
    try:
        load = subprocess.Popen([wl_test, "2", "1000"], stdout=subprocess.DEVNULL)
        procs.append(load)
        time.sleep(0.3)
        out = os.path.join(d, "dumps")

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
        # --on signal,exit: the two dumps this checks; a lint that fires on
        # a loaded machine (herd, drawn by weft_load) made a third
        rp = subprocess.Popen([st, "record", "-p", str(load.pid), "--last", "2s", "--on", "signal,exit",
                               "-o", out, "0.25"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=limit)
        procs.append(rp)
        wait_recording(rp)
        time.sleep(1.5)
        if rp.poll() is not None:
            _, err = rp.communicate()
            fail("record ended early: rc %d %r" % (rp.returncode, err))
        rp.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        rp.send_signal(signal.SIGINT)
        _, err = rp.communicate(timeout=15)
        print("record past a 16 KiB file size limit ->", rp.returncode, err.strip())
        said = [l for l in err.splitlines() if "File too large; the dump's files are removed" in l]
        if rp.returncode != 1 or len(said) != 2:
            fail("two dumps (signal, exit) past the limit: rc %d, want 1 and each failed file "
                 "named with its reason: %r" % (rp.returncode, err))
        if not any("-signal." in l for l in said) or not any("-exit." in l for l in said):
            fail("the failed dumps are not the signal and the exit dump: %r" % said)
        if "events, " in err:
            fail("a failed dump reported as written: %r" % err)
        if "0 dumps written" not in err or "(2 failed" not in err:
            fail("the summary: %r" % err)
        left = os.listdir(out)
        if left:
            fail("files of failed dumps left in DIR: %s" % left)
        # `--batch --record FILE` past the same limit (a review, 2026-12-07):
        # exit 0, nothing said, the file cut inside a snapshot ("malformed
        # snapshot 6" to report). Now said, exit 1, and the file keeps the
        # snapshots written whole, which report reads.
        snaps = os.path.join(d, "snaps.jsonl")
        load = subprocess.Popen([wl_test, "2", "1000"], stdout=subprocess.DEVNULL)
        procs.append(load)
        time.sleep(0.3)
        p = subprocess.run([st, "--batch", "--json", "-n", "10", "-p", str(load.pid), "--record", snaps,
                            "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=limit, timeout=60)
        print("--batch --record past a 16 KiB file size limit ->", p.returncode, p.stderr.strip())
        m = re.search(r"snaps\.jsonl: File too large: the recording stops, the file keeps its first "
                      r"(\d+) snapshots", p.stderr)
        if p.returncode != 1 or not m or len(p.stdout.splitlines()) != 10:
            fail("--record past the limit: rc %d, %d reports, %r; want 1, the 10 reports and the "
                 "failure said" % (p.returncode, len(p.stdout.splitlines()), p.stderr))
        r = run([st, "report", "--json", snaps], timeout=30)
        if r.returncode or len(r.stdout.splitlines()) != int(m.group(1)) - 1:
            fail("report of the cut recording: rc %d, %d intervals, want %d: %r"
                 % (r.returncode, len(r.stdout.splitlines()), int(m.group(1)) - 1, r.stderr))
        print("PASS: a dump that cannot be written is named with its reason and removed; a "
              "--record file past the limit is said, and keeps its whole snapshots")
    finally:
        kill_and_remove(procs, d)


def sig_caught(pid, sig):
    """pid has a handler for sig (SigCgt in /proc/PID/status)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for l in f:
                if l.startswith("SigCgt:"):
                    return bool(int(l.split()[1], 16) & (1 << (sig - 1)))
    except OSError:
        pass
    return False


def test_record_early_usr1(st, wl_test, wl, lib):
    """SIGUSR1 (dump now) while record attaches: its default action ends the
    process, and record caught it only once recording ran - a request in
    the first 0.1-0.3 s killed schedtop (status 138, nothing said, nothing
    recorded; found by a review, 2026-12-06). The signal is sent as soon as
    schedtop catches SIGINT (set in main, before the attach): now a dump
    once recording runs, then the exit dump."""
    d = tempfile.mkdtemp(prefix="schedtop-record-usr1-")
    procs = []
    try:
        out = os.path.join(d, "dumps")
        rp = subprocess.Popen([st, "record", "--last", "2s", "-o", out, "0.25", "--", wl_test, "2", "1000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(rp)
        deadline = time.time() + 10
        while not sig_caught(rp.pid, signal.SIGINT) and rp.poll() is None and time.time() < deadline:
            time.sleep(0.001)
        if rp.poll() is not None:
            err = rp.stderr.read()
            if rp.returncode == SKIP:
                skip("schedtop exited 77: " + err)
            fail("record ended before the signal: rc %d %r" % (rp.returncode, err))
        if os.path.isdir(out) and os.listdir(out):
            fail("the test was late: dumps already in %s" % out)
        rp.send_signal(signal.SIGUSR1)
        time.sleep(1.5)
        if rp.poll() is None:
            rp.send_signal(signal.SIGINT)
        _, err = rp.communicate(timeout=15)
        print("SIGUSR1 during the attach ->", rp.returncode, err.strip())
        if rp.returncode != 0:
            fail("record with SIGUSR1 during its attach: rc %d, want 0: %r" % (rp.returncode, err))
        if len(dumps(out, "signal")) != 1 or len(dumps(out, "exit")) != 1:
            fail("want one signal dump and one exit dump: %s" % sorted(os.listdir(out)))
        load_dump(dumps(out, "signal")[0])
        print("PASS: SIGUSR1 during the attach is a dump once recording runs")
        # --on without signal: a SIGUSR1 was dropped without a word
        out2 = os.path.join(d, "nosig")
        rp = subprocess.Popen([st, "record", "--on", "lint,exit", "--last", "2s", "-o", out2, "0.25", "--",
                               wl_test, "2", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        procs.append(rp)
        import select
        r, _, _ = select.select([rp.stderr], [], [], 20)
        line = rp.stderr.readline() if r else ""
        if "recording pid" not in line:
            fail("record --on lint,exit did not start: %r" % line)
        rp.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        rp.send_signal(signal.SIGINT)
        _, err = rp.communicate(timeout=15)
        print("--on lint,exit, SIGUSR1 ->", rp.returncode, err.strip())
        if rp.returncode != 0 or "SIGUSR1: no dump, --on does not list signal" not in err \
                or dumps(out2, "signal") or len(dumps(out2, "exit")) != 1:
            fail("--on lint,exit and SIGUSR1: rc %d, %s: %r" % (rp.returncode, sorted(os.listdir(out2)), err))
        print("PASS: a SIGUSR1 that --on does not take is said")
    finally:
        kill_and_remove(procs, d)


def test_record_sigint(st, wl_test, wl, lib):
    """Ctrl-C mid-interval: the exit dump's interval reports stopped at the
    last whole interval - with `record ... 5`, SIGINT 1.5 s after the start
    of recording gave a dump of 1.5 s of events and no interval report at
    all (a review, 2026-12-06). A target's exit ended with a last partial
    report already; a signal now does too, marked "end": "signal", as
    --batch marks it."""
    d = tempfile.mkdtemp(prefix="schedtop-record-int-")
    procs = []
    try:
        out = os.path.join(d, "dumps")
        rp = subprocess.Popen([st, "record", "--last", "10s", "-o", out, "5", "--", wl_test, "2", "3000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(rp)
        import select
        r, _, _ = select.select([rp.stderr], [], [], 20)
        line = rp.stderr.readline() if r else ""
        if rp.poll() is not None and rp.returncode == SKIP:
            skip("schedtop exited 77: " + line + rp.stderr.read())
        if "recording pid" not in line:
            fail("record did not start: %r" % line)
        time.sleep(1.5)
        rp.send_signal(signal.SIGINT)
        _, err = rp.communicate(timeout=15)
        print("SIGINT 1.5 s into a 5 s interval ->", rp.returncode, (line + err).strip())
        ex = dumps(out, "exit")
        if rp.returncode != 0 or len(ex) != 1:
            fail("rc %d, exit dumps %s: %r" % (rp.returncode, ex, err))
        dump, evs = load_dump(ex[0])
        ivs = dump["intervals"]
        if not evs:
            fail("no events in 1.5 s of weft_load")
        if len(ivs) != 1 or ivs[-1].get("end") != "signal" or not 0.5 < ivs[-1]["interval_s"] < 5:
            fail("want one partial interval report ending \"signal\": %s"
                 % [(i.get("end"), i.get("interval_s")) for i in ivs])
        if not ivs[-1]["polls_per_s"] > 0:
            fail("the partial report saw no polls: %s" % ivs[-1]["polls_per_s"])
        print("PASS: the exit dump after SIGINT holds the last partial interval (%.2f s)" % ivs[-1]["interval_s"])
    finally:
        kill_and_remove(procs, d)


def test_record_symlink(st, wl_test, wl, lib):
    """Before, the dump was opened with fopen (following a symlink, as root)
    and only the .json name was checked with stat: a symlink planted in a
    shared -o DIR truncated its target, or created a file where it led."""
    import datetime
    d = tempfile.mkdtemp(prefix="schedtop-recsym-")
    out, victims = os.path.join(d, "out"), os.path.join(d, "victims")
    os.mkdir(out)
    os.mkdir(victims)
    precious = {}
    for ext in (".trace.json", ".events.jsonl"):
        precious[ext] = os.path.join(victims, "precious" + ext)
        with open(precious[ext], "w") as f:
            f.write("precious\n")
    procs = []
    try:
        # 3000 waves, ~60 s: alive until the signal whatever the planting
        # takes (300, 6-9 s, had exited on a loaded machine by the time of
        # the signal: no dump, "0 dumps written"); killed below
        load = subprocess.Popen([wl_test, "2", "3000"], stdout=subprocess.DEVNULL)
        procs.append(load)
        time.sleep(0.2)
        rp = subprocess.Popen([st, "record", "-p", str(load.pid), "--last", "1s", "--on",
                               "signal", "-o", out, "0.5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(rp)
        time.sleep(1.5)
        if rp.poll() is not None:
            if rp.returncode == SKIP:
                skip("schedtop exited 77: " + rp.stderr.read())
            fail("record exited %d: %s" % (rp.returncode, rp.stderr.read()))
        # every name the dump can take in a 3 s window (UTC, to the ms),
        # planted ahead of time: 9,600 symlinks take 2-6 s on a slow or
        # loaded disk (0.6 ms each seen), and a window that began at the
        # planting's start had passed before the signal (the dump then took
        # an unplanted name). The signal goes once the window has begun,
        # with at least 2 s of it left; a later window if planting was
        # slower than the lead.
        lead, ms_all = 4.0, 0
        for attempt in range(4):
            t0 = datetime.datetime.now(datetime.timezone.utc)
            t = t0 + datetime.timedelta(seconds=lead)
            for ms in range(3200):
                u = t + datetime.timedelta(milliseconds=ms)
                base = os.path.join(out, u.strftime("%Y%m%dT%H%M%S") +
                                    ".%03dZ-signal" % (u.microsecond // 1000))
                for ext in (".trace.json", ".events.jsonl"):
                    if not os.path.lexists(base + ext):
                        os.symlink(precious[ext], base + ext)
                if not os.path.lexists(base + ".json"):
                    os.symlink(os.path.join(victims, "made-%d" % ms_all), base + ".json")
                ms_all += 1
            now = datetime.datetime.now(datetime.timezone.utc)
            if now <= t + datetime.timedelta(milliseconds=100):
                break
            print("planting took %.1f s, past the window's start: again" %
                  (now - t0).total_seconds())
            lead = 2 * (now - t0).total_seconds() + 1
        else:
            fail("could not plant the symlinks ahead of the clock")
        time.sleep(max(0.0, (t - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
                   + 0.1)
        if datetime.datetime.now(datetime.timezone.utc) > t + datetime.timedelta(seconds=1.2):
            fail("the test slept past its planted window")
        rp.send_signal(signal.SIGUSR1)
        deadline = time.time() + 5
        written = []
        while not written and time.time() < deadline:
            written = [f for f in os.listdir(out) if f.endswith("-signal-2.json")]
            time.sleep(0.05)
        time.sleep(0.3)
        rp.send_signal(signal.SIGINT)
        _, err = rp.communicate(timeout=15)
        print(err.strip())
        for ext, path in precious.items():
            with open(path) as f:
                if f.read() != "precious\n":
                    fail("the symlink at the dump's %s name was followed: %s rewritten"
                         % (ext, path))
        made = [f for f in os.listdir(victims) if f.startswith("made-")]
        if made:
            fail("the symlink at the dump's .json name was followed: %s created" % made)
        if len(written) != 1 or rp.returncode:
            fail("no dump under the next name: rc %d, %s; files: %s" %
                 (rp.returncode, err.strip(), sorted(f for f in os.listdir(out)
                                                      if not os.path.islink(os.path.join(out, f)))))
        path = os.path.join(out, written[0])
        base = path[:-len(".json")]
        for ext in (".json", ".trace.json", ".events.jsonl"):
            if os.path.islink(base + ext) or not os.path.isfile(base + ext):
                fail("%s is not a regular file" % (base + ext))
        dj, evs = load_dump(path)
        if dj["files"]["trace"] != os.path.basename(base) + ".trace.json":
            fail("the dump names %s" % dj["files"])
        print("PASS: %d planted symlinks not followed; dump %s written (%d events)"
              % (3 * ms_all, written[0], len(evs)))
    finally:
        kill_and_remove(procs, d)


def test_list_sparse(st, wl_test, wl, lib):
    d = tempfile.mkdtemp(prefix="schedtop-sparse-")
    big = os.path.join(d, "big")
    shutil.copy("/bin/sleep", big)
    os.truncate(big, 20 << 30)
    procs = []
    try:
        procs.append(subprocess.Popen([big, "30"]))
        load = subprocess.Popen([wl_test, "2", "300"], stdout=subprocess.DEVNULL)
        procs.append(load)
        time.sleep(0.3)
        t0 = time.time()
        try:
            p = run([st, "list"], timeout=20)
        except subprocess.TimeoutExpired:
            fail("schedtop list took more than 20 s with a 20 GiB executable running")
        took = time.time() - t0
        rows = [l.split() for l in p.stdout.splitlines()[1:]]
        pids = [r[0] for r in rows]
        if p.returncode or took > 5:
            fail("schedtop list: rc %d in %.1f s" % (p.returncode, took))
        if str(load.pid) not in pids or str(procs[0].pid) in pids:
            fail("schedtop list: weft_load %d, big %d in %s" % (load.pid, procs[0].pid, pids))
        print("PASS: schedtop list in %.2f s with a 20 GiB executable running; weft_load listed"
              % took)
    finally:
        kill_and_remove(procs, d)


def test_metrics_interval(st, wl_test, wl, lib):
    load = subprocess.Popen([wl_test, "2", "300"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        t0 = time.time()
        mp = subprocess.Popen([st, "metrics", "-p", str(load.pid), "--once", "3e6"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        early = mp.poll()
        load.kill()
        load.wait()
        out, err = mp.communicate(timeout=15)
        took = time.time() - t0
        if mp.returncode == SKIP:
            skip("schedtop exited 77: " + err.strip())
        if early is not None:
            fail("metrics --once 3e6 ended before its target, after %.2f s: rc %d %s"
                 % (took, mp.returncode, err.strip()[-300:]))
        if mp.returncode or "weft_schedtop_target_info" not in out:
            fail("metrics --once 3e6: rc %d, %d bytes, %s" % (mp.returncode, len(out),
                                                               err.strip()[-300:]))
        print("PASS: metrics --once 3e6 waited %.2f s, for its target to exit" % took)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()


def bound_ns(v):
    """A histogram row bound of the live view ("512ns", "4.1us", "2", ...) as a number."""
    import re
    m = re.match(r"^([0-9.]+)(ns|us|ms|s)?$", v)
    if not m:
        return None
    return float(m.group(1)) * {None: 1, "ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]


def hist_boxes(lines, h, w):
    """View 3's four boxes on a captured screen: (title, buckets a row),
    the buckets a row read from a row's bounds (lo-<hi spans 2^N). The
    first row may start at 0 and the last one is cut at the highest
    bucket: a row between them (or the first, from 1) tells."""
    import math
    hh, bw = max(2, (h - 5) // 2), (w - 2) // 2
    out = []
    for y in (4, 4 + hh):
        for x0, x1 in ((0, bw), (bw + 2, w)):
            title = lines[y][x0:x1] if y < len(lines) else ""
            rows = [l[x0:x1].split()[0] for l in lines[y + 1:y + hh] if l[x0:x1].strip()]
            per = 1
            for r in rows[:-1] if len(rows) > 1 else rows:
                lo, _, hi = r.partition("-<")
                lo, hi = bound_ns(lo), bound_ns(hi)
                if lo and hi:
                    per = max(1, round(math.log2(hi / lo)))
                    break
            out.append((title, per))
    return out


def test_tui(st, wl_test, wl, lib):
    import re
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    # waves for a minute and more: it outlives the three sizes (killed after)
    load = subprocess.Popen([wl_test, "2", "6000"], stdout=subprocess.DEVNULL)
    T = []

    def cap(join):
        a = ["capture-pane", "-p", "-t", "st"] + (["-J"] if join else [])
        return subprocess.run(T + a, stdout=subprocess.PIPE, text=True).stdout

    def wait_for(text, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            c = cap(False)
            if text in c:
                return c
            time.sleep(0.2)
        fail("%r never appeared; screen:\n%s" % (text, cap(False)))

    state = r"(running|searching|parked|stopped|unknown)"
    def tfail(msg):   # with the screen, to see what went wrong
        if T:
            print("screen now:\n" + cap(False))
        fail(msg)
    try:
        time.sleep(0.3)
        for w, h in ((80, 24), (200, 50), (40, 10)):
            if T:
                subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
            T[:] = [tmux, "-L", "schedtop-test-%d-%d" % (os.getpid(), w)]   # a server each
            subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", str(w), "-y", str(h),
                                "%s -p %d 0.5" % (st, load.pid)], check=True)
            wait_for("1 workers")
            time.sleep(1.2)   # a few intervals
            shots = {"1": cap(False)}
            for key, marker in (("2", "2 steal matrix"), ("3", "3 histograms"),
                                ("h", "keys: q quit")):
                subprocess.run(T + ["send-keys", "-t", "st", key])
                shots[key] = wait_for(marker)
                if key == "h":
                    # a key on the help screen does what the help says (2
                    # closed the help only, back to view 3: found by a review)
                    subprocess.run(T + ["send-keys", "-t", "st", "2"])
                    wait_for("2 steal matrix")
            for key, c in shots.items():
                lines = c.split("\n")
                if lines and lines[-1] == "":
                    lines = lines[:-1]
                if len(lines) != h:
                    tfail("%dx%d view %s: %d lines" % (w, h, key, len(lines)))
                if any(len(l) > w for l in lines):
                    tfail("%dx%d view %s: a line longer than %d" % (w, h, key, w))
            for key in ("1", "3"):
                subprocess.run(T + ["send-keys", "-t", "st", key])
                wait_for("1 workers" if key == "1" else "3 histograms")
                time.sleep(0.2)
                # -J joins a wrapped line with the next: one line fewer (the
                # content is not compared: the view redraws between captures)
                joined = cap(True).split("\n")
                if joined and joined[-1] == "":
                    joined = joined[:-1]
                if len(joined) != h:
                    tfail("%dx%d view %s: a wrapped line (%d lines joined with -J)"
                          % (w, h, key, len(joined)))
            lines = shots["1"].split("\n")
            print("\n".join(lines[:7] + [lines[h - 1]]))
            if not lines[0].startswith("schedtop pid %d  workers 2" % load.pid):
                tfail("line 1: %r" % lines[0])
            if not lines[1].startswith("interval "):
                tfail("line 2 (the header's second line) is %r" % lines[1])
            if not lines[4].startswith("W ") or "POLLS/s" not in lines[4]:
                tfail("column header: %r" % lines[4])
            tid = r"\d+\s+" if w >= 200 else ""
            for k in (5, 6):
                if not re.match(r"^[01]\s+" + tid + state + r"\s", lines[k]):
                    tfail("worker row %d: %r" % (k - 4, lines[k]))
            if lines[7].strip():
                tfail("a third worker row: %r" % lines[7])
            if not lines[h - 1].startswith("1 workers"):
                tfail("footer: %r" % lines[h - 1])
            allcols = ("TID", "AGE", "DEPTH HISTORY", "STEAL/s", "ROBBED/s", "PARKS/s", "PARK50",
                       "PARK99", "UNPK99", "CPU%", "INVOL/s", "MIGR/s", "WAIT/s")
            if w >= 200 and not all(c in lines[4] for c in allcols):
                tfail("200 columns: not every column shown: %r" % lines[4])
            if w == 80 and "columns hidden" not in lines[h - 1]:
                tfail("80 columns: the footer does not say columns are hidden")
            hl = shots["3"].split("\n")
            print("\n".join(hl[4:12]))
            hh = (h - 5) // 2
            bw = (w - 2) // 2
            # the count (n=) may give way to a row's xN marker in a narrow box
            for y, names in ((4, ("park ", "wake->run ")),
                             (4 + hh, ("tasks/steal ", "futex wait "))):
                if not hl[y].startswith(names[0]) or hl[y][bw + 2:].find(names[1]) != 0:
                    tfail("%dx%d histogram titles at line %d: %r" % (w, h, y + 1, hl[y]))
            # a box whose rows merge N log2 buckets says xN in its title, at
            # 80 columns too (before: "wake->run n=336 p50<2.0us p99<4.2ms"
            # left no room for its x2, and it was dropped). A few intervals:
            # the titles' lengths change with the figures.
            for i in range(5):
                if i:
                    time.sleep(0.5)
                    shot = cap(False)
                    if "3 histograms" not in shot:
                        continue
                else:
                    shot = shots["3"]
                for title, per in hist_boxes(shot.split("\n"), h, w):
                    if per > 1 and not re.search(r" x%d$" % per, title.rstrip()):
                        tfail("%dx%d: a box of %d buckets a row without its x%d: %r"
                              % (w, h, per, per, title))
            bucket = re.compile(r"^\S+-<\S+\s+\d+( #*)?\s*$")
            rows = [l for l in hl[5:4 + hh] if l.strip()]
            if not rows:
                tfail("%dx%d: no histogram rows" % (w, h))
            for l in rows:   # each half is empty or one bucket row: no overlap
                for half in (l[:bw], l[bw + 2:]):
                    if half.strip() and not bucket.match(half):
                        tfail("%dx%d histogram row %r: half %r" % (w, h, l, half))
            if not re.search(r"\d(ns|us|ms|s)-<\d", shots["3"]):
                tfail("%dx%d: bucket bounds without units" % (w, h))
            # the help stays up through a resize (it closed), and q on it
            # quits (it closed the help only); the window's own size back
            # after, for the next capture
            subprocess.run(T + ["send-keys", "-t", "st", "h"])
            wait_for("keys: q quit")
            subprocess.run(T + ["resize-window", "-t", "st", "-x", str(w - 10), "-y", str(h - 2)])
            time.sleep(0.5)
            if "keys: q quit" not in cap(False):
                tfail("%dx%d: a resize closed the help" % (w, h))
            subprocess.run(T + ["send-keys", "-t", "st", "q"])
            end = time.time() + 10
            while subprocess.run(T + ["has-session", "-t", "st"], stderr=subprocess.DEVNULL).returncode == 0:
                if time.time() > end:
                    tfail("%dx%d: q on the help screen did not quit" % (w, h))
                time.sleep(0.2)
        # an interval shorter than the 0.1 s the view waited for a key:
        # 200 intervals of 0.02 s end in 3-8 s, the attach included (each
        # lasted 0.1 s and more: over 20 s; found by a review)
        # (a target of its own, which outlives the count: one that exits
        # ends the view early)
        subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        T[:] = [tmux, "-L", "schedtop-test-%d-fast" % os.getpid()]
        long_load = subprocess.Popen([wl, "--shape", "fork-join", "--workers", "2", "--duration", "90",
                                      "--quiet"], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            t0 = time.time()
            subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", "80", "-y", "24",
                                "%s -p %d 0.02 200; echo schedtop exit $?; sleep 60"
                                % (st, long_load.pid)], check=True)
            while "schedtop exit" not in cap(False):
                if time.time() - t0 > 60:
                    tfail("200 intervals of 0.02 s: still running after 60 s")
                time.sleep(0.1)
            el = time.time() - t0
            if "schedtop exit 0" not in cap(False) or "exited; last interval" in cap(False):
                tfail("200 intervals of 0.02 s: schedtop failed, or its target ended first")
        finally:
            long_load.kill()
            long_load.wait()
        print("200 intervals of 0.02 s: %.1f s, the attach included" % el)
        # each interval waiting 0.1 s for a key: 20 s at the least
        if el >= 20:
            tfail("200 intervals of 0.02 s took %.1f s (each as long as 0.1 s?)" % el)
        print("PASS: 80x24, 200x50 and 40x10, views 1 2 3 and help, no line wrapped or "
              "longer than the width; intervals under 0.1 s")
    finally:
        if T:
            subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        load.kill()
        load.wait()


def test_tui_nobpf(st, wl_test, wl, lib):
    """The --no-bpf view on a terminal (text redrawn each interval) at 80x24
    with 4 workers, then 12: no line wraps and the header stays on screen.
    Its rows are 97 columns: each wrapped onto a second line, and with 12
    workers the screen scrolled the header away."""
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    target = os.path.join(os.path.dirname(wl_test), "lint_target")
    T = []

    def cap(join):
        a = ["capture-pane", "-p", "-t", "st"] + (["-J"] if join else [])
        return subprocess.run(T + a, stdout=subprocess.PIPE, text=True).stdout

    try:
        for workers in (4, 12):
            if T:
                subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
            T[:] = [tmux, "-L", "schedtop-nobpf-%d-%d" % (os.getpid(), workers)]  # a server each
            subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", "80", "-y", "24",
                                "%s --no-bpf 0.3 -- %s idle 30 %d; sleep 30" %
                                (st, target, workers)], check=True)
            end = time.time() + 10
            screen = ""
            while time.time() < end:
                screen = cap(False)
                if "weft-worker-%d " % (workers - 1) in screen:
                    break
                time.sleep(0.2)
            time.sleep(0.7)   # a few redraws
            plain, joined = cap(False), cap(True)
            print("%d workers at 80x24:\n%s" % (workers, plain))
            rows = [l for l in plain.split("\n") if re.match(r"\d+ +\d+ +weft-worker-", l)]
            if len(rows) != workers:
                fail("%d workers, %d rows on screen" % (workers, len(rows)))
            if not plain.startswith("pid "):
                fail("the header scrolled away:\n%s" % plain)
            if len(joined.rstrip("\n").split("\n")) != len(plain.rstrip("\n").split("\n")):
                fail("a line wrapped (capture -J joined lines):\n%s" % plain)
        print("PASS: the --no-bpf view fits 80x24")
    finally:
        if T:
            subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)


def test_tui_cmd(st, wl_test, wl, lib):
    """The live view with `-- CMD` under tmux at 80x24: CMD's output (here
    a line every 0.3 s) goes to a log file named when schedtop ends, not
    over the view (it wrote over the screen for good)."""
    import re
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    d = tempfile.mkdtemp(prefix="schedtop-tuicmd-")
    err = os.path.join(d, "err")
    T = [tmux, "-L", "schedtop-tuicmd-%d" % os.getpid()]

    def cap():
        return subprocess.run(T + ["capture-pane", "-p", "-t", "st"], stdout=subprocess.PIPE,
                              text=True).stdout
    log = None
    try:
        subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", "80", "-y", "24",
                            "TMPDIR=%s %s 0.25 -- %s restart 40 0.3 2>%s; sleep 60"
                            % (d, st, os.environ["REVIEW_TARGET"], err)], check=True)
        end = time.time() + 10
        while time.time() < end and "1 workers" not in cap():
            time.sleep(0.2)
        time.sleep(2.0)   # rounds printed meanwhile
        screen = cap()
        lines = screen.split("\n")
        if lines and lines[-1] == "":
            lines = lines[:-1]
        print("\n".join(lines[:6] + [lines[-1]]))
        if "1 workers" not in screen:
            fail("the view never showed; screen:\n%s\nstderr: %s" % (screen, open(err).read()))
        if "round " in screen or "ready " in screen:
            fail("the command's output is on the live view:\n%s" % screen)
        if len(lines) != 24 or not lines[0].startswith("schedtop pid "):
            fail("the view is not whole (%d lines):\n%s" % (len(lines), screen))
        subprocess.run(T + ["send-keys", "-t", "st", "q"])
        end = time.time() + 10
        msg = ""
        while time.time() < end:
            msg = open(err).read()
            if "output of" in msg:
                break
            time.sleep(0.2)
        m = re.search(r"the output of \S+ is in (\S+)", msg)
        if not m:
            fail("schedtop did not say where the output went: %r" % msg)
        log = m.group(1)
        if not log.startswith(d + "/"):
            fail("log %s not in TMPDIR %s" % (log, d))
        text = open(log).read()
        if "round 3 " not in text:
            fail("log %s lacks the command's output: %r" % (log, text[:300]))
        print("PASS: the command's output went to %s (%d lines), none on the view"
              % (log, text.count("\n")))
    finally:
        subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        shutil.rmtree(d, ignore_errors=True)


def test_tui_two(st, wl_test, wl, lib):
    """The live view of two runtimes (lint_target two, 2 and 1 workers) at
    80x24: the header says `runtimes 2` as documented, and the steal
    matrix labels each worker with its runtime (r1w0 r1w1 r2w0, and a
    legend), where it read w0 w1 w0."""
    import re
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    target = os.path.join(os.path.dirname(wl_test), "lint_target")
    tp = subprocess.Popen([target, "two", "20", "2"], stdout=subprocess.PIPE, text=True)
    T = [tmux, "-L", "schedtop-tuitwo-%d" % os.getpid()]
    cap, wait_for = pane_readers(T)
    try:
        ready = tp.stdout.readline()
        if not ready.startswith("ready "):
            fail("lint_target two: %r" % ready)
        subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", "80", "-y", "24",
                            "%s -p %s 0.5; sleep 30" % (st, ready.split()[1])], check=True)
        one = wait_for("1 workers")
        print(one.split("\n")[0])
        if not one.startswith("schedtop pid %s  runtimes 2  workers 3" % ready.split()[1]):
            fail("header lacks `runtimes 2`: %r" % one.split("\n")[0])
        subprocess.run(T + ["send-keys", "-t", "st", "2"])
        m = wait_for("2 steal matrix")
        lines = m.split("\n")
        print("\n".join(lines[4:10]))
        # which runtime is r1 depends on which showed first: 2 + 1 workers
        cols = lines[5].split()[1:]
        want = (["r1w0", "r1w1", "r2w0"], ["r1w0", "r2w0", "r2w1"])
        if lines[5].split()[0] != "thief\\v" or cols not in want:
            fail("matrix columns: %r" % lines[5])
        if [l.split()[0] for l in lines[6:9]] != cols:
            fail("matrix rows: %r" % lines[6:9])
        if not re.match(r"^runtimes: r1 0x[0-9a-f]+ r2 0x[0-9a-f]+\s*$", lines[9]):
            fail("no legend for r1/r2: %r" % lines[9])
        # Small terminals: the footer keeps the last line and nothing is
        # drawn under it; the lines above it are whole, in their order
        # (rows first to go, then the legend, the labels, the title, the
        # header's lines), and the footer says the terminal cuts them.
        # tmux's smallest window is 1 line, and schedtop takes any.
        foot = re.compile(r"^2 steal matrix  \(cut to the terminal: make taller\)  "
                          r"q quit h help 1 3\s*$")
        legend = re.compile(r"^runtimes: r1 0x[0-9a-f]+ r2 0x[0-9a-f]+\s*$")
        for h in (8, 7, 6, 5, 4, 3, 2, 1):
            subprocess.run(T + ["resize-window", "-t", "st", "-x", "80", "-y", str(h)],
                           check=True)
            end = time.time() + 10
            while True:
                c = cap()
                lines = c.split("\n")
                if lines and lines[-1] == "":
                    lines = lines[:-1]
                if len(lines) == h and lines[-1].startswith("2 steal matrix") and \
                        (h < 2 or lines[0].startswith("schedtop pid")):
                    break
                if time.time() > end:
                    fail("80x%d: no steal matrix of %d lines; screen:\n%s" % (h, h, c))
                time.sleep(0.2)
            for shot in range(2):   # after the redraw for the resize, and the next interval's
                time.sleep(0.3 + 0.3 * shot)   # tmux's own reflow of the old screen came first
                c = cap()
                lines = c.split("\n")
                if lines and lines[-1] == "":
                    lines = lines[:-1]
                print("80x%d:\n%s" % (h, "\n".join(lines)))

                def sfail(msg):
                    fail("80x%d: %s; screen:\n%s" % (h, msg, "\n".join(lines)))
                if len(lines) != h or any(len(l) > 80 for l in lines):
                    sfail("%d lines, or one longer than 80" % len(lines))
                if not foot.match(lines[-1]):
                    sfail("footer %r" % lines[-1])
                body = lines[:-1]
                want = [r"^schedtop pid \d+  runtimes 2  workers 3", r"^interval ", None, r"^\s*$",
                        r"^steal operations this interval: rows thief, columns victim "
                        r"\(max \d+\)\s*$",
                        r"^thief\\v(\s+r\dw\d){3}\s*$"]
                for y, l in enumerate(body):
                    if y < len(want):
                        if want[y] and not re.match(want[y], l):
                            sfail("line %d: %r" % (y, l))
                    elif not (legend.match(l) or re.match(r"^r\dw\d\s+(\s+\S+){3}\s*$", l)):
                        sfail("line %d: %r is neither a row nor the legend" % (y, l))
                if h == 8 and not legend.match(body[6]):
                    sfail("no legend above the footer at 80x8")
        print("PASS: runtimes 2 in the header, matrix labelled by runtime, small windows")
    finally:
        subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        tp.kill()
        tp.wait()


def readline_within(proc, secs):
    """One line of proc's stdout within secs, or None."""
    import select
    r, _, _ = select.select([proc.stdout], [], [], secs)
    return proc.stdout.readline() if r else None


def test_hardening(st, wl_test, wl, lib):
    """The seventeenth session's review of schedtop, each on a real target:
    a target editing its own registry, -p with a thread id, invalid UTF-8
    in a thread name, on-CPU time of a spinning worker, thread churn past
    the thread map, diff on crafted and one-interval files, a library path
    with a space, --record's fd, a static program, TERM=bogus, and
    debuginfod servers that never answer."""
    import pty
    import socket
    import tempfile
    rt = os.environ["REVIEW_TARGET"]
    tmp = tempfile.mkdtemp(prefix="schedtop-hard-")

    def start(*args):
        p = subprocess.Popen([rt] + list(args), stdout=subprocess.PIPE, text=True)
        return p, wait_ready(p)

    def stop(p):
        if p.poll() is None:
            p.kill()
        p.wait()

    # 1. bogus run-queue offsets in the target's registry: schedtop read
    #    its own memory at them and died of SIGBUS/SIGSEGV
    p, pid = start("evil", "0x7ffffffffffffffd", "0")
    r = run([st, "-p", str(pid), "--batch", "-n", "2", "0.3"], timeout=30)
    stop(p)
    if r.returncode < 0 or r.returncode > 128:
        fail("schedtop died on a target's bogus registry: rc %d %s" % (r.returncode, r.stderr))
    print("bogus registry: rc %d, schedtop alive" % r.returncode)

    # 2. -p with a thread id: refused with the process's id (it attached,
    #    with every kernel column 0)
    p, pid = start("names")
    tids = [int(t) for t in os.listdir("/proc/%d/task" % pid) if int(t) != pid]
    r = run([st, "-p", str(tids[0]), "--batch", "-n", "1", "0.3"], timeout=30)
    if r.returncode == 0 or ("use -p %d" % pid) not in r.stderr:
        stop(p)
        fail("-p with thread %d of %d: rc %d, %r" % (tids[0], pid, r.returncode, r.stderr))
    print("-p TID: %s" % r.stderr.strip())

    # 3. a thread name cut inside a UTF-8 character: the JSON stays UTF-8
    r = subprocess.run([st, "-p", str(pid), "--no-bpf", "--batch", "--json", "-n", "1", "0.3"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    stop(p)
    try:
        objs = [json.loads(l.decode("utf-8")) for l in r.stdout.splitlines() if l.strip()]
    except (UnicodeDecodeError, ValueError) as e:
        fail("--no-bpf --json output is not UTF-8 JSON: %s" % e)
    if not objs:
        fail("--no-bpf --json printed nothing: %s" % r.stderr)
    print("cut UTF-8 thread name: %d JSON lines, all valid" % len(objs))

    # 4 and 5 compare each interval's CPU % of a worker with the kernel's
    # figure for its thread over that interval, not with a figure the
    # worker should get: on a loaded machine a spinning or burning worker
    # gets less than a whole CPU, and how much changes from one interval
    # to the next (13-86% read, and true; two burning workers read 19 %
    # beside other reviewers' busy loops, and ran 19 %). A thread beside
    # the reader samples every thread's on-CPU time (schedstat) every
    # 10 ms on the clock of the intervals' ts_ns (CLOCK_MONOTONIC). As a
    # thread runs at most 1 s a second, samples before and after an
    # instant bound what it had run then; an interval whose ends fall
    # between samples far apart (the sampler descheduled) only gets wider
    # bounds. schedstat lags a running thread by a tick or so: 4 ms.
    import queue
    import threading

    def thread_cpu_ns(pid):
        """Each thread's on-CPU ns (schedstat), by tid."""
        out = {}
        try:
            for t in os.listdir("/proc/%d/task" % pid):
                try:
                    with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                        out[int(t)] = int(f.read().split()[0])
                except (OSError, ValueError, IndexError):
                    pass
        except OSError:
            pass
        return out

    def watch(args, usr1=True):
        """schedtop ARGS (--batch --json ... -- CMD, CMD printing "ready
        PID", then waiting for SIGUSR1 before it works if usr1): its
        intervals from then on, the samples of CMD's threads, and when
        SIGUSR1 went or "ready" came (monotonic ns)."""
        # Lines from a thread: select on the pipe missed lines already in
        # the file object's buffer, read with an earlier one.
        sp = subprocess.Popen([st] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
        q = queue.Queue()

        def pump():
            for l in iter(sp.stdout.readline, ""):
                q.put(l)
            q.put("")
        samples, pid, done = [], [], threading.Event()

        def sampler():
            while not done.is_set():
                if pid:
                    a = time.monotonic_ns()
                    c = thread_cpu_ns(pid[0])
                    samples.append((a, time.monotonic_ns(), c))
                time.sleep(0.01)
        threading.Thread(target=pump, daemon=True).start()
        smp = threading.Thread(target=sampler, daemon=True)
        smp.start()
        ivs, t0, final, end = [], None, False, time.time() + 60
        while time.time() < end:
            try:
                l = q.get(timeout=15)
            except queue.Empty:
                break
            if not l:
                break
            if l.startswith("ready ") and not pid:
                pid.append(int(l.split()[1]))
                if usr1:
                    time.sleep(0.3)   # sampled before it works too
                t0 = time.monotonic_ns()
                if usr1:
                    os.kill(pid[0], signal.SIGUSR1)
            elif l.startswith("{") and t0:
                o = json.loads(l)
                final = o.get("final")
                if final:
                    break
                ivs.append(o)
        done.set()
        smp.join()
        try:
            rc = sp.wait(timeout=10) if final else None
        except subprocess.TimeoutExpired:
            rc = None
        stop(sp)
        if not ivs or rc != 0:
            fail("%s: rc %s, %d intervals after it was ready: %s"
                 % (args, rc, len(ivs), sp.stderr.read()[-300:]))
        return ivs, samples, t0

    def ran_by(samples, tid, x, lag=4e6):
        """Bounds of what tid had run at monotonic ns x, from the samples."""
        lo, hi = 0.0, float("inf")
        for a, b, c in samples:
            if tid not in c:
                continue
            if b <= x:   # read by then: at least that, at most that and the time since
                lo = max(lo, c[tid] - lag)
                hi = min(hi, c[tid] + lag + (x - a))
            if a >= x:   # read after: at most that, at least that less the time to it
                hi = min(hi, c[tid] + lag)
                lo = max(lo, c[tid] - lag - (b - x))
        return lo, hi

    def judged(ivs, samples, usr1, tid):
        """(schedtop's CPU %, the kernel's least, most) of worker tid in
        each interval that began after usr1 and ended before the last
        sample of the thread."""
        out = []
        for o in ivs:
            b = o["ts_ns"]
            a = b - o["interval_s"] * 1e9
            row = [w for w in o.get("worker", []) if w["tid"] == tid]
            if a < usr1 or not row:
                continue
            lo_b, hi_b = ran_by(samples, tid, b)
            lo_a, hi_a = ran_by(samples, tid, a)
            if hi_b != float("inf") and hi_a != float("inf"):
                out.append((row[0]["cpu_pct"], 100.0 * (lo_b - hi_a) / (b - a),
                            100.0 * (hi_b - lo_a) / (b - a)))
        return out

    def off(js):
        """The intervals read off the kernel's bounds by more than 10
        points and a quarter. The bugs read 0 against 100, or hundreds; a
        snapshot copied, then its clock read after schedtop was preempted,
        counts a span in progress too long or short; and a worker near
        100 % reads up to ~20 points under for an interval now and then
        (e.g. 72 [94-99]), time lost for good, not yet explained."""
        return [j for j in js if j[0] < j[1] - 10 - j[1] / 4 or j[0] > j[2] + 10 + j[2] / 4]

    def show(js):
        return ", ".join("%.0f [%.0f-%.0f]" % j for j in js)

    # 4. a worker spinning in one poll reads, in every interval, the CPU
    #    time it ran (the on-CPU time used to be counted only at its
    #    switch out: 0% while it spun, then hundreds)
    # launched by schedtop, which then knows its workers from their start
    # (attached later, a worker spinning in one poll fires no probe)
    ivs, samples, usr1 = watch(["--batch", "--json", "0.25", "--",
                                os.environ["STALL_TARGET"], "3"])
    # the spinner: the worker that ran most from SIGUSR1 on
    tids = set(w["tid"] for o in ivs for w in o.get("worker", []))
    spun = {t: ran_by(samples, t, samples[-1][0])[0] - ran_by(samples, t, usr1)[1] for t in tids}
    if not spun:
        fail("spinning worker: no worker in %d intervals" % len(ivs))
    tid = max(spun, key=spun.get)
    js = judged(ivs, samples, usr1, tid)
    print("spinning worker (tid %d), %% CPU per 0.25 s interval [the kernel's bounds]: %s"
          % (tid, show(js)))
    # the bug: 0% while the spin runs (the kernel: 100% on a quiet
    # machine, whatever it gives under load), hundreds at its switch out;
    # one interval forgiven (a vCPU the host stalls as schedtop reads the
    # clock after its copy)
    busy = sum(1 for j in js if j[1] >= 20)
    if busy < 4 or len(off(js)) > 1:
        fail("a worker spinning in one poll read %s %% CPU: off the kernel's bounds %s "
             "(%d intervals of 20%% or more)" % (show(js), show(off(js)), busy))

    # 5. 5,000 threads come and go before the runtime starts: its workers
    #    still get kernel figures (the thread map filled up for good: 0 %)
    # ... and 10,000 while the workers are parked, before they burn: the
    #     parked workers' thread-map entries, the oldest, were evicted, made
    #     again as other threads', and the burning workers read 0 % CPU
    #     (other_threads 190 %) to the end
    for mode, n in (("churn", "5000"), ("churnidle", "10000")):
        ivs, samples, usr1 = watch(["--batch", "--json", "0.5", "--", rt, mode, n],
                                   usr1=mode == "churn")
        tids = set(w["tid"] for o in ivs for w in o.get("worker", []))
        if len(tids) != 2:
            fail("%s %s: workers %s" % (mode, n, sorted(tids)))
        for tid in sorted(tids):
            # the intervals in which it burned (5 % of one is 25 ms)
            js = [j for j in judged(ivs, samples, usr1, tid) if j[1] >= 5]
            print("%s %s: worker %d, %% CPU per 0.5 s interval [the kernel's bounds]: %s"
                  % (mode, n, tid, show(js)))
            if len(js) < 2 or len(off(js)) > 1:
                fail("after %s threads churned (%s), a burning worker read %s %% CPU: off the "
                     "kernel's bounds %s" % (n, mode, show(js), show(off(js))))

    # 6. diff: a crafted trace (timestamps 1e30) ends at once; a
    #    one-interval recording is accepted
    craft = os.path.join(tmp, "craft.jsonl")
    with open(craft, "w") as f:
        f.write('{"ts_ns":1e30,"type":"steal","n":1}\n{"ts_ns":2e30,"type":"steal","n":1}\n')
    r = run([st, "diff", craft, craft], timeout=10)
    if r.returncode not in (0, 2):
        fail("diff on a crafted trace: rc %d %s" % (r.returncode, r.stderr))
    p, pid = start("names")
    one = os.path.join(tmp, "one.json")
    r = run([st, "-p", str(pid), "--batch", "--json", "-n", "1", "0.3"], timeout=30)
    stop(p)
    with open(one, "w") as f:
        f.write(r.stdout)
    r = run([st, "diff", one, one], timeout=10)
    if r.returncode != 0:
        fail("diff of a one-interval recording: rc %d %s" % (r.returncode, r.stderr))
    print("diff: crafted trace ends, one-interval recording compared")

    # 7. a library path with a space, through LD_LIBRARY_PATH
    spaced = os.path.join(tmp, "lib dir")
    os.mkdir(spaced)
    # the name ld.so looks for: libweft.so.0.1 since the soname took the
    # minor version before 1.0 (copies named libweft.so.0 were never
    # found, and 7, 12 and 13 ran on the build's own libweft)
    m = re.search(r"soname: \[(.+?)\]", subprocess.run(["readelf", "-d", lib],
                                                       stdout=subprocess.PIPE, text=True).stdout)
    if not m:
        fail("no soname in %s (readelf -d)" % lib)
    soname = m.group(1)
    shutil.copy(os.path.realpath(lib), os.path.join(spaced, soname))
    env = dict(os.environ, LD_LIBRARY_PATH=spaced)
    fdlist = os.path.join(tmp, "fds.txt")
    rec = os.path.join(tmp, "rec.jsonl")
    r = run([st, "--batch", "-n", "2", "--record", rec, "0.3", "--", rt, "fds", fdlist],
            timeout=30, env=env)
    if r.returncode != 0:
        fail("a libweft under a path with a space: rc %d %s" % (r.returncode, r.stderr))
    # 8. --record's file is not open in the command
    with open(fdlist) as f:
        fds = f.read()
    if rec in fds:
        fail("the --record file is open in the command: %s" % fds)
    print("library path with a space: attached; --record file not inherited")

    # 9. a static program runs once, not once more while schedtop looks
    #    for its libweft
    marks = os.path.join(tmp, "marks.txt")
    run([st, "--batch", "-n", "1", "0.3", "--", os.environ["STATIC_MARKER"], marks], timeout=30)
    with open(marks) as f:
        runs = f.read().splitlines()
    if len(runs) != 1:
        fail("a static program ran %d times: %s" % (len(runs), runs))
    print("static program: ran once")

    # 10. TERM=bogus on a terminal: refused before the command starts (it
    #     was left running on its own)
    started = os.path.join(tmp, "started.txt")
    master, slave = pty.openpty()
    tp = subprocess.Popen([st, "--", rt, "fds", started], stdin=slave, stdout=slave,
                          stderr=subprocess.PIPE, text=True, env=dict(os.environ, TERM="bogus"))
    os.close(slave)
    try:
        _, err = tp.communicate(timeout=20)
    finally:
        os.close(master)
    time.sleep(0.5)
    if tp.returncode == 0 or "TERM=bogus" not in err:
        fail("TERM=bogus: rc %s, %r" % (tp.returncode, err))
    if os.path.exists(started):
        fail("TERM=bogus: the command ran anyway")
    print("TERM=bogus: %s" % err.strip())

    # 11. debuginfod servers that never answer: a stripped target's first
    #     reports still come at once (requests of up to 90 s each, deaf to
    #     SIGTERM, before)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stripped = os.path.join(tmp, "stall_stripped")
    shutil.copy(os.environ["STALL_TARGET"], stripped)
    if subprocess.run(["strip", stripped]).returncode != 0:
        fail("strip failed")
    env = dict(os.environ, DEBUGINFOD_URLS="http://127.0.0.1:%d" % srv.getsockname()[1])
    tp = subprocess.Popen([stripped, "2"], stdout=subprocess.PIPE, text=True)
    tpid = wait_ready(tp)
    sp = subprocess.Popen([st, "-p", str(tpid), "--batch", "--json", "0.25"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = 0
    if readline_within(sp, 10):
        os.kill(tpid, signal.SIGUSR1)
        t0 = time.time()
        while got < 6 and time.time() - t0 < 8:
            if readline_within(sp, 3):
                got += 1
            else:
                break
    stop(sp)
    stop(tp)
    srv.close()
    if got < 6:
        fail("with a silent debuginfod server, %d reports in 8 s of a long poll" % got)
    print("silent debuginfod server: %d reports during the long poll" % got)

    # 12. a target in another mount namespace whose libweft path names a
    #     different file here, and 13. a target whose libweft was deleted
    #     since it was loaded: both attach to the file the target maps
    #     (before: probes on the host's file of that name, every figure 0;
    #     "...(deleted) has no weft:runtime_create probe")
    def wait_mapped(pid, maps):
        """None once pid maps a file whose path ends with `maps` and runs
        its 2 workers, else what is missing after 20 s. (A fixed 1 s or
        0.5 s: under load schedtop could come before the mount, the copy
        and the exec, to the shell, and the libweft to be deleted go
        before ld.so had opened it; and a copy under the wrong name, not
        mapped at all, went unnoticed.)"""
        end = time.time() + 20
        while True:
            try:
                with open("/proc/%d/maps" % pid) as f:
                    mapped = any(l.rstrip("\n").endswith(maps) for l in f)
                threads = len(os.listdir("/proc/%d/task" % pid))
            except OSError:
                mapped, threads = False, 0
            if mapped and threads >= 3:
                return None
            if time.time() > end:
                return "after 20 s, %s mapped: %s, %d threads" % (maps, mapped, threads)
            time.sleep(0.05)

    def polls_seen(pid, maps):
        err = wait_mapped(pid, maps)
        if err:
            return -1, err
        r = run([st, "-p", str(pid), "--batch", "--json", "-n", "3", "0.3"], timeout=30)
        if r.returncode != 0:
            return -1, r.stderr
        return max((w.get("total", {}).get("polls", 0) for o in jlines(r.stdout)
                    for w in o.get("worker", [])), default=0), r.stderr

    nsdir = os.path.join(tmp, "nsl")
    os.mkdir(nsdir)
    shutil.copy(os.path.realpath(lib), os.path.join(nsdir, soname))   # the host's copy
    if not shutil.which("unshare"):
        fail("unshare (util-linux) not installed")
    ns = subprocess.Popen(["unshare", "-m", "sh", "-c",
                           'mount -t tmpfs none "$1" && cp "$2" "$1/$4" && '
                           'LD_LIBRARY_PATH="$1" exec "$3" 2 100000', "sh", nsdir,
                           os.path.realpath(lib), wl_test, soname],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    n, err = polls_seen(ns.pid, os.path.join(nsdir, soname))
    stop(ns)
    if n <= 0:
        fail("a target in another mount namespace: polls %d (%s)" % (n, err.strip()))
    print("target in another mount namespace: %d polls seen" % n)
    deldir = os.path.join(tmp, "del")
    os.mkdir(deldir)
    shutil.copy(os.path.realpath(lib), os.path.join(deldir, soname))
    dl = subprocess.Popen([wl_test, "2", "100000"], stdout=subprocess.DEVNULL,
                          env=dict(os.environ, LD_LIBRARY_PATH=deldir))
    err = wait_mapped(dl.pid, os.path.join(deldir, soname))
    if err:
        stop(dl)
        fail("a target whose libweft was to be deleted: %s" % err)
    os.unlink(os.path.join(deldir, soname))
    n, err = polls_seen(dl.pid, os.path.join(deldir, soname + " (deleted)"))
    stop(dl)
    if n <= 0:
        fail("a target whose libweft was deleted: polls %d (%s)" % (n, err.strip()))
    print("target whose libweft was deleted since: %d polls seen" % n)
    # ... and the same two with weft linked into the executable: the probes
    # went on the path /proc/PID/exe shows, which names nothing here
    # ("... (deleted) has no weft:runtime_create probe", the host's file)
    wst = os.environ.get("WEFT_LOAD_STATIC")
    if not wst:
        fail("WEFT_LOAD_STATIC not set (run through ctest)")
    ns = subprocess.Popen(["unshare", "-m", "sh", "-c",
                           'mount -t tmpfs none "$1" && cp "$2" "$1/weft_load" && '
                           'exec "$1/weft_load" 2 100000', "sh", nsdir, wst],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    n, err = polls_seen(ns.pid, os.path.join(nsdir, "weft_load"))
    stop(ns)
    if n <= 0:
        fail("a static weft program in another mount namespace: polls %d (%s)"
             % (n, err.strip()))
    print("static weft program in another mount namespace: %d polls seen" % n)
    dexe = os.path.join(deldir, "weft_load_static")
    shutil.copy(wst, dexe)
    dl = subprocess.Popen([dexe, "2", "100000"], stdout=subprocess.DEVNULL)
    os.unlink(dexe)
    n, err = polls_seen(dl.pid, dexe + " (deleted)")
    stop(dl)
    if n <= 0:
        fail("a static weft program deleted since it started: polls %d (%s)"
             % (n, err.strip()))
    print("static weft program deleted since it started: %d polls seen" % n)

    # 14. record's dumps carry the lints and latency --batch --json shows
    #     (only the stall lints were made there)
    lt = os.path.join(os.path.dirname(os.environ["STALL_TARGET"]), "lint_target")
    rdir = os.path.join(tmp, "rec")
    r = run([st, "record", "-o", rdir, "--on", "exit", "--", lt, "blocking", "3"], timeout=40)
    dumps_ = [f for f in os.listdir(rdir) if f.endswith("-exit.json")] if os.path.isdir(rdir) else []
    if r.returncode != 0 or len(dumps_) != 1:
        fail("record -- lint_target blocking: rc %d, %s, %s" % (r.returncode, dumps_, r.stderr))
    with open(os.path.join(rdir, dumps_[0])) as f:
        ivs = json.load(f).get("intervals", [])
    names = set(l["name"] for iv in ivs for l in iv.get("lints", []))
    lat = sum(len(iv.get("latency", [])) for iv in ivs)
    if "blocking-call" not in names or lat == 0:
        fail("record's dump: lints %s, %d latency entries" % (sorted(names), lat))
    print("record: blocking-call in the dump, %d latency entries" % lat)
    shutil.rmtree(tmp, ignore_errors=True)


def test_escapes(st, wl_test, wl, lib):
    """Terminal escapes from the target are not passed to the terminal
    (before: `schedtop list` and the --no-bpf text printed names and paths
    raw, so a target could retitle or clear the reader's terminal)."""
    tmp = tempfile.mkdtemp(prefix="schedtop-esc-")
    bad = os.path.join(tmp.encode(), b"lib\x1b]0;T\x07\x1b[2J\xc2\x9bdir")
    os.mkdir(bad)
    shutil.copy(os.path.realpath(lib), os.path.join(bad, b"libweft.so.0"))
    # preloaded: the build's RPATH would win over LD_LIBRARY_PATH
    env = dict(os.environb, LD_PRELOAD=os.path.join(bad, b"libweft.so.0"))
    p = subprocess.Popen([os.environ["REVIEW_TARGET"], "escapes"], stdout=subprocess.PIPE,
                         text=True, env=env)
    pid = wait_ready(p)

    def raw(args):
        r = subprocess.run([st] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        return r.returncode, r.stdout + r.stderr

    outs = {}
    try:
        outs["list"] = raw(["list"])
        outs["batch"] = raw(["-p", str(pid), "--batch", "-n", "1", "0.3"])
        outs["no-bpf --prefix"] = raw(["-p", str(pid), "--no-bpf", "--prefix", "\x1b[7mw",
                                       "--batch", "-n", "1", "0.3"])
        outs["no-bpf, no worker"] = raw(["-p", str(pid), "--no-bpf", "--prefix", "nosuch",
                                         "--batch", "-n", "1", "0.3"])
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    want = {"list": [b"\\x1b]0;T\\x07\\x1b[2J\\xc2\\x9b"],   # the name, then the path
            "batch": [b"lib\\x1b]0;T\\x07\\x1b[2J\\xc2\\x9bdir"],
            "no-bpf --prefix": [b"\\x1b[7mw-0"],
            "no-bpf, no worker": [b"\\x1b]0;T\\x07\\x1b[2J\\xc2\\x9b"]}
    for what, (rc, out) in outs.items():
        if rc != 0:
            fail("%s: rc %d %r" % (what, rc, out[-400:]))
        for b in (b"\x1b", b"\x07", b"\xc2\x9b"):
            if b in out:
                fail("%s printed a raw %r: %r" % (what, b, out[-600:]))
        for w in want[what]:
            if w not in out:
                fail("%s: %r not shown escaped in %r" % (what, w, out[-600:]))
        if what == "list" and str(pid).encode() not in out:
            fail("list does not show pid %d: %r" % (pid, out))
        print("%s: no raw control byte (%d bytes)" % (what, len(out)))


def test_restart(st, wl_test, wl, lib):
    """Counters of a runtime re-created at the same address: before, the
    BPF side took new - old as unsigned, totals jumped by ~2^64 (printed
    as going backwards) and intervals read 0. The final total of polls
    equals the runtimes' own."""
    # short rounds: a runtime re-created between two of schedtop's reads
    r = run([st, "--batch", "--json", "0.25", "--", os.environ["REVIEW_TARGET"], "restart", "40",
             "0.1"], timeout=40)
    if r.returncode != 0:
        fail("schedtop -- review_target restart 40 0.1: rc %d %s" % (r.returncode, r.stderr))
    addrs = set(l.split()[3] for l in r.stdout.splitlines() if l.startswith("round "))
    objs = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    keys = ["steals_in", "tasks_stolen_in", "steals_out", "tasks_stolen_out", "parks",
            "unparks", "noop_unparks", "overflows", "steal_waits"]
    last = {}
    grew = 0
    for o in objs:
        for w in o.get("worker", []):
            k = (w["rt"], w["slot"])
            tot = w["total"]
            for f in keys:
                if tot[f] > 10 ** 12:
                    fail("worker %s: total %s = %d (wrapped)" % (k, f, tot[f]))
                if k in last and tot[f] < last[k][f]:
                    fail("worker %s: total %s went from %d to %d" % (k, f, last[k][f], tot[f]))
                if w[f] > 10 ** 9:
                    fail("worker %s: %s = %d in one interval (wrapped)" % (k, f, w[f]))
            # polls: the runtime's own counter, since it started; one re-created
            # restarts it from 0 (total.polls went backwards, the interval read 0)
            if k in last and tot["polls"] < last[k]["polls"]:
                fail("worker %s: total polls went from %d to %d" % (k, last[k]["polls"],
                                                                   tot["polls"]))
            if k in last and tot["parks"] > last[k]["parks"]:
                grew += 1
            last[k] = tot
    zero = [i for i, o in enumerate(objs) if o["polls_per_s"] == 0 and i < len(objs) - 1]
    if len(zero) > 1:
        fail("polls/s 0 in intervals %s of a busy target (restart read as 0)" % zero)
    if len(objs) < 12 or grew < 8:
        fail("%d intervals, parks grew in %d worker-intervals: %s" % (len(objs), grew,
                                                                       r.stderr[-400:]))
    # attached from the first instruction: the total since attach is every
    # poll of every round (the old runtime's polls after schedtop's last
    # sample of it were lost at each re-creation, and all of them when the
    # new one's counter passed that sample: 111,271 of 144,060)
    own = [int(l.split()[1]) for l in r.stdout.splitlines() if l.startswith("polls ")]
    tot = sum(w["total"]["polls"] for w in objs[-1]["worker"])
    print("polls: review_target %s, schedtop's final total %d" % (own, tot))
    if len(own) != 1 or tot != own[0]:
        fail("total polls %d, the runtimes' own %s" % (tot, own))
    print("%d intervals over %d runtime address(es): totals never decreased; final parks %s"
          % (len(objs), len(addrs), [t["parks"] for t in last.values()]))


def test_keep_outputs(st, wl_test, wl, lib):
    """A run that fails before it writes leaves existing output files alone."""
    d = tempfile.mkdtemp(prefix="schedtop-keep-")
    old = "an earlier run's output\n" * 2000   # longer than what replaces it
    names = ("t.json", "t.jsonl", "t.latency.json", "snaps.jsonl")
    paths = [os.path.join(d, n) for n in names]
    sleeper = subprocess.Popen(["sleep", "60"])
    load = None
    try:
        def seed():
            for p in paths:
                with open(p, "w") as f:
                    f.write(old)

        def check(what):
            left = sorted(os.listdir(d))
            if left != sorted(names):
                fail("%s: files now %s" % (what, left))
            for p in paths:
                with open(p) as f:
                    if f.read() != old:
                        fail("%s: %s changed" % (what, p))
        with open("/proc/sys/kernel/pid_max") as f:
            missing = f.read().strip()   # pids are below pid_max: no such process
        for what, args in (
                ("trace -p NOT_WEFT", ["trace", "-p", str(sleeper.pid), "-d", "1", "-o", paths[0]]),
                ("trace -p MISSING", ["trace", "-p", missing, "-d", "1", "-o", paths[0]]),
                ("trace, exit in --warmup", ["trace", "--warmup", "5", "-d", "1", "-o", paths[0],
                                             "--", wl_test, "2", "5"]),
                ("--batch --record, -p NOT_WEFT", ["-p", str(sleeper.pid), "--batch", "-n", "1",
                                                   "--record", paths[3]]),
                ("--batch --record, -p MISSING", ["-p", missing, "--batch", "-n", "1",
                                                  "--record", paths[3]])):
            seed()
            p = run([st] + args, timeout=30)
            if p.returncode != 1:
                fail("%s: rc %d: %s" % (what, p.returncode, p.stderr))
            check(what)
            print("%s: rc 1, the old files kept (%s)" % (what, p.stderr.strip().splitlines()[-1]))
        # a new file is still not left behind by such a run
        new = os.path.join(d, "new.json")
        p = run([st, "trace", "-p", str(sleeper.pid), "-d", "1", "-o", new], timeout=30)
        if p.returncode != 1 or [n for n in os.listdir(d) if n.startswith("new.")]:
            fail("trace -o new.json of a non-weft process: rc %d, files %s"
                 % (p.returncode, sorted(os.listdir(d))))
        # a run that works replaces the old files whole
        seed()
        load = subprocess.Popen([wl_test, "2", "100000"], stdout=subprocess.DEVNULL)
        time.sleep(0.3)
        p = run([st, "trace", "-p", str(load.pid), "-d", "0.5", "-o", paths[0]], timeout=30)
        if p.returncode != 0:
            fail("trace of weft_load: rc %d: %s" % (p.returncode, p.stderr))
        p = run([st, "-p", str(load.pid), "--batch", "-n", "2", "0.2", "--record", paths[3]],
                timeout=30)
        if p.returncode != 0:
            fail("--record of weft_load: rc %d: %s" % (p.returncode, p.stderr))
        with open(paths[0]) as f:
            json.load(f)
        with open(paths[2]) as f:
            json.load(f)
        for p in (paths[1], paths[3]):
            with open(p) as f:
                jlines(f.read())
        print("PASS: failed runs kept the old outputs; a run that works replaced them")
    finally:
        kill_and_remove([sleeper] + ([load] if load else []), d)


def test_trace_stdout(st, wl_test, wl, lib):
    """trace -o /dev/stdout, into a pipe and into a file: exit 0, stdout is
    the trace-event JSON alone (the summary on stderr), and no
    /dev/stdout.jsonl or /dev/stdout.latency.json is made. Before: exit 1
    ("/dev/stdout: Invalid argument", the truncation of the pipe), the
    summary inside the JSON, and the two files made in /dev."""
    d = tempfile.mkdtemp(prefix="schedtop-stdout-")
    extra = ["/dev/stdout.jsonl", "/dev/stdout.latency.json"]
    for e in extra:   # left by an earlier run of the old code
        if os.path.lexists(e):
            os.unlink(e)
    load = subprocess.Popen([wl_test, "2", "100000"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        args = [st, "trace", "-p", str(load.pid), "-d", "0.5", "-o", "/dev/stdout"]
        p = run(args, timeout=30)   # stdout: a pipe
        out_file = os.path.join(d, "t.json")
        with open(out_file, "w") as f:
            q = subprocess.run(args, stdout=f, stderr=subprocess.PIPE, text=True, timeout=30)
        for what, rc, out, err in (("a pipe", p.returncode, p.stdout, p.stderr),
                                   ("a file", q.returncode, open(out_file).read(), q.stderr)):
            print("-o /dev/stdout into %s: rc %d, %d bytes; stderr: %s"
                  % (what, rc, len(out), err.strip().splitlines()[:1]))
            if rc != 0:
                fail("-o /dev/stdout into %s: rc %d: %s" % (what, rc, err))
            try:
                ev = json.loads(out)
            except ValueError as e:
                fail("-o /dev/stdout into %s: stdout is not the JSON alone (%s): %r"
                     % (what, e, out[-300:]))
            if not ev.get("traceEvents"):
                fail("-o /dev/stdout into %s: no traceEvents" % what)
            if "summary:" not in err or "ring buffer drops" not in err:
                fail("-o /dev/stdout into %s: the summary is not on stderr: %r" % (what, err))
        made = [e for e in extra if os.path.lexists(e)]
        if made:
            for e in made:
                os.unlink(e)
            fail("trace -o /dev/stdout made %s" % made)
        print("PASS: trace -o /dev/stdout writes the JSON to stdout, the summary to stderr")
    finally:
        kill_and_remove([load], d)


def test_tui_dumb(st, wl_test, wl, lib):
    """TERM=dumb: refused before anything is attached or started, the
    --no-bpf view too (it wrote ESC [H ESC [2J to the dumb terminal each
    interval: it cleared the screen with hard-coded escapes, not terminfo's)."""
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    d = tempfile.mkdtemp(prefix="schedtop-dumb-")
    load = subprocess.Popen([wl_test, "2", "100000"], stdout=subprocess.DEVNULL)
    T = [tmux, "-L", "schedtop-dumb-%d" % os.getpid()]
    servers = []

    def cap():
        return subprocess.run(T + ["capture-pane", "-p", "-t", "st"], stdout=subprocess.PIPE,
                              text=True).stdout
    try:
        marker = os.path.join(d, "started")
        for what, args, word in (("-p PID", "-p %d 0.5" % load.pid, "cursor"),
                                 ("-- CMD", "0.5 -- sh -c 'touch %s; exec %s 2 100000'"
                                  % (marker, wl_test), "cursor"),
                                 ("--no-bpf -p PID", "--no-bpf -p %d 0.5" % load.pid, "clear"),
                                 ("--no-bpf -- CMD", "--no-bpf 0.5 -- sh -c 'touch %s; exec %s 2 "
                                  "100000'" % (marker, wl_test), "clear")):
            err, rcf = os.path.join(d, "err"), os.path.join(d, "rc")
            for f in (err, rcf):
                if os.path.exists(f):
                    os.unlink(f)
            subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
            # a server each: a new session on the socket of a server just
            # killed failed ("server exited unexpectedly")
            T[:] = [tmux, "-L", "schedtop-dumb-%d-%d" % (os.getpid(), len(servers))]
            servers.append(list(T))
            subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", "80", "-y", "24",
                                "TERM=dumb %s %s 2>%s; echo $? > %s; sleep 30"
                                % (st, args, err, rcf)], check=True)
            end = time.time() + 10
            while time.time() < end and not (os.path.exists(rcf) and open(rcf).read().strip()):
                time.sleep(0.2)
            if not os.path.exists(rcf) or not open(rcf).read().strip():
                fail("TERM=dumb %s: schedtop still runs after 10 s; screen:\n%s"
                     % (what, cap()))
            rc, msg = int(open(rcf).read()), open(err).read()
            print("TERM=dumb %s: rc %d, %s" % (what, rc, msg.strip()))
            if rc != 1 or "--batch" not in msg or word not in msg:
                fail("TERM=dumb %s: rc %d, %r; screen:\n%s" % (what, rc, msg, cap()))
            if os.path.exists(marker):
                fail("TERM=dumb %s: the command was started" % what)
        print("PASS: TERM=dumb refused with 'use --batch', nothing started (--no-bpf too)")
    finally:
        for srv in servers:
            subprocess.run(srv + ["kill-server"], stderr=subprocess.DEVNULL)
        kill_and_remove([load], d)


def test_batch_pipe(st, wl_test, wl, lib):
    """The reader of --batch output goes away: schedtop ends."""
    load = subprocess.Popen([wl_test, "2", "100000"], stdout=subprocess.DEVNULL)
    procs = [load]
    d = tempfile.mkdtemp(prefix="schedtop-pipe-")
    try:
        time.sleep(0.3)
        for what, args in (("-p PID", ["-p", str(load.pid)]),
                           ("-p PID --no-bpf", ["-p", str(load.pid), "--no-bpf"]),
                           ("-- CMD", ["--", wl_test, "2", "100000"])):
            p = subprocess.Popen([st, "--batch", "--json", "0.2"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(p)
            line = readline_within(p, 15)
            if not line or not line.startswith("{"):
                fail("%s: no first line: %r %s" % (what, line, p.stderr.read() if p.poll() else ""))
            child = json.loads(line)["pid"]
            p.stdout.close()   # as head -1 does
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fail("%s: schedtop still runs 10 s after its reader left" % what)
            err = p.stderr.read()
            if rc != 1 or "stdout" in err:
                fail("%s: rc %d, stderr %r" % (what, rc, err))
            if what == "-- CMD":
                time.sleep(0.3)
                if os.path.exists("/proc/%d" % child):
                    with open("/proc/%d/stat" % child) as f:
                        if f.read().split(") ")[1][0] not in "ZX":
                            fail("-- CMD: the command (pid %d) still runs" % child)
            print("%s: ended, rc %d, after its reader left" % (what, rc))
        print("PASS: --batch ends when its reader goes away")
    finally:
        kill_and_remove(procs, d)


def test_tui_utf8(st, wl_test, wl, lib):
    """A lint naming a symbol in UTF-8 (stall_target utf8: a fiber whose
    function is spin_ééé...) on the live view at 80x24 and 81x24: the lint
    line is clipped on characters and fills the width. Before, put() counted
    bytes: each 2-byte é cost two columns of the room, the line stopped 3-4
    columns short of the edge, and at one of the two widths cut the last é
    in half."""
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    T = []
    tp = None
    try:
        for w in (80, 81):
            tp = subprocess.Popen([os.environ["STALL_TARGET"], "8", "utf8"], stdout=subprocess.PIPE,
                                  text=True)
            pid = wait_ready(tp)
            T[:] = [tmux, "-L", "schedtop-utf8-%d-%d" % (os.getpid(), w)]
            subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", str(w), "-y", "24",
                                "%s -p %d 0.3" % (st, pid)], check=True)
            time.sleep(1.0)   # attached
            os.kill(pid, signal.SIGUSR1)
            end, line, screen = time.time() + 15, None, ""
            while time.time() < end and line is None:
                time.sleep(0.3)
                raw = subprocess.run(T + ["capture-pane", "-p", "-t", "st"],
                                     stdout=subprocess.PIPE).stdout
                screen = raw.decode("utf-8", errors="replace")
                for l in screen.split("\n"):
                    if l.startswith("[long-poll]") and "spin_é" in l:
                        line = l
            if line is None:
                fail("%d columns: no long-poll lint naming spin_é...; screen:\n%s" % (w, screen))
            print("%d columns: %r" % (w, line))
            if "\ufffd" in line or "\\x" in line:
                fail("%d columns: the lint line holds a broken character: %r" % (w, line))
            if not re.search(r"spin_é+$", line) or len(line) != w:
                fail("%d columns: the lint line is %d characters, not cut at the edge: %r"
                     % (w, len(line), line))
            joined = subprocess.run(T + ["capture-pane", "-p", "-J", "-t", "st"],
                                    stdout=subprocess.PIPE).stdout.decode("utf-8", "replace")
            if len(joined.rstrip("\n").split("\n")) != 24:
                fail("%d columns: a wrapped line:\n%s" % (w, joined))
            subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
            tp.kill()
            tp.wait()
        print("PASS: a UTF-8 lint is clipped on characters, at the width")
    finally:
        if T:
            subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        if tp:
            tp.kill()
            tp.wait()


def test_tui_lints(st, wl_test, wl, lib):
    """Every lint of an interval named on the live view's lint line at 80x24.
    tmux keeps no alternate screen here, so the last frame stays above the
    text schedtop prints when its count runs out (the same interval): each
    `LINT name:` of the text must be on the frame as `[name]`. Before, the
    lints shared one line in order and long-poll's detail filled it: a
    blocking-call in the same interval was not on the view at all."""
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    target = os.path.join(os.path.dirname(wl_test), "lint_target")
    T = [tmux, "-L", "schedtop-tuilints-%d" % os.getpid()]
    tp = None
    crowded = 0
    try:
        for run in range(4):
            tp = subprocess.Popen([target, "blocking", "30"], stdout=subprocess.PIPE, text=True)
            pid = wait_ready(tp)
            subprocess.run(T + ["-f", "/dev/null", "new-session", "-d", "-s", "st", "-x", "80",
                                "-y", "24", "%s -p %d 0.5 4; sleep 30" % (st, pid), ";",
                                "set-option", "-g", "alternate-screen", "off"], check=True)
            end, lines = time.time() + 20, []
            while time.time() < end:
                time.sleep(0.3)
                lines = subprocess.run(T + ["capture-pane", "-p", "-S", "-", "-t", "st"],
                                       stdout=subprocess.PIPE, text=True).stdout.split("\n")
                if any(l.startswith("pid %d " % pid) for l in lines):
                    break
            subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
            tp.kill()
            tp.wait()
            tp = None
            frames = [i for i, l in enumerate(lines) if l.startswith("schedtop pid %d " % pid)]
            text = [i for i, l in enumerate(lines) if l.startswith("pid %d " % pid)]
            if not frames or not text or text[-1] < frames[-1]:
                fail("run %d: no last frame and text; screen:\n%s" % (run, "\n".join(lines)))
            shown = lines[frames[-1] + 2]
            names = [m.group(1) for l in lines[text[-1]:] for m in [re.match(r"LINT (\S+):", l)] if m]
            print("run %d: lints %s, lint line %r" % (run, names, shown))
            missing = [n for n in names if "[%s]" % n not in shown]
            if missing:
                fail("run %d: %s not on the lint line %r (the interval's lints: %s)"
                     % (run, missing, shown, names))
            if "long-poll" in names and len(names) > 1 and names[-1] != "long-poll":
                crowded += 1
                if crowded >= 2:
                    break
        if not crowded:
            fail("lint_target blocking never drew long-poll and a lint after it in one interval")
        print("PASS: every lint of the interval is named on the live view's lint line")
    finally:
        subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        if tp:
            tp.kill()
            tp.wait()


def test_first_interval(st, wl_test, wl, lib):
    """Polls in the first interval after attaching, --batch and live."""
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    T = [tmux, "-L", "schedtop-first-%d" % os.getpid()]
    load = subprocess.Popen([wl, "--shape", "bursty", "--workers", "2", "--duration", "60", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)   # busy before the attach: no probe has given the counters yet
        for run_ in range(3):
            p = run([st, "-p", str(load.pid), "--batch", "--json", "-n", "1", "0.5"], timeout=30)
            o = jlines(p.stdout)[-1]
            rows = [(w["core"], w["polls"], w["parks"], w["total"]["polls"]) for w in o["worker"]]
            print("--batch, first interval (core, polls, parks, total polls):", rows)
            if sum(r[2] for r in rows) and sum(r[3] for r in rows) and not sum(r[1] for r in rows):
                fail("--batch: the first interval reads 0 polls beside %d parks: %s"
                     % (sum(r[2] for r in rows), rows))
        subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", "200", "-y", "50",
                            "%s -p %d 0.5 1; sleep 30" % (st, load.pid)], check=True)
        end, head = time.time() + 15, None
        while time.time() < end and head is None:
            time.sleep(0.3)
            for l in subprocess.run(T + ["capture-pane", "-p", "-t", "st"], stdout=subprocess.PIPE,
                                    text=True).stdout.split("\n"):
                if l.startswith("pid %d " % load.pid):
                    head = l
        if head is None:
            fail("the live view printed no interval on exit")
        print("live view, its one interval:", head)
        m = re.search(r"polls/s (\d+) .*parks/s (\d+)", head)
        if not m or (int(m.group(2)) and not int(m.group(1))):
            fail("live view: the first interval reads 0 polls/s beside the parks: %r" % head)
        print("PASS: the first interval after attaching counts the polls")
    finally:
        subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        load.kill()
        load.wait()


def test_tui_empty(st, wl_test, wl, lib):
    """The live view with no runtime, no worker and no sample."""
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    target = os.path.join(os.path.dirname(wl_test), "late_rt_target")
    tp = subprocess.Popen([target, "1"], stdout=subprocess.PIPE, text=True)
    T = [tmux, "-L", "schedtop-tuiempty-%d" % os.getpid()]
    cap, wait_for = pane_readers(T)
    try:
        ready = readline_within(tp, 10)
        if not ready or not ready.startswith("ready "):
            fail("late_rt_target: %r" % ready)
        subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", "80", "-y", "24",
                            "%s -p %s 0.3; sleep 30" % (st, ready.split()[1])], check=True)
        one = wait_for("1 workers")
        if "workers 0" not in one.split("\n")[0]:
            fail("header: %r" % one.split("\n")[0])
        subprocess.run(T + ["send-keys", "-t", "st", "2"])
        wait_for("2 steal matrix")
        subprocess.run(T + ["send-keys", "-t", "st", "3"])
        three = wait_for("3 histograms")
        titles = [l for l in three.split("\n") if " n=" in l]
        print("\n".join(titles))
        if len(titles) != 2 or three.count(" n=0 ") != 4:
            fail("histogram titles: %r" % titles)
        if three.count("p50- p99-") != 4:
            fail("an empty histogram without '-' percentiles: %r" % titles)
        print("PASS: views 1 2 3 with no runtime; empty histograms say p50- p99-")
    finally:
        subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        tp.kill()
        tp.wait()


def bss_cells(st_pid, var):
    """A writable mapping of schedtop's BPF .bss (pid st_pid), and the offset
    of its variable var there: (mmap, offset)."""
    import ctypes
    import mmap
    import struct
    map_id = None
    for fd in os.listdir("/proc/%d/fdinfo" % st_pid):
        try:
            info = open("/proc/%d/fdinfo/%s" % (st_pid, fd)).read()
        except OSError:
            continue
        m = re.search(r"^map_id:\s*(\d+)", info, re.M)
        if not m:
            continue
        show = json.loads(subprocess.run(["bpftool", "map", "show", "id", m.group(1), "-j"],
                                         stdout=subprocess.PIPE, text=True).stdout or "{}")
        if show.get("name", "").endswith(".bss"):
            map_id, size, btf = int(m.group(1)), show["bytes_value"], show["btf_id"]
            break
    if map_id is None:
        fail("schedtop (pid %d) holds no .bss map" % st_pid)
    dump = subprocess.run(["bpftool", "btf", "dump", "id", str(btf), "format", "raw"],
                          stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"offset=(\d+) size=\d+ \(VAR '%s'\)" % var, dump)
    if not m:
        fail("no %s in the .bss's BTF" % var)
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("III", map_id, 0, 0), 128)
    nr = {"x86_64": 321, "aarch64": 280}[os.uname().machine]   # bpf(2)
    fd = libc.syscall(nr, 14, attr, 128)   # BPF_MAP_GET_FD_BY_ID
    if fd < 0:
        fail("BPF_MAP_GET_FD_BY_ID %d: errno %d" % (map_id, ctypes.get_errno()))
    try:
        mm = mmap.mmap(fd, (size + 4095) // 4096 * 4096, mmap.MAP_SHARED,
                       mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    return mm, int(m.group(1))


def test_tui_small(st, wl_test, wl, lib):
    """The histogram view in small terminals, a steal-matrix cell of a
    million steals (found by a review, 2026-12-07)."""
    import struct
    tmux = shutil.which("tmux")
    if not tmux:
        fail("tmux not installed (scripts/setup-deps)")
    if os.uname().machine not in ("x86_64", "aarch64"):
        skip("the .bss mapping calls bpf(2) by its number, known for x86_64 and aarch64")
    load = subprocess.Popen([wl_test, "2", "6000"], stdout=subprocess.DEVNULL)
    T = []
    names = ("park", "wake->run", "tasks/steal", "futex wait")
    count = r"\d+(\.\d)?[kMGTPE]?"
    row = re.compile(r"^\S+\s+" + count + r"( #*)?\s*$")
    pct = re.compile(r"^(-|(<|>=)\d+(\.\d+)?(ns|us|ms|s)?)(\s|$)")
    try:
        time.sleep(0.3)
        for w, h in ((80, 8), (30, 24), (20, 12)):
            if T:
                subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
            T[:] = [tmux, "-L", "schedtop-small-%d-%d" % (os.getpid(), w)]   # a server each
            cap, wait_for = pane_readers(T)
            subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", str(w), "-y", str(h),
                                "%s -p %d 0.5; sleep 30" % (st, load.pid)], check=True)
            wait_for("1 workers")
            subprocess.run(T + ["send-keys", "-t", "st", "3"])
            wait_for("3 histogram")
            bw = (w - 2) // 2
            for shot in range(3):   # a few intervals: other figures, other widths
                time.sleep(0.6)
                c = cap()
                lines = c.split("\n")
                if lines and lines[-1] == "":
                    lines = lines[:-1]
                def sfail(msg):
                    fail("%dx%d: %s; screen:\n%s" % (w, h, msg, c))
                if len(lines) != h or any(len(l) > w for l in lines):
                    sfail("%d lines, or one longer than %d" % (len(lines), w))
                if not lines[-1].startswith("3 histogram"):
                    sfail("the footer is not the last line")
                if h < 9 and "2 of 4" not in lines[-1]:
                    sfail("the footer does not say the bottom pair is left out")
                titles = 0
                for y in range(4, h - 1):
                    for half in (lines[y][:bw], lines[y][bw + 2:]):
                        if not half.strip():
                            continue
                        name = [n for n in names if half.startswith(n[:max(1, min(len(n), bw - 4))])]
                        if name and not row.match(half):   # a title
                            titles += 1
                            for m in re.finditer(r"p(50|99)", half):
                                if not pct.match(half[m.end():]):
                                    sfail("a percentile cut in %r" % half)
                            under = lines[y + 1][:bw] if half is lines[y][:bw] else lines[y + 1][bw + 2:]
                            if y + 1 >= h - 1 or not (row.match(under) or "(no data)" in under):
                                sfail("box %r has no row under its title" % half.strip())
                        elif not row.match(half):
                            sfail("histogram row %r: no whole count" % half)
                if titles != (2 if h < 9 else 4):
                    sfail("%d box titles" % titles)
            print("%dx%d:\n%s" % (w, h, c))
            if h < 9:
                # view 2 here holds the title, the labels and one of the two
                # rows: the footer asks for a taller terminal (it said
                # "widen", at 80 columns already wide enough)
                subprocess.run(T + ["send-keys", "-t", "st", "2"])
                two = wait_for("2 steal matrix").split("\n")
                foot = [l for l in two if l.startswith("2 steal matrix")][0]
                if "make taller" not in foot or "widen" in foot:
                    fail("%dx%d steal matrix footer: %r" % (w, h, foot))
        # a million steals a cell: 6 columns still (e.g. 2.5M), the rows aligned
        if T:
            subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        T[:] = [tmux, "-L", "schedtop-small-%d-matrix" % os.getpid()]
        cap, wait_for = pane_readers(T)
        subprocess.run(T + ["new-session", "-d", "-s", "st", "-x", "80", "-y", "24",
                            "%s -p %d 0.5; sleep 30" % (st, load.pid)], check=True)
        wait_for("1 workers")
        st_pid = None
        for d in os.listdir("/proc"):
            try:
                argv = open("/proc/%s/cmdline" % d, "rb").read().split(b"\0")
            except (OSError, ValueError):
                continue
            if d.isdigit() and argv[0] == st.encode() and str(load.pid).encode() in argv:
                st_pid = int(d)
        if not st_pid:
            fail("schedtop's pid not found")
        mm, off = bss_cells(st_pid, "matrix")
        subprocess.run(T + ["send-keys", "-t", "st", "2"])
        wait_for("2 steal matrix")
        big = re.compile(r"\d{7}|\dM")
        end, c = time.time() + 15, ""
        while time.time() < end:
            for t, v in ((0, 1), (1, 0)):   # the target's two workers: slots 0 and 1
                o = off + (t * 64 + v) * 16   # struct weft_bpf_steal_cell: ops, tasks
                struct.pack_into("Q", mm, o, struct.unpack_from("Q", mm, o)[0] + 1000000)
            time.sleep(0.2)
            c = cap()
            if any(big.search(l) for l in c.split("\n")[6:8]):
                break
        mm.close()
        lines = c.split("\n")
        print("steal matrix, a million steals a cell:\n" + "\n".join(lines[4:9]))
        ncol = (len(lines[5].rstrip()) - 8) // 7
        if ncol != 2:
            fail("matrix header %r: %d columns" % (lines[5], ncol))
        for l in lines[6:8]:
            cells = [l[8 + 7 * k:8 + 7 * (k + 1)] for k in range(ncol)]
            if not l.startswith("w") or len(l.rstrip()) != 8 + 7 * ncol or \
               not all(re.match(r"^ +" + count + "$", x) for x in cells):
                fail("matrix row %r: not %d cells of 7 columns" % (l, ncol))
        if not any(big.search(l) for l in lines[6:8]):
            fail("no cell of a million steals drawn")
        print("PASS: histograms at 80x8, 30x24, 20x12: whole counts and percentiles, nothing over "
              "the footer; a million steals in a 6-column cell")
    finally:
        if T:
            subprocess.run(T + ["kill-server"], stderr=subprocess.DEVNULL)
        load.kill()
        load.wait()


def test_hangup(st, wl_test, wl, lib):
    """SIGHUP ends schedtop as SIGTERM does, unless it was ignored."""
    procs, children = [], []
    d = tempfile.mkdtemp(prefix="schedtop-hup-")
    try:
        for nohup in (False, True):
            pre = (lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if nohup else None
            p = subprocess.Popen([st, "--batch", "--json", "0.2", "--", wl_test, "2", "100000"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=pre)
            procs.append(p)
            line = readline_within(p, 15)
            if not line or not line.startswith("{"):
                fail("nohup %s: no first line: %r" % (nohup, line))
            child = json.loads(line)["pid"]
            children.append(child)
            p.send_signal(signal.SIGHUP)
            if nohup:
                time.sleep(1.0)
                if p.poll() is not None:
                    fail("started with SIGHUP ignored, it ended on SIGHUP (rc %s)" % p.returncode)
                p.terminate()
            try:
                out, err = p.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                fail("nohup %s: 15 s after the signal, schedtop or CMD (pid %d) still holds its stdout" % (nohup, child))
            last = [l for l in out.splitlines() if l.startswith("{")][-1]
            obj = json.loads(last)
            if p.returncode != 0 or not obj.get("final") or obj.get("end") != "signal":
                fail("nohup %s: rc %d, last object %s, stderr %r" % (nohup, p.returncode, last[:200], err))
            time.sleep(0.3)
            if os.path.exists("/proc/%d" % child):
                with open("/proc/%d/stat" % child) as f:
                    if f.read().split(") ")[1][0] not in "ZX":
                        fail("nohup %s: the command (pid %d) still runs" % (nohup, child))
            print("nohup %s: ended on %s, final object, CMD stopped" % (nohup, "SIGTERM" if nohup else "SIGHUP"))
        print("PASS: a hang-up ends schedtop as SIGTERM does, unless ignored")
    finally:
        kill_and_remove(procs, d)
        for c in children:  # a CMD left running by a failure
            try:
                with open("/proc/%d/cmdline" % c, "rb") as f:
                    if wl_test.encode() in f.read():
                        os.kill(c, signal.SIGKILL)
            except OSError:
                pass


TESTS = {"tui_two": test_tui_two, "tui_cmd": test_tui_cmd, "tui_nobpf": test_tui_nobpf, "escapes": test_escapes, "restart": test_restart, "hardening": test_hardening, "tui": test_tui, "record": test_record, "record_stuck": test_record_stuck, "record_dir": test_record_dir, "record_symlink": test_record_symlink, "record_full": test_record_full, "record_early_usr1": test_record_early_usr1, "record_sigint": test_record_sigint, "list_sparse": test_list_sparse, "metrics_interval": test_metrics_interval, "metrics_port": test_metrics_port, "metrics_http": test_metrics_http, "faults": test_faults, "perf": test_perf, "diff": test_diff, "metrics": test_metrics,
         "wrappers": test_wrappers, "keep_outputs": test_keep_outputs,
         "tui_dumb": test_tui_dumb, "batch_pipe": test_batch_pipe, "hangup": test_hangup,
         "tui_empty": test_tui_empty, "trace_stdout": test_trace_stdout,
         "tui_utf8": test_tui_utf8, "tui_lints": test_tui_lints, "first_interval": test_first_interval,
         "files": test_files, "tui_small": test_tui_small}


def main():
    if len(sys.argv) != 6 or sys.argv[5] not in TESTS:
        print(__doc__)
        sys.exit(2)
    TESTS[sys.argv[5]](*sys.argv[1:5])


if __name__ == "__main__":
    main()
