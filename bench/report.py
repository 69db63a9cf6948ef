#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The bench RESULT lines per driver: medians over the rounds with their
spread (lowest-highest), the Rust/C ratio against the targets, the floor (the
same round trip with no driver logic, vgpio_floor) and plots of the latency
distributions (a CDF per workload, every round's samples).

Both drivers run each workload in the same round, seconds apart, so the
ratio is taken per round (the pair shares that moment's guest speed) and the
table shows the median of those ratios with their spread.

usage: report.py OUTDIR   (reads OUTDIR/results.txt and OUTDIR/lat-*.txt)
"""
import math
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])
# (workload, metric, driver) -> {round: value}
vals = defaultdict(dict)
for line in (out / "results.txt").read_text().splitlines():
    if not line.startswith("RESULT "):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    vals[(kv["workload"], kv["metric"], kv["drv"])][kv["round"]] = float(kv["value"])

# driver -> where its device hung (its tasks never returned; no workload
# ran on that device after it: those are recorded as skipped)
hung_in = {drv: f"{w}, round {rnd}" for (w, m, drv), d in vals.items() if m == "hung"
           for rnd in d}


def lost_to_hang(w, drv):
    """Did drv's device hang in workload w, or was w skipped after that?"""
    return drv in hung_in and ((w, "hung", drv) in vals or (w, "skipped", drv) in vals)

# (workload, metric, higher is better, target for the "better by" ratio, label)
ROWS = [
    ("set", "ops_per_s", True, 1.0, "1-line set, ops/s"),
    ("set", "p50_us", False, 1.0, "1-line set, p50 us"),
    ("set", "p99_us", False, 1.0, "1-line set, p99 us"),
    ("get", "ops_per_s", True, 1.0, "1-line get, ops/s"),
    ("get", "p50_us", False, 1.0, "1-line get, p50 us"),
    ("get", "p99_us", False, 1.0, "1-line get, p99 us"),
    ("mset8", "ops_per_s", True, 6.0, "8-line set, ops/s"),
    ("mget8", "ops_per_s", True, 6.0, "8-line get, ops/s"),
    ("mset32", "ops_per_s", True, 16.0, "32-line set, ops/s"),
    ("mget32", "ops_per_s", True, 16.0, "32-line get, ops/s"),
    ("par1", "ops_per_s", True, None, "1 task, own line, ops/s"),
    ("par4", "ops_per_s", True, None, "4 tasks, own lines, ops/s"),
    ("par16", "ops_per_s", True, 2.0, "16 tasks, own lines, ops/s"),
    ("par16", "p99_us", False, None, "16 tasks, p99 us"),
    ("loop", "p50_us", False, 1.0, "irq loop latency p50 us"),
    ("loop", "p99_us", False, 1.0, "irq loop latency p99 us"),
    ("edges", "lossless_per_s", True, 1.5, "lossless edge rate /s"),
    ("edges", "lossy_rate", True, None, "first lossy rate /s"),
    ("edges", "lossy_got", True, None, "  edges of 200 seen there"),
    ("rising", "lossless_per_s", True, 1.5, "lossless rising-edge rate /s"),
    ("rising", "lossy_rate", True, None, "first lossy rate /s"),
    ("rising", "lossy_got", True, None, "  edges of 200 seen there"),
    ("edges", "cpu_us_per_event", False, None, "CPU us per event"),
    ("edges", "get_value_per_100_events", False, None, "  GET_VALUE per 100 events"),
    ("edges", "set_irq_type_per_100_events", False, None, "  SET_IRQ_TYPE per 100 events"),
    ("edges", "evbufs_per_100_events", False, None, "  eventq buffers per 100 events"),
    ("edges", "cycle_p50_us", False, None, "event cycle p50 us (device: event to buffer back)"),
    ("edges", "cycle_p99_us", False, None, "event cycle p99 us"),
    ("probe8", "us", False, 1.0, "probe 8 lines, us"),
    ("probe256", "us", False, None, "probe 256 lines, us"),
    ("probe1024", "us", False, 5.0, "probe 1024 lines, us"),
    ("probe1024", "slab_bytes_per_line", False, None, "memory per line, bytes"),
]


# Rows a driver may rightly lack: no lossy rate when it lost no edge up to
# the ladder's top.
OPTIONAL = {(w, m) for w in ("edges", "rising") for m in ("lossy_rate", "lossy_got")}
LADDER_TOP = 50000


def summary(v):
    """median, lowest, highest, count"""
    return (statistics.median(v), min(v), max(v), len(v)) if v else None


def med(w, m, drv):
    return summary(list(vals.get((w, m, drv), {}).values()))


def ratio(better, worse):
    """better / worse, a zero in either counted (0 or infinity), not dropped"""
    if worse:
        return better / worse
    return math.inf if better else 1.0


def ratios(w, m, higher):
    """Rust's advantage per round in which both drivers have a result. The
    halves of a round run A B B A (rounds Na and Nb, see guest-bench.sh's
    abba) count as one: the geometric mean of their two ratios, in which
    a drift that favours the first driver of one half favours the other in
    the other half"""
    r, c = vals.get((w, m, "rust"), {}), vals.get((w, m, "c"), {})
    per = defaultdict(list)
    for k in r:
        if k in c:
            per[re.match(r"\d+", k).group(0)].append(
                ratio(r[k], c[k]) if higher else ratio(c[k], r[k]))
    pooled = []
    for xs in per.values():
        if all(0 < x < math.inf for x in xs):
            pooled.append(math.exp(sum(math.log(x) for x in xs) / len(xs)))
        else:
            pooled.append(sorted(xs)[len(xs) // 2])
    return summary(pooled)


def spread(s, fmt=".0f"):
    return f"{s[1]:{fmt}}-{s[2]:{fmt}}"


missing = 0
missed = []
kernel = out / "kernel.txt"
if kernel.exists():
    print(kernel.read_text().strip())
print(f"{'workload':28} {'Rust':>10} {'(spread)':>13} {'C':>10} {'(spread)':>13} "
      f"{'better by':>9} {'(spread)':>11}  target")
for w, m, higher, target, label in ROWS:
    r, c = med(w, m, "rust"), med(w, m, "c")
    hung = [d for d, n, x in (("Rust", "rust", r), ("C", "c", c))
            if not x and lost_to_hang(w, n)]
    if hung:
        print(f"{label:28} {r[0] if r else '-':>10} {'':>13} {c[0] if c else '-':>10} {'':>13}   "
              "(" + "; ".join(f"{d} hung in {hung_in[d.lower()]}" for d in hung) + ")")
        if target is not None and (hung != ["C"] or not r):
            missed.append(label + " (hung)")
        continue
    if not r or not c:
        if (w, m) in OPTIONAL:
            note = "none: no edge lost up to %d/s" % LADDER_TOP
            print(f"{label:28} {r[0] if r else '-':>10} {'':>13} {c[0] if c else '-':>10} "
                  f"{'':>13}   ({note} for " + ", ".join(
                      d for d, x in (("Rust", r), ("C", c)) if not x) + ")")
            continue
        print(f"{label:28} {'-':>10} {'':>13} {'-':>10} {'':>13}   (no result)")
        missing += 1
        continue
    rm, cm = r[0], c[0]
    better = ratios(w, m, higher)
    if not better:
        print(f"{label:28} {rm:10.1f} {spread(r):>13} {cm:10.1f} {spread(c):>13} "
              f"{'-':>9} {'':>11}  (no round with both)")
        if target is not None:
            missed.append(label + " (no round with both)")
        continue
    verdict = ""
    if m == "lossless_per_s" and rm >= LADDER_TOP and cm >= LADDER_TOP:
        verdict = "(both at the ladder's top: no ratio)"
    elif target is not None:
        ok = better[0] >= target
        verdict = f">= {target:g}x: {'met' if ok else 'MISSED'}"
        if not ok:
            missed.append(label)
    print(f"{label:28} {rm:10.1f} {spread(r):>13} {cm:10.1f} {spread(c):>13} "
          f"{better[0]:8.2f}x {spread(better, '.2f'):>11}  {verdict}")
for drv, where in sorted(hung_in.items()):
    print(f"{drv}: its device hung in {where}: requests that never complete, their tasks "
          "asleep for good; no workload ran on that device after it")
rounds = med("set", "ops_per_s", "rust")
print(f"(medians of {rounds[3] if rounds else 0} rounds, lowest-highest as spread; 'better by' is "
      "the median of the rounds' Rust/C ratios, > 1 means the Rust driver is better)")

# The floor: one GET_VALUE round trip through a virtio driver with no GPIO
# logic (vgpio_floor): what guest, QEMU and device cost; each driver's
# single-line operation as a distance from it.
fl = med("floor", "p50_us", "floor")
if fl:
    fo = med("floor", "ops_per_s", "floor")
    f99 = med("floor", "p99_us", "floor")
    print(f"floor (virtio round trip, no driver logic, in the same batches as the gets): "
          f"p50 {fl[0]:.1f} us ({spread(fl)}), p99 {f99[0]:.1f} us, {fo[0]:.0f} ops/s")
    floor_r = vals[("floor", "p50_us", "floor")]
    for w in ("set", "get"):
        parts = []
        for drv in ("rust", "c"):
            d = vals.get((w, "p50_us", drv), {})
            over = summary([d[k] - floor_r[k] for k in d if k in floor_r])
            if over:
                parts.append(f"{drv} floor + {over[0]:.1f} us ({spread(over, '.1f')})")
        print(f"  1-line {w} p50, per round: " + "; ".join(parts))
    print("  (the floor is a GET_VALUE; a SET_VALUE costs the device and the ring the same)")
else:
    print("floor: no result")
    missing += 1

sim = out / "sim-bench.txt"
if sim.exists():
    kv = dict(f.split("=", 1) for f in sim.read_text().split() if "=" in f)
    if "ns_per_request" in kv:
        ns = float(kv["ns_per_request"])
        print(f"the simulator alone (no guest): {ns:.0f} ns per request, "
              f"{1e9 / ns:,.0f} requests/s")

if missed:
    print("targets missed: " + "; ".join(missed))
if missing:
    print(f"report: {missing} workload(s) without a result")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib missing: no plot")
    sys.exit(1 if missing else 0)


def samples(drv, w):
    xs = []
    for f in sorted(out.glob(f"lat-{drv}-{w}-r*.txt")):
        xs += [float(x) for x in f.read_text().split()]
    return sorted(xs)


PLOTS = [("set", "1-line set"), ("get", "1-line get"), ("mget8", "8-line get"),
         ("par16", "16 tasks, own lines, set"), ("loop", "irq loop (set -> edge event)")]
fig, axes = plt.subplots(1, len(PLOTS), figsize=(5 * len(PLOTS), 4.2))
for ax, (w, title) in zip(axes, PLOTS):
    series = [("rust", "Rust", "tab:orange"), ("c", "C", "tab:blue")]
    if w in ("set", "get"):
        series.append(("floor", "floor (no driver)", "tab:gray"))
    for drv, name, colour in series:
        xs = samples(drv, "floor" if drv == "floor" else w)
        if not xs:
            continue
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        p50, p99 = xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.99))]
        ax.plot(xs, ys, label=f"{name}: p50 {p50:.0f}, p99 {p99:.0f} us", color=colour)
    ax.set_xscale("log")
    ax.set_xlabel("latency per operation (us, log scale)")
    ax.set_ylabel("fraction of operations at or below")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
name = kernel.read_text().split("\n")[0] if kernel.exists() else ""
fig.suptitle(f"virtio-gpio, Rust vs C driver, same guest and device, all rounds: {name}",
             fontsize=10)
fig.tight_layout()
fig.savefig(out / "latency.png", dpi=100)
print(f"plot: {out / 'latency.png'}")
sys.exit(1 if missing else 0)
