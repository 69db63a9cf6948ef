#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Medians of the bench RESULT lines per driver, the Rust/C ratio against the
targets, and a plot of the latency distributions.

usage: report.py OUTDIR   (reads OUTDIR/results.txt and OUTDIR/lat-*.txt)
"""
import statistics
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])
vals = defaultdict(list)
for line in (out / "results.txt").read_text().splitlines():
    if not line.startswith("RESULT "):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    vals[(kv["workload"], kv["metric"], kv["drv"])].append(float(kv["value"]))

# (workload, metric, higher is better, target for rust/c "better" ratio, label)
ROWS = [
    ("set", "ops_per_s", True, 0.95, "1-line set, ops/s"),
    ("set", "p50_us", False, 0.95, "1-line set, p50 us"),
    ("set", "p99_us", False, 0.95, "1-line set, p99 us"),
    ("get", "ops_per_s", True, 0.95, "1-line get, ops/s"),
    ("get", "p50_us", False, 0.95, "1-line get, p50 us"),
    ("get", "p99_us", False, 0.95, "1-line get, p99 us"),
    ("mset8", "ops_per_s", True, 4.0, "8-line set, ops/s"),
    ("mget8", "ops_per_s", True, 4.0, "8-line get, ops/s"),
    ("mset32", "ops_per_s", True, 10.0, "32-line set, ops/s"),
    ("mget32", "ops_per_s", True, 10.0, "32-line get, ops/s"),
    ("loop", "p50_us", False, 0.95, "irq loop latency p50 us"),
    ("loop", "p99_us", False, 0.95, "irq loop latency p99 us"),
    ("edges", "lossless_per_s", True, 1.0, "lossless edge rate /s"),
    ("edges", "cpu_us_per_event", False, None, "CPU us per event"),
    ("probe8", "us", False, None, "probe 8 lines, us"),
    ("probe256", "us", False, None, "probe 256 lines, us"),
    ("probe1024", "us", False, 5.0, "probe 1024 lines, us"),
    ("probe1024", "slab_bytes_per_line", False, None, "memory per line, bytes"),
]

missing = 0
print(f"{'workload':28} {'Rust':>12} {'C':>12} {'Rust/C':>8}  {'better by':>9}  target")
for w, m, higher, target, label in ROWS:
    r, c = vals.get((w, m, "rust")), vals.get((w, m, "c"))
    if not r or not c:
        print(f"{label:28} {'-':>12} {'-':>12}   (no result)")
        missing += 1
        continue
    rm, cm = statistics.median(r), statistics.median(c)
    ratio = rm / cm if cm else float("inf")
    better = (rm / cm if higher else cm / rm) if cm and rm else float("nan")
    verdict = ""
    if target is not None:
        verdict = f">= {target:g}x: {'met' if better >= target else 'MISSED'}"
    print(f"{label:28} {rm:12.1f} {cm:12.1f} {ratio:8.2f}  {better:8.2f}x  {verdict}")
print(f"(medians of {len(vals.get(('set', 'ops_per_s', 'rust'), []))} rounds; "
      "'better by' > 1 means the Rust driver is better)")
sim = out / "sim-bench.txt"
if sim.exists():
    kv = dict(f.split("=", 1) for f in sim.read_text().split() if "=" in f)
    if "ns_per_request" in kv:
        ns = float(kv["ns_per_request"])
        print(f"the simulator alone (no guest): {ns:.0f} ns per request, "
              f"{1e9 / ns:,.0f} requests/s; the rest of each round trip is virtqueue, "
              "QEMU and guest")
        for w in ("set", "get"):
            for drv in ("rust", "c"):
                v = vals.get((w, "ops_per_s", drv))
                if v:
                    share = statistics.median(v) * ns / 1e9 * 100
                    print(f"  {w} {drv}: the simulator's share of each operation: {share:.2f}%")

if missing:
    print(f"report: {missing} workload(s) without a result for both drivers")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib missing: no plot")
    sys.exit(1 if missing else 0)

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for ax, w in zip(axes, ["set", "get", "loop"]):
    for drv, colour in [("rust", "tab:orange"), ("c", "tab:blue")]:
        f = out / f"lat-{drv}-{w}.txt"
        if not f.exists():
            continue
        xs = sorted(float(x) for x in f.read_text().split())
        if not xs:
            continue
        ys = [i / len(xs) for i in range(len(xs))]
        ax.plot(xs, ys, label=f"{drv} (p50 {xs[len(xs) // 2]:.0f} us)", color=colour)
    ax.set_xscale("log")
    ax.set_xlabel("latency (us)")
    ax.set_ylabel("fraction of operations")
    ax.set_title({"set": "1-line set", "get": "1-line get", "loop": "irq loop (set -> edge event)"}[w])
    ax.legend()
fig.suptitle("virtio-gpio: Rust vs C driver, same guest, same device (TCG)")
fig.tight_layout()
fig.savefig(out / "latency.png", dpi=100)
print(f"plot: {out / 'latency.png'}")
sys.exit(1 if missing else 0)
