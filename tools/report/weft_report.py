#!/usr/bin/env python3
"""weft_report.py - one self-contained HTML page about a weft-load run.

    weft_report.py --load LOAD.json [--events TRACE.jsonl] [--latency TRACE.latency.json] -o REPORT.html
    weft_report.py --load LOAD.json --no-bpf "REASON" [--write-trace TRACE.json] -o REPORT.html

LOAD.json is written by `weft-load --output` (summary, per-worker runtime
metrics and a time series sampled once per interval). TRACE.jsonl holds the
events of `schedtop trace` (steal, steal_fail, park, unpark, notify,
overflow, worker_start/stop; ts_ns on CLOCK_MONOTONIC, like weft-load's t0_ns).

Sections (each an element with that id): summary, throughput, timeline,
steal-matrix, park-histogram, unpark-histogram, latency, notes. Without
events the BPF-only views (steal matrix, worker states, park and unpark
histograms) say why they are missing and show what the runtime's metrics do
know instead. With --write-trace and no events it also writes a Chrome/
Perfetto trace-event file with counter tracks from the metrics series.
Events of several runtimes (their "rt") make these BPF views once per
runtime, each under its label.

Inline SVG, HTML tables (the steal matrix) and CSS only: no script runs,
nothing is fetched. The numbers
behind the charts are embedded as JSON (<script type="application/json"
id="report-data">) for tests and other tools, with <, > and & as \\u
escapes so no text from the inputs can end or disturb that element.

Standard library only (python3 >= 3.9).
"""
import argparse
import array
import html
import json
import math
import operator
import os
import signal
import sys
import tempfile

STATE_COLOR = {"running": "#2e7d32", "searching": "#f9a825", "parked": "#b0bec5"}
PALETTE = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#ad1457"]


def esc(s):
    return html.escape(str(s), quote=True)


# What the page shows for a value the load file does not have: a key that
# an older or hand-written file lacks, or null. Formatted as they were,
# such values read "None" ("weft load report — None", "seed None", "None
# / None") or were made 0 ("measured 0.0 s", "0 steal operations") and a
# missing graph check "INCOMPLETE" (a review, 2026-12-07).
DASH = "\u2013"


def fmt_ns(ns):
    if ns is None:
        return DASH
    ns = float(ns)
    if ns < 1e3:
        return "%.0f ns" % ns
    if ns < 1e6:
        return "%.1f µs" % (ns / 1e3)
    if ns < 1e9:
        return "%.2f ms" % (ns / 1e6)
    return "%.2f s" % (ns / 1e9)


# schedtop's percentile in the runtime histograms' open top bucket (every
# value from 2^31 ns up): 2^64 - 1, "no bound" (docs/OBSERVABILITY.md).
HIST_OPEN = 2 ** 64 - 1
HIST_OPEN_FROM_NS = 2 ** 31


def fmt_lat_ns(ns):
    """A percentile of schedtop's latency JSON: a bucket's upper bound, or
    at least the open top bucket's lower bound (formatted as a duration,
    2^64 - 1 read "18446744073.71 s")."""
    if ns == HIST_OPEN:
        return "\u2265 " + fmt_ns(HIST_OPEN_FROM_NS)
    return fmt_ns(ns)


def fmt_num(x):
    if x is None:
        return DASH
    x = float(x)
    if abs(x) >= 1e9:
        return "%.2fG" % (x / 1e9)
    if abs(x) >= 1e6:
        return "%.2fM" % (x / 1e6)
    if abs(x) >= 1e4:
        return "%.1fk" % (x / 1e3)
    if x == int(x):
        return "%d" % x
    return "%.1f" % x


def nice_ceil(v):
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * e:
            return m * e
    return 10 * e


# ---------------------------------------------------------------- events

# Event types whose worker is their "core" (Analysis follows its state).
CORE_TYPES = ("steal", "steal_fail", "overflow", "park", "unpark", "worker_start", "worker_stop")


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def event_ok(e):
    """An event Analysis can use: a JSON object with an integer ts_ns
    and a string type; an integer core where the type names a worker by it;
    a steal's victim (and its task count n, if given) integers too. ts_ns
    and n in the range schedtop writes them (64 bits): JSON integers have
    no bound, and one of 10**400 ended the report (OverflowError)."""
    if not isinstance(e, dict) or not is_int(e.get("ts_ns")) or not isinstance(e.get("type"), str):
        return False
    if not 0 <= e["ts_ns"] < 2 ** 64:
        return False
    if e["type"] in CORE_TYPES and not is_int(e.get("core")):
        return False
    return e["type"] != "steal" or (is_int(e.get("victim")) and is_int(e.get("n", 0))
                                    and 0 <= e.get("n", 0) < 2 ** 63)


# The most workers a runtime has (WEFT_MAX_WORKERS).
MAX_WORKERS = 256


def in_range(e, workers):
    """The worker numbers an event names (core, victim, notify's to) are
    workers of this run: 0..workers-1, or -1 (not a worker: a notify from
    outside the runtime, runtime_shutdown). The steal matrix and the
    per-worker tracks are sized by the run's workers, not by the events."""
    return all(-1 <= e[k] < workers for k in ("core", "victim", "to") if is_int(e.get(k)))


class Events:
    """The usable events of a trace, column by column in typed arrays,
    about 35 bytes an event, for a file read_events must sort. A list of
    the decoded JSON objects took some 900 bytes an event: 1e6 events (a
    60 s run with 8 workers traces a few million) held 915 MB, the report
    running the machine out of memory (a review, 2026-12-07).

    An event is (ts_ns, type, core, victim, n, reason0, to, rt): core,
    victim and to are -1 where the event has none (or not an integer, in a
    type that needs none), n is a steal's task count (0 elsewhere), reason0
    is whether its "reason" is 0 or absent (an unpark the notify woke), rt
    its runtime's id (None where the event has none)."""

    def __init__(self):
        self.ts = array.array("Q")
        self.ty = array.array("l")
        self.core = array.array("h")
        self.victim = array.array("h")
        self.to = array.array("h")
        self.n = array.array("q")
        self.reason0 = array.array("b")
        self.rt = array.array("i")
        self.types, self.type_ix = [], {}
        self.rts, self.rt_ix = [], {}
        self.order = None  # the time order, when the file was not in it

    def add(self, ts, ty, core, victim, n, reason0, to, rt):
        ix = self.type_ix.get(ty)
        if ix is None:
            ix = self.type_ix[ty] = len(self.types)
            self.types.append(ty)
        rx = self.rt_ix.get(rt)
        if rx is None:
            rx = self.rt_ix[rt] = len(self.rts)
            self.rts.append(rt)
        if self.ts and ts < self.ts[-1] and self.order is None:
            self.order = True  # sort() makes it
        self.ts.append(ts)
        self.ty.append(ix)
        self.core.append(core)
        self.victim.append(victim)
        self.to.append(to)
        self.n.append(n)
        self.reason0.append(reason0)
        self.rt.append(rx)

    def sort(self):
        """By ts_ns, stable (events of one ts_ns keep the file's order)."""
        if self.order:
            self.order = array.array("l", sorted(range(len(self.ts)), key=self.ts.__getitem__))

    def __len__(self):
        return len(self.ts)

    def __iter__(self):
        types, rts = self.types, self.rts
        cols = (self.ts, self.ty, self.core, self.victim, self.n, self.reason0, self.to, self.rt)
        for i in (self.order if self.order else range(len(self.ts))):
            ts, ty, c, v, n, r, to, rt = (col[i] for col in cols)
            yield ts, types[ty], c, v, n, r, to, rts[rt]


# A progress line on stderr every this many lines of an events file
# (about 1.5 s of reading).
PROGRESS_LINES = 200000

# read_events analyses the events as it reads them, in time order through
# a buffer of REORDER_EVENTS to 2 * REORDER_EVENTS events, sorted when full
# and its first half analysed: an event at most REORDER_EVENTS lines late
# in the file still takes its place (schedtop's ring buffer is filled by
# every CPU at once, so neighbours may be out of order). One later than
# that makes it read the file again, keeping every event (an Events) to
# sort them.
REORDER_EVENTS = 65536


class OutOfOrder(Exception):
    """An event earlier than one already analysed."""


first_item = operator.itemgetter(0)


