#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Where a single-line request's time goes: bench/guest-bench.sh's traces.

usage: trace.py OUT-DIR

Reads OUT-DIR/trace-pair-REP.txt (ftrace text: the benchmark task's system
calls, wakeups and switches, and the function tracer on the virtio core's
notify and vring_interrupt, while it ran `vgpio-bench pair get ... floor=FILE`), tells
the targets apart by the file each request used, named in the order their
files were opened by trace-pair-REP.order, and splits each request at those
events:

  submit   system call entry to the notify (gpiolib, the driver's submit
           path, the ring)
  device   notify to the first vring_interrupt after it (the VM exit,
           QEMU, the simulator, the interrupt's injection and the
           transport's handler up to the queue's)
  wake     vring_interrupt to the task's wakeup (the driver's callback)
  sched    wakeup to the task running again
  finish   running again to the system call's exit (the driver's and
           gpiolib's return path)
  user     exit to the next entry (the benchmark's own loop)

Prints, per driver, the median of each segment (microseconds) over all
requests that slept (the usual case; those answered before the task slept
are counted), and the median and 99th percentile of the whole request.
Tracing costs each request a few microseconds, alike for every target (the
function tracer: a kprobe's trap cost enough under TCG to reorder them).
"""
import glob
import os
import re
import sys
from collections import Counter

# (an event: "name: fields"; a function traced by ftrace: "name <-caller")
LINE = re.compile(r"^\s*(.*)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+([\w/]+)(?::|\s+<-)\s*(.*)$")
NOTIFY = ("vp_notify", "vp_notify_with_data")
# x86_64's ioctl (a driver's line request)
NR_IOCTL = "16"
SEGMENTS = ("submit", "device", "wake", "sched", "finish", "user")


def parse(path):
    events = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if m:
                pid, ts, name, rest = int(m.group(2)), float(m.group(4)), m.group(5), m.group(6)
                events.append((ts * 1e6, pid, name, rest))
    return events


def calls_of(events):
    """The task's system calls, entry to exit, with what happened between."""
    enters = [e for e in events if e[2] == "sys_enter"]
    if not enters:
        return [], None
    task = Counter(e[1] for e in enters).most_common(1)[0][0]
    calls, cur = [], None
    for ts, pid, name, rest in events:
        if name == "sys_enter" and pid == task:
            m = re.match(r"NR (\d+) \(([0-9a-f]+)", rest)
            cur = {"key": (m.group(1), int(m.group(2), 16)) if m else None, "enter": ts, "ev": []}
        elif name == "sys_exit" and pid == task and cur is not None:
            cur["exit"] = ts
            calls.append(cur)
            cur = None
        elif cur is not None:
            cur["ev"].append((ts, pid, name, rest))
    return calls, task


def requests(events, targets):
    """Each request of the task, by target: a dict of its event times (us).
    The targets are named by `targets` (the drivers' chips in the order
    vgpio-bench opened them, then "floor"): a driver's requests are line
    ioctls, the floor's are preads; the line requests' descriptors ascend in
    the order they were made (each chip is opened, its line requested and
    the chip closed again, so the chips share the lowest descriptor and the
    lines get the next ones), and the floor's file, opened last, takes the
    lowest free one, which is no clue."""
    calls, task = calls_of(events)
    # a request: a call in which the task itself notified the device
    mine = [c for c in calls if any(e[2] in NOTIFY and e[1] == task for e in c["ev"])]
    # (the targets' own: not the few a line request's setup, the program's
    # start or a file system on virtio made)
    counts = Counter(c["key"] for c in mine)
    top = max(counts.values(), default=0)
    kinds = {k for k, n in counts.items() if n * 10 >= top}
    mine = [c for c in mine if c["key"] in kinds]
    ids = {id(c) for c in mine}
    lines = sorted((k for k in kinds if k and k[0] == NR_IOCTL), key=lambda k: k[1])
    others = [k for k in kinds if k and k[0] != NR_IOCTL]
    drivers = [t for t in targets if t != "floor"]
    name = dict(zip(lines, drivers))
    if "floor" in targets and len(others) == 1:
        name[others[0]] = "floor"
    if len(lines) != len(drivers) or ("floor" in targets and len(others) != 1):
        print(f"trace: requests on {sorted(kinds)} do not match the targets {targets}: not split",
              file=sys.stderr)
        return {}
    out = {t: [] for t in targets}
    for i, c in enumerate(calls):
        if id(c) not in ids:
            continue
        r = {"enter": c["enter"], "exit": c["exit"]}
        if i + 1 < len(calls):
            r["next"] = calls[i + 1]["enter"]
        for ts, pid, ev, rest in c["ev"]:
            if ev in NOTIFY and pid == task and "notify" not in r:
                r["notify"] = ts
            elif ev == "vring_interrupt" and "notify" in r and "irq" not in r:
                r["irq"] = ts
            elif ev == "sched_wakeup" and "irq" in r and "woken" not in r and f"pid={task} " in rest:
                r["woken"] = ts
            elif ev == "sched_switch" and "woken" in r and "running" not in r and f"next_pid={task} " in rest:
                r["running"] = ts
        out[name[c["key"]]].append(r)
    return out


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else None


def split(rs, slowest=False):
    """Segments of the requests that slept and were woken after the answer
    (with slowest, of those in the slowest 1 % only)."""
    seg = {k: [] for k in SEGMENTS}
    whole = [r["exit"] - r["enter"] for r in rs]
    cut = pct(whole, 99) if slowest else None
    slept = 0
    for r in rs:
        if cut is not None and r["exit"] - r["enter"] < cut:
            continue
        if not all(k in r for k in ("notify", "irq", "woken", "running")):
            continue
        slept += 1
        seg["submit"].append(r["notify"] - r["enter"])
        seg["device"].append(r["irq"] - r["notify"])
        seg["wake"].append(r["woken"] - r["irq"])
        seg["sched"].append(r["running"] - r["woken"])
        seg["finish"].append(r["exit"] - r["running"])
        if "next" in r:
            seg["user"].append(r["next"] - r["exit"])
    return seg, whole, slept


def main():
    out = sys.argv[1]
    files = sorted(glob.glob(os.path.join(out, "trace-pair-*.txt")))
    if not files:
        return 0
    by = {}
    for f in files:
        try:
            targets = open(f[: -len(".txt")] + ".order").read().split()
        except OSError:
            continue
        for drv, rs in requests(parse(f), targets).items():
            by.setdefault(drv, []).extend(rs)
    drivers = [d for d in ("rust", "c", "floor") if d in by] + sorted(set(by) - {"rust", "c", "floor"})
    print()
    print("Where a one-line request's time goes (traced, bench/trace.py; median us of the")
    print("requests that slept; tracing adds a few us to each, alike for all)")
    print(f"{'':34}" + "".join(f"{d:>10}" for d in drivers))
    res = {d: split(by[d]) for d in drivers}
    labels = {
        "submit": "entry -> notify (submit)",
        "device": "notify -> interrupt (device)",
        "wake": "interrupt -> wakeup (callback)",
        "sched": "wakeup -> running",
        "finish": "running -> exit (return)",
        "user": "exit -> next entry (user)",
    }
    for k in SEGMENTS:
        cells = []
        for d in drivers:
            v = median(res[d][0][k])
            cells.append(f"{v:10.1f}" if v is not None else f"{'-':>10}")
        print(f"{labels[k]:34}" + "".join(cells))
    for name, fn in (("whole request p50", lambda w: median(w)), ("whole request p99", lambda w: pct(w, 99))):
        cells = []
        for d in drivers:
            v = fn(res[d][1])
            cells.append(f"{v:10.1f}" if v is not None else f"{'-':>10}")
        print(f"{name:34}" + "".join(cells))
    print(f"{'requests (slept)':34}" + "".join(f"{f'{len(res[d][1])} ({res[d][2]})':>12}" for d in drivers))
    # the tail: where the slowest 1 % spent their time
    tail = {d: split(by[d], slowest=True) for d in drivers}
    print("the slowest 1 % of requests, median us per segment:")
    for k in SEGMENTS[:-1]:
        cells = []
        for d in drivers:
            v = median(tail[d][0][k])
            cells.append(f"{v:10.1f}" if v is not None else f"{'-':>10}")
        print(f"  {labels[k]:32}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