def scan_events(path, workers, sink):
    """Read a schedtop trace file, calling sink(ts, type, core, victim, n,
    reason0, to, rt) for each usable event in the file's order (Events says
    what they are). Returns the lines skipped: (not JSON, not events,
    naming a worker outside the run). The file is read as bytes and
    decoded line by line, so one bad byte costs one line.

    Reading takes most of the report's time (5 of 8 s for the 1.1e6
    events of a 60 s run with 8 workers), which went by without a word:
    every PROGRESS_LINES lines a line on stderr says how far it is (a
    review, 2026-12-07)."""
    unreadable, malformed, outside = 0, 0, 0
    lines = 0
    with open(path, "rb") as f:
        size = max(1, os.fstat(f.fileno()).st_size)
        for raw in f:
            lines += 1
            if lines % PROGRESS_LINES == 0:
                print("weft_report: %s: %d lines read (%d%%)" % (path, lines, min(100, 100 * f.tell() // size)),
                      file=sys.stderr, flush=True)
            raw = raw.strip()
            if not raw:
                continue
            try:
                e = json.loads(raw.decode("utf-8"))
            # UnicodeDecodeError is a ValueError; RecursionError: nested
            # deeper than Python's decoder goes ([[[[...), which ended the
            # whole report in a traceback (a review)
            except (ValueError, RecursionError):
                unreadable += 1
                continue
            if not event_ok(e):
                malformed += 1
            elif not in_range(e, workers):
                outside += 1
            else:
                ty = e["type"]
                core, victim, to, rt = (e.get(k) for k in ("core", "victim", "to", "rt"))
                sink(e["ts_ns"], ty, core if is_int(core) else -1, victim if is_int(victim) else -1,
                     e.get("n", 0) if ty == "steal" else 0, 1 if e.get("reason", 0) == 0 else 0,
                     to if is_int(to) else -1,  # in_range kept -1..workers-1
                     rt if is_int(rt) else None)
    return lines, unreadable, malformed, outside


def read_events(path, workers, t0_ns, t_range):
    """The analysis (a Runtimes: an Analysis per runtime) of the events of
    a schedtop trace file
    and how many lines were skipped: lines that are not JSON (or not
    UTF-8), JSON that is not an event (event_ok), and events naming a
    worker the run did not have (in_range). Skipped lines are reported
    once on stderr.

    The events are analysed as they are read, in time order through a
    buffer of REORDER_EVENTS or more (a file further out of order is read
    again, its events kept and sorted). They were all kept first, about 31
    bytes each, and each worker state span as a tuple: an hour's trace
    (7e6 events, 400 MB) took 80 s and 1.4 GB, and an hour with 8 busy
    workers traces ten times as many (a review, 2026-12-07)."""
    an = Runtimes(workers, t0_ns, t_range)
    buf = []  # in file order; sorted (stably, by ts_ns) when full, its first half analysed

    def sink(*ev):
        if ev[0] < an.last and an.n:
            raise OutOfOrder()
        buf.append(ev)
        if len(buf) >= 2 * REORDER_EVENTS:
            buf.sort(key=first_item)
            for e in buf[:REORDER_EVENTS]:
                an.feed(*e)
            del buf[:REORDER_EVENTS]

    try:
        counts = scan_events(path, workers, sink)
        buf.sort(key=first_item)
        for e in buf:
            an.feed(*e)
    except OutOfOrder:
        print("weft_report: %s: events more than %d lines out of time order: reading it again to sort them"
              % (path, REORDER_EVENTS), file=sys.stderr, flush=True)
        del buf[:]
        evs = Events()
        counts = scan_events(path, workers, evs.add)
        evs.sort()
        an = Runtimes(workers, t0_ns, t_range)
        for ev in evs:
            an.feed(*ev)
        del evs
    lines, unreadable, malformed, outside = counts
    if unreadable or malformed:
        print("weft_report: %s: skipped %d lines that are not JSON and %d that are not events (an object "
              "with an integer ts_ns, a string type, and the integer core or victim its type needs)"
              % (path, unreadable, malformed), file=sys.stderr)
    if outside:
        print("weft_report: %s: skipped %d events naming a worker outside 0..%d (the run had %d workers)"
              % (path, outside, workers - 1, workers), file=sys.stderr)
    an.finish()
    if lines >= PROGRESS_LINES:
        print("weft_report: %s: %d events read; building the page" % (path, an.n), file=sys.stderr, flush=True)
    return an, unreadable + malformed + outside


class StateBins:
    """The worker timeline's state rows for one chart width, filled span by
    span: per worker and pixel column the seconds in each state (the
    column's dominant one is drawn), and per worker the seconds in each
    state over the whole trace. The spans themselves are not kept."""

    def __init__(self, workers, t_range, nbins):
        x0, x1 = t_range
        if x1 <= x0:
            x1 = x0 + 1
        self.x0, self.x1, self.nbins = x0, x1, nbins
        # a worker's columns are made at its first span: a runtime per
        # Analysis (Runtimes), and a process may make many, each sized
        # by the run's workers
        self.acc = [None] * workers
        self.tot = [{"running": 0.0, "searching": 0.0, "parked": 0.0} for _ in range(workers)]

    def add(self, w, a, b, st):
        x0, x1, nbins = self.x0, self.x1, self.nbins
        tot = self.tot[w]
        tot[st] = tot.get(st, 0.0) + (b - a)
        if b <= x0 or a >= x1:
            return
        acc = self.acc[w]
        if acc is None:
            acc = self.acc[w] = [dict() for _ in range(nbins)]
        a, b = max(a, x0), min(b, x1)
        fa = (a - x0) / (x1 - x0) * nbins
        fb = (b - x0) / (x1 - x0) * nbins
        i = int(fa)
        while i < nbins and i < fb:
            ov = min(fb, i + 1) - max(fa, i)
            if ov > 0:
                acc[i][st] = acc[i].get(st, 0.0) + ov
            i += 1


def timeline_bins(width):
    """The pixel columns of timeline_svg's rows at width."""
    return width - TIMELINE_ML - TIMELINE_MR


class Analysis:
    """Worker state spans, steal matrix, park durations, unpark latencies,
    from events fed one at a time in time order (feed), then finish().

    State rules are those of schedtop's trace.c (docs/OBSERVABILITY.md):
    worker_start, unpark and steal_fail start `searching`; steal and
    overflow mean `running`; park starts `parked`; worker_stop ends the
    track. A worker that finds work in its own ring or the inject queue
    fires no probe, so `searching` after an unpark is an upper bound.

    Each span goes into the timeline's pixel columns at both chart widths
    as it ends (StateBins); durations are kept in typed arrays, 8 bytes
    each."""

    def __init__(self, workers, t0_ns, t_range):
        n = self.workers = workers  # read_events kept only events naming workers below it
        self.t0 = t0_ns
        self.matrix = [[0] * n for _ in range(n)]        # steal operations [thief][victim]
        self.matrix_tasks = [[0] * n for _ in range(n)]  # tasks stolen
        self.bins = {w: StateBins(n, t_range, timeline_bins(w)) for w in (WIDE, NARROW)}
        self.cur = [None] * n                            # (state, start_ns)
        self.park_at = [None] * n
        self.notify_at = [None] * n
        self.park_ns, self.unpark_ns = array.array("q"), array.array("q")
        self.park_core = [array.array("q") for _ in range(n)]  # park_ns by worker
        self.counts = {}
        self.n, self.first, self.last = 0, t0_ns, t0_ns
        self.seen = 0  # 1 + the highest worker number an event named

    def __len__(self):
        return self.n

    def switch(self, c, state, ts):
        cur = self.cur[c]
        if cur is not None:
            st, since = cur
            if st == state:
                return
            if ts > since:
                a, b = (since - self.t0) / 1e9, (ts - self.t0) / 1e9
                for sb in self.bins.values():
                    sb.add(c, a, b, st)
        self.cur[c] = (state, ts) if state else None

    def feed(self, ts, ty, c, v, tasks, reason0, to):
        if not self.n:
            self.first = ts
        self.n += 1
        self.last = ts
        self.counts[ty] = self.counts.get(ty, 0) + 1
        n = self.workers
        self.seen = max(self.seen, c + 1, v + 1, to + 1)
        valid = 0 <= c < n
        if ty == "steal" and valid:
            if 0 <= v < n:
                self.matrix[c][v] += 1
                self.matrix_tasks[c][v] += tasks
            self.switch(c, "running", ts)
        elif ty == "overflow" and valid:
            self.switch(c, "running", ts)
        elif ty in ("unpark", "worker_start", "steal_fail") and valid:
            if ty == "unpark":
                if self.park_at[c] is not None:
                    self.park_ns.append(ts - self.park_at[c])
                    self.park_core[c].append(ts - self.park_at[c])
                    self.park_at[c] = None
                if self.notify_at[c] is not None and reason0:
                    self.unpark_ns.append(ts - self.notify_at[c])
                self.notify_at[c] = None
            self.switch(c, "searching", ts)
        elif ty == "park" and valid:
            self.park_at[c] = ts
            self.notify_at[c] = None
            self.switch(c, "parked", ts)
        elif ty == "notify":
            if 0 <= to < n and self.notify_at[to] is None:
                self.notify_at[to] = ts  # the first notify since it parked
        elif ty == "worker_stop" and valid:
            self.switch(c, None, ts)

    def finish(self):
        for c in range(self.workers):
            if self.cur[c] is not None:
                self.switch(c, None, self.last)
        # sorted once for every percentile taken of them
        self.park_ns = array.array("q", sorted(self.park_ns))
        self.unpark_ns = array.array("q", sorted(self.unpark_ns))
        self.park_core = [array.array("q", sorted(a)) for a in self.park_core]

    def result(self, workers=None):
        """The figures, of the first `workers` workers (default: all)."""
        n = self.workers if workers is None else workers
        return {
            "workers": n,
            "matrix": [row[:n] for row in self.matrix[:n]],
            "matrix_tasks": [row[:n] for row in self.matrix_tasks[:n]],
            "bins": self.bins,
            "park_ns": self.park_ns,
            "park_core": self.park_core[:n],
            "unpark_ns": self.unpark_ns,
            "counts": self.counts,
            "window_s": [(self.first - self.t0) / 1e9, (self.last - self.t0) / 1e9],
        }


class Runtimes:
    """An Analysis per runtime the events name (their "rt": several
    runtimes of one process, or a runtime created again at another
    address), numbered in the order their first event came, as schedtop
    trace numbers its tracks. Events without an rt are one runtime.

    Their worker numbers are each runtime's own: fed to one Analysis, the
    events of a second runtime's worker 0 were drawn as the first one's
    worker 0 (its parks in that worker's states, its steals in the same
    matrix, a notify to it timed against the other one's unpark), one
    picture of two runtimes that named none (a review, 2026-12-07)."""

    def __init__(self, workers, t0_ns, t_range):
        self.args = (workers, t0_ns, t_range)
        self.by_rt = {}
        self.order = []  # the rt ids, first event first
        self.n, self.first, self.last = 0, t0_ns, t0_ns
        self.counts = {}

    def __len__(self):
        return self.n

    def feed(self, ts, ty, c, v, tasks, reason0, to, rt):
        an = self.by_rt.get(rt)
        if an is None:
            an = self.by_rt[rt] = Analysis(*self.args)
            self.order.append(rt)
        if not self.n:
            self.first = ts
        self.n += 1
        self.last = ts
        self.counts[ty] = self.counts.get(ty, 0) + 1
        an.feed(ts, ty, c, v, tasks, reason0, to)

    def finish(self):
        for an in self.by_rt.values():
            an.finish()

    def runtimes(self):
        """[(label, rt, result)] in order. One runtime: its result sized
        by the run's workers, as before; several: each sized by the
        workers its events name (the load file's count is weft-load's
        runtime's, and the file does not say which runtime that was)."""
        out = []
        for k, rt in enumerate(self.order, 1):
            an = self.by_rt[rt]
            r = an.result(None if len(self.order) == 1 else max(1, min(an.seen, an.workers)))
            out.append(("runtime %d (%s)" % (k, "no id" if rt is None else "0x%x" % rt), rt, r))
        return out

    def window_s(self):
        t0 = self.args[1]
        return [(self.first - t0) / 1e9, (self.last - t0) / 1e9]


# ---------------------------------------------------------------- series

def series_rates(load):
    """Per-interval rates from the cumulative series of weft-load.

    A sample whose metrics snapshot failed has no "worker" (weft-load
    prints "-" for its rates): its row has tasks/s alone, and the next row
    with metrics has the per-worker rates since the last sample that had
    them, from "m_t0" (as weft-load's progress line does). Every row had
    to have them: such a run's report failed, "not weft-load's output
    (KeyError: 'steals_per_s')" (a review)."""
    out = []
    series = load.get("series") or []
    if not series:
        return out
    # the run starts at t = 0 with every counter at zero
    prev = {"t": 0.0, "tasks": 0, "ops": 0, "p50_ns": 0, "p99_ns": 0}
    mprev = {"t": 0.0, "worker": None}  # the last sample with metrics
    # skip a sliver (the last sample is taken when the drain ends): a
    # quarter of the sampling interval. A fixed 0.25 s merged the samples
    # of a shorter --interval into rows showing the p50/p99 of their last
    # sample only. The interval is the median gap between samples: taken
    # as the first sample's time, a first sample late (weft-load's sampler
    # thread not run for a while: it then catches up, the next samples
    # back on their times) made the sliver as long as the interval or
    # more, and every second row was merged into the next again, a p99
    # spike in it not drawn (a review, 2026-12-07).
    if len(series) > 1:
        gaps = sorted([series[0]["t"]] + [b["t"] - a["t"] for a, b in zip(series, series[1:])])
        sliver = 0.25 * min(1.0, gaps[len(gaps) // 2])
    else:
        sliver = 0.25
    for s in series:
        if s["t"] - prev["t"] >= sliver:
            dt = s["t"] - prev["t"]
            row = {
                "t0": prev["t"], "t1": s["t"],
                "tasks_per_s": (s["tasks"] - prev["tasks"]) / dt,
                "p99_ns": s.get("p99_ns", 0), "p50_ns": s.get("p50_ns", 0),
            }
            w = s.get("worker")
            pw = (mprev["worker"] or [[0] * len(w[0]) for _ in w]) if w else None
            mdt = s["t"] - mprev["t"]
            if w and len(pw) == len(w) and mdt > 0:
                row["m_t0"] = mprev["t"]
                # typed arrays (and no per-worker steals or depths: nothing
                # draws them): an hour sampled every 0.05 s has 72000 rows
                row["busy"] = array.array("d", (max(0.0, min(1.0, (a[1] - b[1]) / 1e9 / mdt)) for a, b in zip(w, pw)))
                row["steals_per_s"] = sum(a[2] - b[2] for a, b in zip(w, pw)) / mdt
                row["stolen_per_s"] = sum(a[3] - b[3] for a, b in zip(w, pw)) / mdt
                row["parks_per_s"] = sum(a[4] - b[4] for a, b in zip(w, pw)) / mdt
                row["worker_parks"] = array.array("d", ((a[4] - b[4]) / mdt for a, b in zip(w, pw)))
            out.append(row)
            prev = s
            if w:
                mprev = s
    return out


# ---------------------------------------------------------------- SVG bits

def fmt_s(v):
    """Seconds with one decimal; a trace's first event a few ms before the
    run's start read "-0.0"."""
    t = "%.1f" % v
    return "0.0" if t == "-0.0" else t


def tick_fmt(x0, x1, n=5):
    """The format of n+1 ticks over x0..x1 with as many decimals as their
    step needs (one at least): "%.1f" wrote a 0.3 s run's ticks as
    0.0 0.1 0.1 0.2 0.2 0.3."""
    step = (x1 - x0) / n
    d = max(1, -math.floor(math.log10(step))) if step > 0 else 1
    return "%%.%df" % min(d, 9)


# A long series (an hour sampled every 0.05 s: 72000 samples) drew every
# sample as a dot with a tooltip, every point of its lines and every
# interval of the busy rows: a 200 MB page that took 1.5 GB to build, and
# that no browser shows (a review, 2026-12-07). Lines keep, per pixel
# column, their first, lowest, highest and last point (spikes stay); dots
# are drawn only DOT_PX apart or more; busy intervals narrower than
# BUSY_PX are merged (time-weighted) until they are that wide.
DOT_PX = 2
BUSY_PX = 2


def thin(pts):
    """Points (px, py) in x order, at most four per pixel column: its first,
    its highest and lowest (smallest and largest py) and its last."""
    if len(pts) <= 1024:
        return pts
    out, col = [], []
    for p in pts + [None]:
        if col and (p is None or int(p[0]) != int(col[0][0])):
            keep = {0, len(col) - 1, min(range(len(col)), key=lambda i: col[i][1]),
                    max(range(len(col)), key=lambda i: col[i][1])}
            out.extend(col[i] for i in sorted(keep))
            col = []
        if p is not None:
            col.append(p)
    return out


# The charts are drawn twice, for a page (WIDE px) and for a phone (NARROW
# px), and CSS shows the one that fits the screen (NARROW_BELOW). Drawn
# once 900 px wide and scaled to a phone's 300 px, every label, tick and
# legend was 4 px high (a review, 2026-12-07, in Chromium at 390x844).
WIDE, NARROW = 900, 350
NARROW_BELOW = 800  # px of window: under it the 900 px charts are < 80 %


def chart_class(width):
    return "chart" if width > NARROW else "chart-narrow"


def both(wide, narrow):
    """A chart's two drawings, one shown by CSS (.wide, .narrow)."""
    return '<div class="wide">%s</div><div class="narrow">%s</div>' % (wide, narrow)


def responsive(draw):
    """both() of draw(width) at WIDE and NARROW."""
    return both(draw(WIDE), draw(NARROW))


def line_chart(title, xs_list, ys_list, names, colors, width=900, height=220,
               x_label="seconds since start", y_fmt=fmt_num, shade=None, x_range=None, one_from=None):
    """Polylines over a shared x axis. shade: (x0, x1, label) band.
    x_range: the axis (the run, 0 to its end); the data's span without it.
    Sized by the data alone, a run with one sample (shorter than two
    intervals) had an axis from that sample to a second after it, the run's
    one point on its left edge and most of the axis past the run's end.
    one_from: where the interval of a series' only sample starts (a line
    from there to the sample is drawn, not a lone dot)."""
    ml, mr, mt, mb = 64, 16, 24, 36
    # the legend in rows that fit the width (the chart grows by a row's
    # height each): in one row 64 workers' names ran 2000 px past the
    # chart's right edge, and a phone's chart cut off its second name
    legend, lx, row = [], ml + 8, 0
    for name, col in zip(names, colors):
        w_ = 24 + 7 * len(name)
        if lx > ml + 8 and lx + w_ - 10 > width - mr:
            lx, row = ml + 8, row + 1
        legend.append((lx, 6 + 14 * row, name, col))
        lx += w_
    mt, height = mt + 14 * row, height + 14 * row
    pw, ph = width - ml - mr, height - mt - mb
    allx = [x for xs in xs_list for x in xs] or [0, 1]
    ally = [y for ys in ys_list for y in ys] or [0]
    x0, x1 = min(allx), max(allx)
    if x_range:
        x0, x1 = min(x0, x_range[0]), max(x1, x_range[1])
    if x1 <= x0:
        x1 = x0 + 1
    ymax = nice_ceil(max(ally) * 1.05 if ally else 1)

    def X(x):
        return ml + (x - x0) / (x1 - x0) * pw

    def Y(y):
        return mt + ph - (y / ymax) * ph

    o = ['<svg class="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">'
         % (chart_class(width), width, height, width, height, esc(title))]
    o.append('<rect x="%d" y="%d" width="%d" height="%d" class="plot"/>' % (ml, mt, pw, ph))
    if shade and shade[1] > shade[0]:
        a, b = max(x0, shade[0]), min(x1, shade[1])
        if b > a:
            o.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#eceff1"><title>%s</title></rect>'
                     % (X(a), mt, X(b) - X(a), ph, esc(shade[2])))
            o.append('<text x="%.1f" y="%d" class="small">%s</text>' % (X(a) + 3, mt + 12, esc(shade[2])))
    for i in range(5):
        yv = ymax * i / 4
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>' % (ml, ml + pw, Y(yv), Y(yv)))
        o.append('<text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>' % (ml - 6, Y(yv) + 4, esc(y_fmt(yv))))
    tf = tick_fmt(x0, x1)
    for i in range(6):
        xv = x0 + (x1 - x0) * i / 5
        o.append(x_tick(X(xv), mt + ph + 16, tf % xv, width))
    o.append('<text x="%d" y="%d" class="axis" text-anchor="middle">%s</text>' % (ml + pw / 2, height - 4, esc(x_label)))
    for xs, ys, name, col in zip(xs_list, ys_list, names, colors):
        if not xs:
            continue
        pts = " ".join("%.1f,%.1f" % p for p in thin([(X(x), Y(y)) for x, y in zip(xs, ys)]))
        if len(xs) == 1 and one_from is not None and one_from < xs[0]:
            # one sample: its figure holds over its interval; a lone dot
            # on the edge read as an empty chart
            pts = "%.1f,%.1f %s" % (X(max(x0, one_from)), Y(ys[0]), pts)
        o.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"><title>%s</title></polyline>'
                 % (pts, col, esc(name)))
        if len(xs) > pw / DOT_PX:
            continue  # dots closer than DOT_PX: a blur, and most of the page
        for x, y in zip(xs, ys):
            o.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s at %.1f s: %s</title></circle>'
                     % (X(x), Y(y), col, esc(name), x, esc(y_fmt(y))))
    for lx, ly, name, col in legend:
        o.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="small">%s</text>'
                 % (lx, ly, col, lx + 14, ly + 9, esc(name)))
    o.append("</svg>")
    return "\n".join(o)


AXIS_CHAR_W = 6.5  # px per character of an axis label (11px, svg .axis)


def x_tick(x, y, label, width):
    """An x-axis tick label centred under x, or ending at the chart's right
    edge where centred it would run past it: the last tick of a run of
    1000 s or more ("3600.0", 39 px, half of it past a 16 px margin) was
    cut off (a review, 2026-12-07)."""
    if x + len(label) * AXIS_CHAR_W / 2 > width - 1:
        return '<text x="%.1f" y="%d" class="axis" text-anchor="end">%s</text>' % (width - 1, y, label)
    return '<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>' % (x, y, label)


def label_step(labels, slot_w):
    """Label every step-th slot so that no two labels overlap: a fixed
    "one in len // 12" labelled all of 19 park buckets 43 px apart, and
    "67.11 ms134.22 ms268.44 ms" ran together (a review)."""
    widest = max((len(t) for t in labels), default=0) * AXIS_CHAR_W + 8
    return max(1, int(math.ceil(widest / slot_w))) if slot_w > 0 else 1


def histogram_svg(title, values_ns, width=900, height=220, color="#1565c0"):
    """Log2-bucket histogram of durations (ns)."""
    if not values_ns:
        return '<p class="missing">No samples.</p>', []
    buckets = {}
    for v in values_ns:
        b = max(0, int(math.floor(math.log2(max(v, 1)))))
        buckets[b] = buckets.get(b, 0) + 1
    lo, hi = min(buckets), max(buckets)
    keys = list(range(lo, hi + 1))
    counts = [buckets.get(k, 0) for k in keys]
    ml, mr, mt, mb = 64, 16, 16, 48
    pw, ph = width - ml - mr, height - mt - mb
    cmax = nice_ceil(max(counts))
    bw = pw / len(keys)
    o = ['<svg class="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">'
         % (chart_class(width), width, height, width, height, esc(title))]
    o.append('<rect x="%d" y="%d" width="%d" height="%d" class="plot"/>' % (ml, mt, pw, ph))
    for i in range(5):
        yv = cmax * i / 4
        y = mt + ph - yv / cmax * ph
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>' % (ml, ml + pw, y, y))
        o.append('<text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>' % (ml - 6, y + 4, fmt_num(yv)))
    step = label_step([fmt_ns(2 ** k) for k in keys], bw)
    for i, (k, c) in enumerate(zip(keys, counts)):
        h = c / cmax * ph
        x = ml + i * bw
        o.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s – %s: %d</title></rect>'
                 % (x + 1, mt + ph - h, max(bw - 2, 1), h, color, esc(fmt_ns(2 ** k)), esc(fmt_ns(2 ** (k + 1))), c))
        if i % step == 0:
            o.append('<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>'
                     % (x + bw / 2, mt + ph + 14, esc(fmt_ns(2 ** k))))
    o.append('<text x="%d" y="%d" class="axis" text-anchor="middle">duration (log2 buckets, lower bound)</text>'
             % (ml + pw / 2, height - 8))
    o.append("</svg>")
    return "\n".join(o), [[2 ** k, 2 ** (k + 1), c] for k, c in zip(keys, counts)]


def pct_sorted(s, p):
    """The p-th percentile (nearest rank) of s, in ascending order."""
    if not s:
        return 0
    i = min(len(s) - 1, max(0, int(math.ceil(p / 100 * len(s))) - 1))
    return s[i]


TIMELINE_ML, TIMELINE_MR = 90, 16


def timeline_svg(workers, states, rates, t_range, width=900):
    """One row per worker: BPF states (if states: the StateBins of this
    width) and busy % from metrics."""
    ml, mr, mt = TIMELINE_ML, TIMELINE_MR, 10
    pw = width - ml - mr
    rows = []
    if states is not None:
        rows.append("states")
    if any("busy" in r for r in rates or ()):
        rows.append("busy")
    row_h, gap = 18, 10
    per_worker = len(rows) * row_h + gap
    height = mt + workers * per_worker + 40
    x0, x1 = t_range
    if x1 <= x0:
        x1 = x0 + 1
    nbins = pw

    def X(t):
        return ml + (t - x0) / (x1 - x0) * pw

    o = ['<svg class="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="worker timeline">'
         % (chart_class(width), width, height, width, height)]
    totals = []
    for w in range(workers):
        y = mt + w * per_worker
        o.append('<text x="%d" y="%d" class="label" text-anchor="end">worker %d</text>' % (ml - 8, y + 13, w))
        r = 0
        tot = {"running": 0.0, "searching": 0.0, "parked": 0.0}
        if "states" in rows:
            # dominant state per pixel column, merged into runs
            if states.nbins != nbins or (states.x0, states.x1) != (x0, x1):
                raise ValueError("the timeline's state columns are of another chart")
            acc, tot = states.acc[w] or [{}] * nbins, states.tot[w]
            run_st, run_start = None, 0
            for i in range(nbins + 1):
                st = max(acc[i], key=acc[i].get) if i < nbins and acc[i] else None
                if st != run_st:
                    if run_st is not None:
                        o.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>worker %d %s</title></rect>'
                                 % (ml + run_start, y + r * row_h, i - run_start, row_h - 2, STATE_COLOR[run_st], w, run_st))
                    run_st, run_start = st, i
            r += 1
        if "busy" in rows:
            acc = None  # [start s, end s, busy * seconds]: intervals merged to BUSY_PX
            for row in rates + [None]:
                if row is not None:
                    if "busy" not in row or row["t1"] <= x0 or row["m_t0"] >= x1:
                        continue
                    b = row["busy"][w] if w < len(row["busy"]) else 0
                    ta, tb = max(row["m_t0"], x0), min(row["t1"], x1)
                    if acc is None:
                        acc = [ta, tb, b * (tb - ta)]
                        continue
                    if X(acc[1]) - X(acc[0]) < BUSY_PX and ta == acc[1]:
                        acc[1], acc[2] = tb, acc[2] + b * (tb - ta)
                        continue
                if acc is None:
                    continue
                a_, b_ = acc[0], acc[1]
                bb = acc[2] / (b_ - a_) if b_ > a_ else 0
                xa, xb = X(a_), X(b_)
                o.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#2e7d32" fill-opacity="%.2f" stroke="#fff" stroke-width="0.5">'
                         '<title>worker %d %.1f–%.1f s: busy %.0f%%</title></rect>'
                         % (xa, y + r * row_h, max(xb - xa, 0.5), row_h - 2, 0.08 + 0.92 * bb, w, a_, b_, 100 * bb))
                acc = [ta, tb, b * (tb - ta)] if row is not None else None
            r += 1
        totals.append(tot)
    ya = mt + workers * per_worker + 4
    tf = tick_fmt(x0, x1)
    for i in range(6):
        xv = x0 + (x1 - x0) * i / 5
        o.append(x_tick(X(xv), ya + 10, tf % xv, width))
    o.append('<text x="%d" y="%d" class="axis" text-anchor="middle">seconds since start</text>' % (ml + pw / 2, ya + 28))
    o.append("</svg>")
    return "\n".join(o), rows, totals


def heat(f):
    """White to the matrix's blue, f in 0..1."""
    return "#%02x%02x%02x" % (int(255 - f * (255 - 13)), int(255 - f * (255 - 71)), int(255 - f * (255 - 161)))


# Up to this many workers the matrix cells hold their counts; above, it is
# a heat map of small cells (the counts in tooltips and the busiest pairs).
MATRIX_NUMBERS_MAX = 16
MATRIX_PAIRS = 12  # busiest thief -> victim pairs listed under a heat map


def matrix_html(matrix, tasks, table_id="steal-matrix-table"):
    """The steal matrix as an HTML table in a box that scrolls both ways,
    its header row and column sticky (they stay in view while it
    scrolls); text keeps its size whatever the width.

    It was an SVG scaled down to the page: 28 px cells, 64 workers made
    it 2022 px wide, shown at 44 % on a 1280 px screen (labels and
    counts 5 px high) and at 15 % on a phone (2 px), unreadable either
    way (a review, 2026-12-07). Past MATRIX_NUMBERS_MAX workers the
    cells are 10..14 px squares of colour alone, so 64 fit a desktop
    page; their counts are in each cell's tooltip and the busiest pairs
    are listed below."""
    n = len(matrix)
    vmax = max([v for row in matrix for v in row] + [1])
    numbers = n <= MATRIX_NUMBERS_MAX
    cls = "matrix" if numbers else "matrix heatmap"
    if not numbers:
        # 840 px for the cells beside the row labels fits the 900 px
        # card; a phone scrolls the box
        cls += " c%d" % max(10, min(14, 840 // n))
    o = ['<div class="matrix-wrap"><table class="%s" id="%s" data-total-steals="%d">'
         % (cls, table_id, sum(map(sum, matrix)))]
    o.append('<thead><tr><th class="corner" title="row: thief, column: victim">thief \\ victim</th>')
    o.extend('<th scope="col"><span>w%d</span></th>' % v for v in range(n))
    o.append("</tr></thead><tbody>")
    for t in range(n):
        o.append('<tr><th scope="row">w%d</th>' % t)
        for v in range(n):
            c = matrix[t][v]
            if t == v:
                o.append('<td class="self">%s</td>' % ("–" if numbers else ""))
                continue
            f = math.sqrt(c / vmax) if c else 0
            tip = "w%d stole from w%d: %d steals, %d tasks" % (t, v, c, tasks[t][v])
            if numbers:
                o.append('<td style="background:%s%s" title="%s">%s</td>'
                         % (heat(f), ";color:#fff" if f > 0.55 else "", tip, fmt_num(c)))
            elif c:
                o.append('<td style="background:%s" title="%s"></td>' % (heat(f), tip))
            else:
                o.append("<td></td>")  # no tooltip for a zero: 256 workers, 65000 cells
        o.append("</tr>")
    o.append("</tbody></table></div>")
    o.append('<div class="scale">steals: 0 <i style="background:linear-gradient(to right,%s,%s)"></i> %s'
             ' (colour: square root of the count)</div>' % (heat(0), heat(1), fmt_num(vmax)))
    if not numbers:
        pairs = sorted(((matrix[t][v], t, v) for t in range(n) for v in range(n) if matrix[t][v]),
                       key=lambda p: (-p[0], p[1], p[2]))[:MATRIX_PAIRS]
        if pairs:
            o.append('<p class="lead">The busiest pairs (hover a cell for any other):</p><table class="pairs">'
                     '<tr><th>thief</th><th>victim</th><th>steal operations</th><th>tasks</th></tr>%s</table>'
                     % "".join("<tr><td>w%d</td><td>w%d</td><td>%s</td><td>%s</td></tr>"
                               % (t, v, fmt_num(c), fmt_num(tasks[t][v])) for c, t, v in pairs))
    return "\n".join(o)


# ---------------------------------------------------------------- trace

def write_metrics_trace(load, rates, f):
    """Chrome trace-event JSON with counter tracks from the metrics series, to f.

    A counter's sample holds from its ts to the next one, so each row is
    put at the start of its interval, and each track ends with its last
    row's values again at that row's end: without it the trace ended
    where the last interval began, a 6 s run's timeline stopping at 5 s
    and its last second's rates a point of no width (a review,
    2026-12-07)."""
    pid = 1
    t0 = load.get("t0_ns", 0)
    ev = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
           "args": {"name": "weft-load %s (runtime metrics; no BPF)" % shown(load.get("shape"))}}]
    last = {}  # track name -> its last sample, closed at its row's end
    for r in rates:
        n0 = len(ev)
        ts = r["t0"] * 1e6
        ev.append({"name": "tasks/s", "ph": "C", "pid": pid, "tid": 0, "ts": ts,
                   "args": {"tasks/s": round(r["tasks_per_s"], 1)}})
        if "busy" in r:
            ts = r["m_t0"] * 1e6  # the span of the metrics' rates
            ev.append({"name": "steals/s", "ph": "C", "pid": pid, "tid": 0, "ts": ts,
                       "args": {"operations": round(r["steals_per_s"], 1), "tasks": round(r["stolen_per_s"], 1)}})
            ev.append({"name": "parks/s", "ph": "C", "pid": pid, "tid": 0, "ts": ts,
                       "args": {"parks/s": round(r["parks_per_s"], 1)}})
            for w, b in enumerate(r["busy"]):
                ev.append({"name": "worker %d busy %%" % w, "ph": "C", "pid": pid, "tid": 0, "ts": ts,
                           "args": {"busy": round(100 * b, 1)}})
        for e in ev[n0:]:
            last[e["name"]] = dict(e, ts=r["t1"] * 1e6)
    ev.extend(last.values())
    json.dump({"displayTimeUnit": "ms", "otherData": {"tool": "weft_report", "t0_ns": t0,
               "source": "weft-load metrics series"}, "traceEvents": ev}, f)


# ---------------------------------------------------------------- page

# Tables are blocks that scroll sideways within their card: on a phone
# (390 px) the per-worker table (11 columns with BPF) and the poll-latency
# one ran 300 px past their cards and the whole page scrolled sideways.
# Code (the trace's path in the notes) breaks anywhere: a long path, one
# word, ran 350 px past the page (a review, 2026-12-07).
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#263238;margin:0;background:#fafafa}
header{background:#263238;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#b0bec5}
main{max-width:980px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:14px 18px;margin:18px 0}
h2{font-size:17px;margin:0 0 6px} p.lead{margin:0 0 10px;color:#546e7a}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;display:block;max-width:100%;overflow-x:auto}
td,th{padding:3px 10px;border-bottom:1px solid #eceff1;text-align:right} th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:6px 0 14px}
.kpi{background:#eceff1;border-radius:6px;padding:8px 14px;min-width:130px}
.kpi b{display:block;font-size:20px} .kpi span{color:#546e7a;font-size:12px}
.missing{background:#fff8e1;border-left:4px solid #f9a825;padding:8px 12px;margin:8px 0}
.ok{color:#2e7d32} .bad{color:#c62828}
svg.chart,svg.chart-narrow{max-width:100%;height:auto;display:block;margin:6px 0}
.narrow{display:none}
@media (max-width:NARROW_BELOWpx){.wide{display:none} .narrow{display:block}}
@media (max-width:500px){header{padding:14px 12px} main{padding:4px 8px 32px} section{padding:12px 10px}}
svg .plot{fill:#fff;stroke:#cfd8dc} svg .grid{stroke:#eceff1}
svg .axis{font-size:11px;fill:#607d8b} svg .small{font-size:11px;fill:#455a64}
svg .label{font-size:12px;fill:#263238}
.legend span{display:inline-block;margin-right:14px} .sw{display:inline-block;width:12px;height:12px;vertical-align:-1px;margin-right:4px}
code{background:#eceff1;padding:1px 4px;border-radius:3px;overflow-wrap:anywhere}
.matrix-wrap{overflow:auto;max-width:100%;max-height:80vh;margin:6px 0;border:1px solid #cfd8dc;width:max-content}
table.matrix{display:table;border-collapse:separate;border-spacing:0;font-size:11px}
.matrix th,.matrix td{padding:0;border:0;border-right:1px solid #eceff1;border-bottom:1px solid #eceff1;text-align:center}
.matrix td{min-width:46px;height:26px} .matrix td.self{background:#f5f5f5;color:#90a4ae}
.matrix th{background:#f5f5f5;color:#455a64;font-weight:600;padding:2px 5px}
.matrix thead th{position:sticky;top:0;z-index:1} .matrix tbody th{position:sticky;left:0;text-align:right}
.matrix thead th.corner{left:0;z-index:2;font-weight:400;color:#78909c;white-space:nowrap}
.heatmap td{min-width:0;padding:0} .heatmap thead th{padding:3px 0;vertical-align:bottom;font-size:10px;line-height:1}
.heatmap thead th.corner{white-space:normal;padding:2px 4px;text-align:right}
.heatmap thead th span{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:400}
.heatmap.c10 td{width:10px;height:10px} .heatmap.c11 td{width:11px;height:11px} .heatmap.c12 td{width:12px;height:12px}
.heatmap.c13 td{width:13px;height:13px} .heatmap.c14 td{width:14px;height:14px}
.heatmap tbody th{font-size:10px;padding:0 4px;line-height:1}
.pairs td:nth-child(2){text-align:left}
.scale{font-size:12px;color:#546e7a;margin:4px 0 8px} .scale i{display:inline-block;width:120px;height:10px;vertical-align:-1px;border:1px solid #cfd8dc}
"""
CSS = CSS.replace("NARROW_BELOW", str(NARROW_BELOW))


def workers_of(load):
    return load.get("workers") or len(load.get("per_worker") or []) or 1


def shown(v):
    """A value of the load file for the page: DASH where it has none."""
    return DASH if v is None else v


def part(d, k):
    """The object d[k], {} where d has none (a wrong type still fails)."""
    v = d.get(k)
    return {} if v is None else v


def total(pw, k):
    """The sum of field k over the per-worker entries; None (not 0) when
    there are none, or one lacks it: a sum of what is there passed for
    the whole run's."""
    if not pw or any(w.get(k) is None for w in pw):
        return None
    return sum(w[k] for w in pw)


def fmt_s_or_dash(fmt, v):
    return DASH if v is None else fmt % v


def event_trace_path(events_path):
    """The Chrome/Perfetto file schedtop wrote beside the events: FILE.json
    for trace -o FILE.json (FILE.jsonl), DUMP.trace.json for a flight
    recorder dump's DUMP.events.jsonl (named DUMP.events.json, a file that
    does not exist, before: a review)."""
    if events_path.endswith(".events.jsonl"):
        return events_path[:-len(".events.jsonl")] + ".trace.json"
    return events_path[:-1] if events_path.endswith(".jsonl") else events_path + " (its .json)"


def time_axis(load, rates):
    """The x axis of the charts over time and of the timeline: from 0 to
    the run's end or the last sample, whichever is later."""
    t0 = load.get("t0_ns", 0)
    run_end = (load.get("end_ns", t0) - t0) / 1e9 if load.get("end_ns") else (rates[-1]["t1"] if rates else 1)
    return (0.0, max(run_end, rates[-1]["t1"] if rates else 1))


def build(load, rates, ev, bad_lines, no_bpf, events_path, rt_lat=None, write_trace=None):
    """The page. rates: series_rates(load); ev: read_events' Runtimes of
    the events (None without).

    Events of one runtime make one set of the BPF views (an: its
    figures). Events of several (multi) make a set per runtime, each
    under its runtime's label, and the per-worker table leaves out the
    trace's columns: weft-load's counters are of its own runtime, and the
    load file does not say which of the traced ones that is."""
    workers = workers_of(load)
    t0 = load.get("t0_ns", 0)
    warm = load.get("warmup_s", 0) or 0
    rts = ev.runtimes() if ev is not None else []
    multi = len(rts) > 1
    an = rts[0][2] if len(rts) == 1 else None
    data = {"shape": load.get("shape"), "workers": workers, "bpf": ev is not None,
            "no_bpf_reason": no_bpf, "interrupted": bool(load.get("interrupted")), "sections": [],
            "runtimes": [{"label": label, "rt": rt, "workers": r["workers"], "steal_matrix": r["matrix"],
                          "steal_matrix_tasks": r["matrix_tasks"], "events": len(ev.by_rt[rt]),
                          "event_counts": ev.by_rt[rt].counts} for label, rt, r in rts]}
    left_out = []
    s = []  # html parts

    # ---- header
    if load.get("mode") == "closed":
        mode = "closed loop, concurrency %s" % shown(load.get("concurrency"))
    elif load.get("mode") == "open":
        mode = "open loop, %s units/s" % shown(load.get("rate"))
    else:
        mode = shown(load.get("mode"))
    # workers as the file says: workers_of's 1 is a size for the views
    # (weft-load writes 0 when its metrics failed), not the run's count
    wshown = load.get("workers") or len(load.get("per_worker") or []) or DASH
    ms = load.get("measured_s")
    s.append('<header><h1>weft load report — %s</h1><p>%s workers · %s · seed %s · measured %s%s</p></header><main>'
             % (esc(shown(load.get("shape"))), wshown, esc(mode), esc(shown(load.get("seed"))),
                fmt_s_or_dash("%.1f s", ms), (" after %.1f s warmup" % warm) if warm else ""))
    if load.get("interrupted"):
        units = load.get("units") if isinstance(load.get("units"), dict) else {}
        if load.get("units_limit"):
            # --units N has no duration (its duration_s is null; it was
            # the unused default 10, read as "of the 10 s asked for")
            what = "it measured %s, %s of the %s units asked for completed" % (
                fmt_s_or_dash("%.1f s", ms), esc(shown(units.get("completed"))), esc(load.get("units_limit")))
        else:
            what = "%s of the %s s asked for" % (
                "it measured %s" % fmt_s_or_dash("%.1f s", ms) if ms is None or ms > 0
                else "it was still in its %.1f s warmup, nothing was measured" % warm,
                esc(shown(load.get("duration_s"))))
        s.append('<div class="missing" id="interrupted"><b>Interrupted.</b> The run was stopped by a signal '
                 '(Ctrl-C) before its end: %s. The figures cover what ran.</div>' % what)
    if no_bpf:
        s.append('<div class="missing"><b>Without BPF events.</b> %s. The steal matrix, the worker '
                 'running/searching/parked timeline and the park / unpark histograms come from '
                 'schedtop\'s probes and are left out; the views below use weft-load\'s own runtime '
                 'metrics (busy %%, steals and parks per second per worker).</div>' % esc(no_bpf))
    if multi:
        s.append('<div class="missing" id="runtimes"><b>%d runtimes.</b> The trace holds the events of %d '
                 'runtimes of the traced process: %s. The worker states, the steal matrix and the park and '
                 'unpark histograms are shown for each runtime apart, its workers numbered as in it. '
                 'The summary, the per-worker counters, busy %% and throughput are weft-load\'s own runtime '
                 'metrics (the load file does not say which of these runtimes that was).</div>'
                 % (len(rts), len(rts), esc(", ".join("%s: %d worker%s, %d events"
                                                      % (label, r["workers"], "" if r["workers"] == 1 else "s",
                                                         len(ev.by_rt[rt]))
                                                      for label, rt, r in rts))))

    # ---- summary
    thr = part(load, "throughput")
    lat = part(part(load, "latency_ns"), "task")
    g = part(load, "graph")
    units = part(load, "units")
    pw = load.get("per_worker") or []
    s.append('<section id="summary"><h2>Summary</h2>')
    s.append('<div class="kpis">')
    kp = [("tasks/s", fmt_num(thr.get("tasks_per_s"))),
          ("tasks completed (measured)", fmt_num(thr.get("tasks"))),
          ("task latency p50", fmt_ns(lat.get("p50"))),
          ("task latency p99", fmt_ns(lat.get("p99"))),
          ("steal operations", fmt_num(total(pw, "steal_operations"))),
          ("tasks stolen", fmt_num(total(pw, "tasks_stolen"))),
          ("parks", fmt_num(total(pw, "parks")))]
    if thr.get("ops_name"):
        kp.insert(2, (thr["ops_name"] + "/s", fmt_num(thr.get("ops_per_s"))))
    for k, v in kp:
        s.append('<div class="kpi"><b>%s</b><span>%s</span></div>' % (esc(v), esc(k)))
    s.append("</div>")
    s.append("<table><tr><th>run</th><th></th></tr>")
    complete = g.get("complete")
    rows = [("shape", shown(load.get("shape"))), ("mode", mode), ("workers", wshown), ("seed", shown(load.get("seed"))),
            ("measured", "%s (warmup %s)" % (fmt_s_or_dash("%.2f s", ms), fmt_s_or_dash("%.1f s", load.get("warmup_s")))),
            ("units issued / completed", "%s / %s" % (shown(units.get("issued")), shown(units.get("completed")))),
            ("task graph", "%s tasks, digest %s%s" % (shown(g.get("tasks_completed")), shown(g.get("digest_completed")),
                                                    " — matches the seed's graph" if complete is True
                                                    else " — INCOMPLETE" if complete is False else "")),
            ("task latency (spawn → completion)", "min %s · p50 %s · p90 %s · p99 %s · p99.9 %s · max %s"
             % tuple(fmt_ns(lat.get(k)) for k in ("min", "p50", "p90", "p99", "p999", "max")))]
    op = (load.get("latency_ns") or {}).get("op")
    if op and op.get("count"):
        rows.append((part(load, "latency_ns").get("op_what") or "op latency", "p50 %s · p99 %s · max %s"
                     % (fmt_ns(op.get("p50")), fmt_ns(op.get("p99")), fmt_ns(op.get("max")))))
    un = (load.get("latency_ns") or {}).get("unit")
    if un and un.get("count"):
        uw = part(load, "latency_ns").get("unit_what")
        rows.append(("unit latency (%s)" % uw if uw else "unit latency", "p50 %s · p99 %s · max %s"
                     % (fmt_ns(un.get("p50")), fmt_ns(un.get("p99")), fmt_ns(un.get("max")))))
    if load.get("op_errors"):
        rows.append(("errors", load.get("op_errors")))
    for k, v in rows:
        s.append("<tr><td>%s</td><td style='text-align:left'>%s</td></tr>" % (esc(k), esc(v)))
    s.append("</table>")
    # per-worker table
    s.append("<h3>Per worker</h3><table><tr><th>worker</th><th>polls</th><th>busy</th><th>steal ops</th>"
             "<th>tasks stolen</th><th>parks</th><th>no-op unparks</th><th>overflows</th>")
    if an:
        s.append("<th>stolen from it</th><th>park p50</th><th>park p99</th>")
    s.append("</tr>")
    wall_ns = max(1, load.get("end_ns", 0) - t0)
    for i, w in enumerate(pw):
        busy = w.get("busy_ns")
        s.append("<tr><td>w%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                 % (i, fmt_num(w.get("polls")), fmt_s_or_dash("%.0f%%", None if busy is None else 100.0 * busy / wall_ns),
                    fmt_num(w.get("steal_operations")), fmt_num(w.get("tasks_stolen")), fmt_num(w.get("parks")),
                    fmt_num(w.get("noop_unparks")), fmt_num(w.get("overflows"))))
        if an:
            out_ = sum(an["matrix"][t][i] for t in range(an["workers"])) if i < an["workers"] else 0
            pk = an["park_core"][i] if i < an["workers"] else ()
            s.append("<td>%s</td><td>%s</td><td>%s</td>" % (fmt_num(out_), fmt_ns(pct_sorted(pk, 50)) if pk else "–",
                                                            fmt_ns(pct_sorted(pk, 99)) if pk else "–"))
        s.append("</tr>")
    s.append("</table>")
    if not pw:
        # weft-load writes none when its metrics could not be read
        s.append('<p class="missing">The load file has no per-worker metrics (<code>per_worker</code>).</p>')
    s.append("<p class='lead'>Polls, busy, steals, parks and overflows: the runtime's own counters "
             "(whole run, read after shutdown). %s</p></section>"
             % ("Stolen-from and park percentiles: schedtop's trace window." if an else
                "The trace's figures are in the views below, per runtime (%d runtimes traced)." % len(rts)
                if multi else ""))
    data["sections"].append("summary")

    # ---- throughput over time
    s.append('<section id="throughput"><h2>Throughput over time</h2>'
             '<p class="lead">Tasks completed per second, sampled by weft-load every interval; steals and parks per '
             'second from the runtime metrics (a busy worker publishes them every 61 ticks).</p>')
    xs = [r["t1"] for r in rates]
    mrates = [r for r in rates if "busy" in r]  # the rows with the runtime's metrics
    mxs = [r["t1"] for r in mrates]
    t_range = time_axis(load, rates)
    if rates:
        s.append(responsive(lambda w: line_chart(
            "tasks per second", [xs], [[r["tasks_per_s"] for r in rates]], ["tasks/s"], [PALETTE[0]], width=w,
            shade=(0, warm, "warmup") if warm else None, x_range=t_range, one_from=rates[0]["t0"])))
        if mrates:
            ops_ = sum(r["steals_per_s"] * (r["t1"] - r["m_t0"]) for r in mrates)
            moved = sum(r["stolen_per_s"] * (r["t1"] - r["m_t0"]) for r in mrates)
            s.append('<p class="lead">Steal operations and parks per second (all workers); each steal moved '
                     '%.1f tasks on average.</p>' % (moved / ops_ if ops_ else 0))
            s.append(responsive(lambda w: line_chart(
                "steals and parks per second", [mxs, mxs],
                [[r["steals_per_s"] for r in mrates], [r["parks_per_s"] for r in mrates]],
                ["steal operations/s", "parks/s"], [PALETTE[1], PALETTE[3]], width=w,
                height=200, shade=(0, warm, "warmup") if warm else None, x_range=t_range,
                one_from=mrates[0]["m_t0"])))
        # a sample with no latency measured (the warmup's, where weft-load
        # records none) says 0 ns: drawn, the line fell to 0 and climbed
        # back, a run with a warmup showing a latency dip it never had
        measured = [r for r in rates if r["p50_ns"] or r["p99_ns"]]
        lx = [r["t1"] for r in measured]
        s.append(responsive(lambda w: line_chart(
            "task latency per interval", [lx, lx], [[r["p50_ns"] for r in measured], [r["p99_ns"] for r in measured]],
            ["p50 latency", "p99 latency"], [PALETTE[2], PALETTE[1]], width=w, height=180, y_fmt=fmt_ns,
            x_range=t_range, shade=(0, warm, "warmup: no latency measured") if warm else None,
            one_from=measured[0]["t0"] if measured else None)))
    elif load.get("series") is None:
        s.append('<p class="missing">The load file has no time series (<code>series</code>: weft-load '
                 'writes it with <code>--output</code>, not with <code>--json</code>).</p>')
    else:
        s.append('<p class="missing">The run was shorter than one sampling interval: no time series.</p>')
    s.append("</section>")
    data["sections"].append("throughput")
    data["throughput_series"] = [[round(r["t1"], 3), round(r["tasks_per_s"], 1)] for r in rates]

    # ---- timeline
    s.append('<section id="timeline"><h2>Worker timeline: busy, searching, parked</h2>')
    tl = (workers if not an else an["workers"], rates, t_range)
    svg, rows_, totals = timeline_svg(tl[0], an["bins"][WIDE] if an else None, *tl[1:], width=WIDE)
    svg = both(svg, timeline_svg(tl[0], an["bins"][NARROW] if an else None, *tl[1:], width=NARROW)[0])
    legend = ""
    if an:
        legend = "".join('<span><i class="sw" style="background:%s"></i>%s</span>' % (c, n) for n, c in STATE_COLOR.items())
        s.append('<p class="lead">Top row of each worker: its state from schedtop\'s probes (dominant state per pixel; '
                 'hover for names). A worker that finds work in its own queue fires no probe, so <i>searching</i> after an '
                 'unpark is an upper bound (it lasts until the next steal or overflow). Second row: busy %% per interval '
                 'from the runtime metrics (darker = busier). Trace window: %s–%s s.</p>'
                 % tuple(fmt_s(v) for v in an["window_s"]))
        data["state_seconds"] = [{k: round(v, 4) for k, v in t.items()} for t in totals]
    elif multi:
        legend = "".join('<span><i class="sw" style="background:%s"></i>%s</span>' % (c, n) for n, c in STATE_COLOR.items())
        s.append('<p class="lead">Each runtime\'s workers, their state from schedtop\'s probes (dominant state per '
                 'pixel; hover for names; <i>searching</i> after an unpark is an upper bound). Then busy %% per '
                 'worker and interval from weft-load\'s runtime metrics (darker = busier). Trace window: %s–%s s.</p>'
                 % tuple(fmt_s(v) for v in ev.window_s()))
        s.append('<div class="legend">%s</div>' % legend)
        for (label, rt, r), d in zip(rts, data["runtimes"]):
            tl = (r["workers"], [], t_range)
            wide, _, totals = timeline_svg(tl[0], r["bins"][WIDE], *tl[1:], width=WIDE)
            s.append('<h3>%s</h3>' % esc(label))
            s.append(both(wide, timeline_svg(tl[0], r["bins"][NARROW], *tl[1:], width=NARROW)[0]))
            d["state_seconds"] = [{k: round(v, 4) for k, v in t.items()} for t in totals]
        svg = ""
        if any("busy" in r for r in rates):
            svg = '<h3>busy %% (weft-load\'s runtime metrics)</h3>' + both(
                timeline_svg(workers, None, rates, t_range, width=WIDE)[0],
                timeline_svg(workers, None, rates, t_range, width=NARROW)[0])
        legend = ""
    else:
        s.append('<p class="lead">Busy %% per worker and interval from the runtime metrics (darker = busier).</p>'
                 '<p class="missing">Searching and parked spans need schedtop\'s probes: left out (%s).</p>' % esc(no_bpf))
        left_out.append("worker running/searching/parked spans")
    s.append('<div class="legend">%s<span><i class="sw" style="background:#2e7d32;opacity:.5"></i>busy %% (metrics)</span></div>' % legend)
    s.append(svg + "</section>")
    data["sections"].append("timeline")

    # ---- steal matrix
    s.append('<section id="steal-matrix"><h2>Steal matrix</h2>')
    if an:
        tot = sum(map(sum, an["matrix"]))
        s.append('<p class="lead">Successful steal operations in the trace window: row = thief, column = victim '
                 '(hover for the tasks moved). %s steal operations, %s tasks.</p>'
                 % (fmt_num(tot), fmt_num(sum(map(sum, an["matrix_tasks"])))))
        s.append(matrix_html(an["matrix"], an["matrix_tasks"]))
        data["steal_matrix"] = an["matrix"]
        data["steal_matrix_tasks"] = an["matrix_tasks"]
    elif multi:
        s.append('<p class="lead">Successful steal operations in the trace window, for each runtime: row = thief, '
                 'column = victim (hover for the tasks moved). A thread steals only within its runtime.</p>')
        for k, (label, rt, r) in enumerate(rts, 1):
            s.append('<h3>%s: %s steal operations, %s tasks</h3>'
                     % (esc(label), fmt_num(sum(map(sum, r["matrix"]))), fmt_num(sum(map(sum, r["matrix_tasks"])))))
            s.append(matrix_html(r["matrix"], r["matrix_tasks"], "steal-matrix-table-r%d" % k))
        # one matrix of every runtime's steals would be the mix this
        # replaces: the per-runtime ones are in data["runtimes"]
        data["steal_matrix"] = None
    else:
        s.append('<p class="missing">Who stole from whom is only in schedtop\'s <code>steal</code> probe: left out (%s). '
                 'The runtime counts steals per thief only:</p>' % esc(no_bpf))
        s.append("<table><tr><th>thief</th><th>steal operations</th><th>tasks stolen</th></tr>%s</table>"
                 % "".join("<tr><td>w%d</td><td>%s</td><td>%s</td></tr>" % (i, fmt_num(w.get("steal_operations")),
                                                                        fmt_num(w.get("tasks_stolen"))) for i, w in enumerate(pw)))
        left_out.append("steal matrix")
        data["steal_matrix"] = None
    s.append("</section>")
    data["sections"].append("steal-matrix")

    # ---- park / unpark histograms
    def per_runtime_hist(key, out, title, color, head):
        """With several runtimes: one histogram of r[key] per runtime, each
        under its label and head(values); its buckets in that runtime's
        data[out], the top-level one None."""
        for (label, rt, r), d in zip(rts, data["runtimes"]):
            vals = r[key]
            svg, d[out] = histogram_svg(title, vals, color=color)
            svg = both(svg, histogram_svg(title, vals, color=color, width=NARROW)[0]) if vals else svg
            s.append('<h3>%s: %s</h3>%s' % (esc(label), head(vals), svg))
        data[out] = None

    s.append('<section id="park-histogram"><h2>Park time</h2>')
    if an:
        svg, hb = histogram_svg("park duration", an["park_ns"], color=PALETTE[3])
        svg = both(svg, histogram_svg("park duration", an["park_ns"], color=PALETTE[3], width=NARROW)[0])
        pk = an["park_ns"]
        s.append('<p class="lead">How long workers slept: <code>park</code> → <code>unpark</code> of the same worker, '
                 '%d parks, p50 %s, p90 %s, p99 %s, max %s.</p>%s'
                 % (len(pk), fmt_ns(pct_sorted(pk, 50)), fmt_ns(pct_sorted(pk, 90)), fmt_ns(pct_sorted(pk, 99)),
                    fmt_ns(pk[-1] if pk else 0), svg))
        data["park_hist"] = hb
    elif multi:
        s.append('<p class="lead">How long workers slept: <code>park</code> → <code>unpark</code> of the same worker, '
                 'for each runtime.</p>')
        per_runtime_hist("park_ns", "park_hist", "park duration", PALETTE[3],
                         lambda pk: '%d parks, p50 %s, p90 %s, p99 %s, max %s'
                         % (len(pk), fmt_ns(pct_sorted(pk, 50)), fmt_ns(pct_sorted(pk, 90)),
                            fmt_ns(pct_sorted(pk, 99)), fmt_ns(pk[-1] if pk else 0)))
    else:
        s.append('<p class="missing">Park durations come from schedtop\'s <code>park</code>/<code>unpark</code> probes: '
                 'left out (%s).</p>' % esc(no_bpf))
        if mrates:
            s.append('<p class="lead">Parks per second per worker (runtime metrics):</p>')
            s.append(responsive(lambda wd: line_chart(
                "parks per second", [mxs] * workers, [[r["worker_parks"][w] for r in mrates] for w in range(workers)],
                ["w%d" % w for w in range(workers)], [PALETTE[w % len(PALETTE)] for w in range(workers)], width=wd,
                height=180, x_range=t_range, one_from=mrates[0]["m_t0"])))
        left_out.append("park-time histogram")
        data["park_hist"] = None
    s.append("</section>")
    data["sections"].append("park-histogram")

    s.append('<section id="unpark-histogram"><h2>Unpark latency</h2>')
    if an:
        svg, hb = histogram_svg("unpark latency", an["unpark_ns"], color=PALETTE[5])
        svg = both(svg, histogram_svg("unpark latency", an["unpark_ns"], color=PALETTE[5], width=NARROW)[0])
        up = an["unpark_ns"]
        s.append('<p class="lead">From the first <code>notify</code> aimed at a parked worker to its <code>unpark</code> '
                 '(it is running again): %d wake-ups, p50 %s, p99 %s, max %s.</p>%s'
                 % (len(up), fmt_ns(pct_sorted(up, 50)), fmt_ns(pct_sorted(up, 99)), fmt_ns(up[-1] if up else 0), svg))
        data["unpark_hist"] = hb
    elif multi:
        s.append('<p class="lead">From the first <code>notify</code> aimed at a parked worker to its <code>unpark</code> '
                 '(it is running again), for each runtime.</p>')
        per_runtime_hist("unpark_ns", "unpark_hist", "unpark latency", PALETTE[5],
                         lambda up: '%d wake-ups, p50 %s, p99 %s, max %s'
                         % (len(up), fmt_ns(pct_sorted(up, 50)), fmt_ns(pct_sorted(up, 99)),
                            fmt_ns(up[-1] if up else 0)))
    else:
        s.append('<p class="missing">Needs the <code>notify</code> and <code>unpark</code> probes: left out (%s).</p>' % esc(no_bpf))
        left_out.append("unpark-latency histogram")
        data["unpark_hist"] = None
    s.append("</section>")
    data["sections"].append("unpark-histogram")

    # ---- task latency
    s.append('<section id="latency"><h2>Task latency (spawn → completion)</h2>')
    buckets = lat.get("buckets") or []
    if buckets:
        # expand to log2 buckets for display
        vals = {}
        for lo, hi, c in buckets:
            k = max(0, int(math.floor(math.log2(max(lo, 1)))))
            vals[k] = vals.get(k, 0) + c
        keys = sorted(vals)
        lo_k, hi_k = keys[0], keys[-1]
        counts = [vals.get(k, 0) for k in range(lo_k, hi_k + 1)]
        svg = responsive(lambda w: histogram_from_counts(list(range(lo_k, hi_k + 1)), counts, PALETTE[0], width=w))
        s.append('<p class="lead">%s tasks completed after the warmup; p50 %s, p99 %s, p99.9 %s, max %s.</p>%s'
                 % (fmt_num(lat.get("count")), fmt_ns(lat.get("p50")), fmt_ns(lat.get("p99")),
                    fmt_ns(lat.get("p999")), fmt_ns(lat.get("max")), svg))
    elif "buckets" not in lat:
        s.append('<p class="missing">The load file has no task latency histogram '
                 '(<code>latency_ns.task.buckets</code>).</p>')
    else:
        s.append('<p class="missing">No task completed in the measured window.</p>')
    s.append("</section>")
    data["sections"].append("latency")

    # ---- runtime-kept latency (schedtop trace FILE.latency.json)
    s.append('<section id="poll-latency"><h2>Poll duration and wake → poll delay</h2>')
    if rt_lat:
        s.append('<p class="lead">Kept by the runtime itself while schedtop was attached (log2 '
                 'histograms per core, one poll and one schedule in 256 sampled; figures are bucket '
                 'upper bounds), over the traced span.</p><table><tr><th>runtime</th><th>workers</th>'
                 '<th>poll p50</th><th>poll p99</th><th>wake→poll p50</th><th>wake→poll p99</th>'
                 '<th>samples (polls / wakes)</th></tr>')
        for r in rt_lat:
            s.append('<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>'
                     '<td>%s / %s</td></tr>'
                     % (esc(r["rt"]) + (" (%d ended)" % r["ended"] if r.get("ended", 0) > 1
                                          else " (ended)" if r.get("ended") else ""), r["workers"], fmt_lat_ns(r["poll_p50_ns"]), fmt_lat_ns(r["poll_p99_ns"]),
                        fmt_lat_ns(r["wake_p50_ns"]), fmt_lat_ns(r["wake_p99_ns"]),
                        fmt_num(r["polls_timed"]), fmt_num(r["wakes_timed"])))
        s.append('</table>')
    else:
        s.append('<p class="missing">Not recorded: needs schedtop trace (its FILE.latency.json).</p>')
    s.append("</section>")
    data["sections"].append("poll-latency")

    # ---- notes
    s.append('<section id="notes"><h2>Notes</h2><ul>')
    if ev is not None:
        s.append("<li>Trace: %s events from <code>schedtop trace</code> (%s)%s%s. Open <code>%s</code> in "
                 "ui.perfetto.dev or chrome://tracing for every span and steal arrow.</li>"
                 % (fmt_num(len(ev)), esc(", ".join("%s %d" % kv for kv in sorted(ev.counts.items()))),
                    " of %d runtimes, each shown apart" % len(rts) if multi else "",
                    (", %d unreadable or malformed lines skipped (events naming a worker the run did not have "
                     "among them)" % bad_lines) if bad_lines else "", esc(event_trace_path(events_path))))
    else:
        s.append("<li><b>Left out:</b> %s — %s.</li>" % (esc(", ".join(left_out)), esc(no_bpf)))
        if write_trace:
            s.append("<li><code>%s</code> holds counter tracks (tasks/s, steals/s, parks/s, busy %% per worker) "
                     "from the runtime metrics instead of per-event spans.</li>" % esc(write_trace))
    s.append("<li>Per-worker runtime counters cover the whole run (warmup and drain included); throughput and latency "
             "cover the measured window.</li>")
    s.append("<li>Same seed, same graph: the graph of unit <i>k</i> depends only on the shape, seed and <i>k</i>; this "
             "run issued %s units and completed %s tasks (digest %s).</li>"
             % (esc(shown(g.get("units"))), esc(shown(g.get("tasks_completed"))), esc(shown(g.get("digest_completed")))))
    s.append("</ul></section>")
    data["sections"].append("notes")
    data["left_out"] = left_out
    s.append('<script type="application/json" id="report-data">%s</script>' % script_json(data))
    s.append("</main>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>weft load report — %s</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><style>%s</style></head><body>%s</body></html>\n'
            % (esc(shown(load.get("shape"))), CSS, "\n".join(s)))


def script_json(data):
    """JSON to embed in a <script> element: no <, > or & in it at all (as
    \\u escapes, the same value to any JSON parser), so no text from the
    inputs can end the element or open a comment (<!--<script) inside it."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def histogram_from_counts(keys, counts, color, width=900, height=220):
    ml, mr, mt, mb = 64, 16, 16, 48
    pw, ph = width - ml - mr, height - mt - mb
    cmax = nice_ceil(max(counts) if counts else 1)
    bw = pw / max(len(keys), 1)
    o = ['<svg class="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="latency histogram">'
         % (chart_class(width), width, height, width, height)]
    o.append('<rect x="%d" y="%d" width="%d" height="%d" class="plot"/>' % (ml, mt, pw, ph))
    for i in range(5):
        yv = cmax * i / 4
        y = mt + ph - yv / cmax * ph
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>' % (ml, ml + pw, y, y))
        o.append('<text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>' % (ml - 6, y + 4, fmt_num(yv)))
    step = label_step([fmt_ns(2 ** k) for k in keys], bw)
    for i, (k, c) in enumerate(zip(keys, counts)):
        h = c / cmax * ph
        x = ml + i * bw
        o.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s – %s: %d</title></rect>'
                 % (x + 1, mt + ph - h, max(bw - 2, 1), h, color, esc(fmt_ns(2 ** k)), esc(fmt_ns(2 ** (k + 1))), c))
        if i % step == 0:
            o.append('<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>' % (x + bw / 2, mt + ph + 14, esc(fmt_ns(2 ** k))))
    o.append('<text x="%d" y="%d" class="axis" text-anchor="middle">latency (log2 buckets, lower bound)</text>' % (ml + pw / 2, height - 8))
    o.append("</svg>")
    return "\n".join(o)


def events_unusable(path, evs, skipped, load):
    """Why the events cannot stand for this run (None if they can): none
    usable, or none inside the run's t0_ns..end_ns (a trace of another
    run). The report then falls back to the views without BPF and says so."""
    if not evs:
        return ("the events file %s holds no usable event (%s)"
                % (path, "%d lines, all skipped" % skipped if skipped else "it is empty"))
    t0, end = load["t0_ns"], load["end_ns"]
    first, last = evs.first, evs.last
    if last < t0 or first > end:
        return ("the events in %s (%.1f to %.1f s) do not overlap this run (0 to %.1f s): a trace of "
                "another run?" % (path, (first - t0) / 1e9, (last - t0) / 1e9, (end - t0) / 1e9))
    return None


class InputError(Exception):
    """An input or output file the report cannot use: `weft_report: FILE: reason`, exit 1."""

    def __init__(self, path, reason):
        Exception.__init__(self, "%s: %s" % (path, reason))


def not_json(name):
    """NaN, Infinity and -Infinity: Python's json reads them, JSON has no
    such numbers and weft-load writes none. Read, a NaN p99 or measured_s
    made a page saying "nan ns" and "measured nan s", exit 0, while one
    elsewhere ended in "cannot convert float NaN" (a review, 2026-12-07)."""
    raise ValueError("%s is not a JSON number" % name)


def compact_sample(d):
    """object_hook for the load file: a series sample's "worker" rows of
    integers as typed arrays, 8 bytes a number instead of some 40. An
    hour sampled every 0.05 s with 8 workers is 72000 samples of 56
    numbers: decoded as lists they took 230 MB (a review, 2026-12-07).
    Rows of anything else are left as they are (series_rates says what
    is wrong with them)."""
    w = d.get("worker")
    if isinstance(w, list) and "t" in d:
        try:
            d["worker"] = [array.array("q", r) for r in w]
        except (TypeError, ValueError, OverflowError):
            pass
    return d


def read_json(path, what, object_hook=None):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"), parse_constant=not_json, object_hook=object_hook)
    except OSError as e:
        raise InputError(path, e.strerror or str(e))
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise InputError(path, "not %s: %s" % (what, e))
    except RecursionError:  # a traceback (a review)
        raise InputError(path, "not %s: nested deeper than this reader goes" % what)


def read_load(path):
    """weft-load --output's JSON object, checked for the fields the report
    cannot do without."""
    load = read_json(path, "weft-load's JSON output", compact_sample)
    if not isinstance(load, dict):
        raise InputError(path, "not weft-load's output: a JSON %s, not an object" % type(load).__name__)
    for k in ("t0_ns", "end_ns"):
        if not is_int(load.get(k)):
            raise InputError(path, "not weft-load's output: no integer %s" % k)
    for k in ("series", "per_worker"):
        v = load.get(k)
        if v is None:  # absent or null: the report says it is missing
            continue
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise InputError(path, "not weft-load's output: %s is not a list of objects" % k)
    w = workers_of(load)
    if not is_int(w) or not 1 <= w <= MAX_WORKERS or len(load.get("per_worker") or []) > w:
        raise InputError(path, "not weft-load's output: workers %r (1..%d, one per_worker entry each)"
                         % (w, MAX_WORKERS))
    return load


LATENCY_KEYS = ("rt", "workers", "polls_timed", "wakes_timed", "poll_p50_ns", "poll_p99_ns",
                "wake_p50_ns", "wake_p99_ns")


def read_latency(path):
    """schedtop trace's FILE.latency.json: {"latency": [one object per runtime]}."""
    d = read_json(path, "schedtop's latency JSON")
    rows = d.get("latency") if isinstance(d, dict) else None
    if not isinstance(rows, list):
        raise InputError(path, "not schedtop's latency JSON: no \"latency\" list")
    for r in rows:
        if not isinstance(r, dict) or any(k not in r for k in LATENCY_KEYS) \
                or not all(is_num(r[k]) for k in LATENCY_KEYS[1:]):
            raise InputError(path, "not schedtop's latency JSON: an entry without %s" % ", ".join(LATENCY_KEYS))
        # "ended" (optional): a count; null or text failed later in the
        # page's build, blamed on --load as a Python error (a review)
        if "ended" in r and not is_int(r["ended"]):
            raise InputError(path, "not schedtop's latency JSON: \"ended\" is not a whole number")
    return rows


def is_num(x):
    """A finite JSON number (Python's json reads NaN and Infinity too), and
    one a float holds (isfinite of 10**400 raised OverflowError)."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def write_whole(path, write, staged=None):
    """Call write(f) on a new temporary file beside PATH, then rename it over
    PATH: a write that fails (disk full, the file size limit) leaves the
    previous file as it was and no partial one (the page was left cut short,
    exit 1). A device or a FIFO (say /dev/stdout) is written in place. The
    temporary name is made by mkstemp: a fixed PATH.tmp was opened with
    truncation, so `-o X` emptied an input named X.tmp (a review).

    Text that UTF-8 cannot hold is written as "?" (errors="replace"): a
    lone surrogate, from a JSON \\ud800 in a shape name or an event type,
    or from a path or a --no-bpf reason that is not UTF-8 (Python keeps
    such bytes as surrogates). It raised UnicodeEncodeError, a traceback
    that left the temporary file behind (a review, 2026-12-07); and any
    exception, not only OSError, now removes the temporary file.

    With a list `staged`, the rename is left to the caller: (tmp, path) is
    appended to it (see replace_all)."""
    direct = os.path.exists(path) and not os.path.isfile(path)
    tmp = path
    try:
        if direct:
            with open(path, "w", encoding="utf-8", errors="replace") as f:
                write(f)
            return
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp", dir=os.path.dirname(path) or ".")
        # mkstemp makes it 0600: give the page the mode open() would have
        um = os.umask(0)
        os.umask(um)
        os.fchmod(fd, 0o666 & ~um)
        with open(fd, "w", encoding="utf-8", errors="replace") as f:
            write(f)
        if staged is not None:
            staged.append((tmp, path))
            return
        os.replace(tmp, path)
    except BaseException as e:
        if tmp != path:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError):
            raise InputError(path, e.strerror or str(e))
        raise


def replace_all(writes):
    """write_whole each (path, write) of writes, then rename them all into
    place: all written, or (an InputError, exit 1) none changed. The page
    was renamed into place before --write-trace was written, so a trace
    that could not be written (a missing directory, a full disk) left
    exit 1 with the previous report replaced, beside a trace of another
    run (a review, 2026-12-07)."""
    staged = []
    try:
        for path, write in writes:
            write_whole(path, write, staged)
        for i, (tmp, path) in enumerate(staged):
            try:
                os.replace(tmp, path)
            except OSError as e:
                staged = staged[i:]  # not renamed: removed below
                raise InputError(path, e.strerror or str(e))
        staged = []
    finally:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def same_file(a, b):
    """a and b name one file (the same path, a symlink to it or a hard
    link); False when either does not exist yet."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_outputs(ap, a):
    """An output that is also an input was written over after the input was
    read: `-o LOAD.json` replaced weft-load's run with the page, `-o
    TRACE.jsonl` the events, and `--write-trace` equal to `-o` left the
    trace where the page was said to be, all with exit 0 (a review). A
    usage error, before anything is read or written."""
    ins = [("--load", a.load), ("--events", a.events), ("--latency", a.latency)]
    outs = [("-o", a.output), ("--write-trace", a.write_trace)]
    for oname, opath in outs:
        if opath is None:
            continue
        for iname, ipath in ins:
            if ipath is not None and same_file(opath, ipath):
                ap.error("%s %s is the %s file: writing it would destroy an input; name another file"
                         % (oname, opath, iname))
    # the timeline schedtop wrote beside the events, which the page links
    # to: replaced by the page, the notes pointed at the report itself
    # and the timeline was lost (found by a review)
    if a.events:
        tr = event_trace_path(a.events)
        if os.path.exists(tr) and same_file(a.output, tr):
            ap.error("-o %s is schedtop's trace beside --events %s: writing it would destroy an "
                     "input; name another file" % (a.output, a.events))
    if a.write_trace and same_file(a.output, a.write_trace):
        ap.error("--write-trace %s is the -o file: the trace would replace the report; name another file"
                 % a.write_trace)


def main(argv):
    ap = argparse.ArgumentParser(description="Build the weft load report (self-contained HTML).")
    ap.add_argument("--load", required=True, help="weft-load --output JSON")
    ap.add_argument("--events", help="schedtop trace JSON lines (FILE.jsonl)")
    ap.add_argument("--no-bpf", metavar="REASON", help="no BPF events: say why in the report")
    ap.add_argument("--write-trace", metavar="FILE", help="without events: write counter tracks as trace-event JSON")
    ap.add_argument("--latency", help="schedtop trace FILE.latency.json (runtime-kept poll and wake latency)")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args(argv)
    if not a.events and not a.no_bpf:
        ap.error("give --events FILE or --no-bpf REASON")
    # both: the reason was dropped without a word and the page drawn from
    # the events, as if there had been no reason (a review, 2026-12-07)
    if a.events and a.no_bpf:
        ap.error("give --events FILE or --no-bpf REASON, not both (with --events the report says itself "
                 "when the events cannot stand for the run)")
    if a.events and a.write_trace:
        ap.error("--write-trace is for a run without events (--no-bpf); with --events, schedtop trace "
                 "has written the event trace itself (FILE.json beside FILE.jsonl)")
    check_outputs(ap, a)
    # ArithmeticError: ZeroDivisionError, and OverflowError - a number
    # past a float (10**400, which JSON allows) or Infinity where an
    # integer is made, a traceback (a review)
    not_load = (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError)
    try:
        rt_lat = read_latency(a.latency) if a.latency else None
        load = read_load(a.load)
        try:
            rates = series_rates(load)
            t_range = time_axis(load, rates)
        except not_load as e:
            raise InputError(a.load, "not weft-load's output (%s: %s)" % (type(e).__name__, e))
        ev, bad, no_bpf = None, 0, a.no_bpf
        if a.events:
            try:
                ev, bad = read_events(a.events, workers_of(load), load["t0_ns"], t_range)
            except OSError as e:
                raise InputError(a.events, e.strerror or str(e))
            no_bpf = events_unusable(a.events, ev, bad, load)
            if no_bpf:
                print("weft_report: %s; the report shows the runtime's metrics instead" % no_bpf, file=sys.stderr)
                ev = None
        try:
            html_text = build(load, rates, ev, bad, no_bpf, a.events, rt_lat,
                              a.write_trace if ev is None else None)
        except not_load as e:
            raise InputError(a.load, "not weft-load's output (%s: %s)" % (type(e).__name__, e))
        writes = [(a.output, lambda f: f.write(html_text))]
        if a.write_trace and ev is None:
            writes.append((a.write_trace, lambda f: write_metrics_trace(load, rates, f)))
        replace_all(writes)
    except InputError as e:
        print("weft_report: %s" % e, file=sys.stderr)
        return 1
    # on stderr, as every other line of it: on stdout it was appended to
    # the page itself with `-o /dev/stdout`, after </html> (a review)
    print("weft_report: wrote %s (%d KiB)%s" % (a.output, len(html_text) // 1024,
                                               "" if ev is not None else "; without BPF: " + no_bpf),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    # SIGINT (Ctrl-C, or scripts/demo passing one on): a line, exit 130,
    # no page written (write_whole removes its temporary file); it was a
    # traceback in the middle of the demo's output (a review, 2026-12-07).
    # Python leaves SIGINT alone when it starts with it ignored, as bash
    # starts a command put in the background: the demo's SIGINT was lost.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("weft_report: interrupted; no report written", file=sys.stderr)
        sys.exit(130)
