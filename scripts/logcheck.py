#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check the guest's kernel log and kmemleak report; quote every splat.

usage: logcheck.py KERNEL-LOG [KMEMLEAK-REPORT]

Fails (exit 1) on a WARNING, BUG, Oops, KASAN/UBSAN report, lockdep or RCU
splat, hung task, panic, or a kmemleak leak. Two kinds are reported but not
counted, each by an exact signature:
  - a splat inside a test of the C reference driver (tests/guest-run.sh
    writes "vgpio-test: begin c:TEST" / "end" markers into the log) whose
    trace is in the C driver (gpio-virtio.c, [gpio_virtio]), or which is the
    NULL call its shared static irq_chip causes on a second device (gpiolib
    logged "shared with multiple gpiochips"): the C driver's known bugs,
    which the tests exist to show; and, once such a splat was an oops (a task
    died, holding whatever locks it held), every later splat of the same C
    test: its consequences (a KASAN use-after-free of the dead task as a
    mutex owner, seen after the shared-irq_chip oops);
  - kmemleak leaks of gpiolib line labels allocated in gpiod_request_commit:
    gpiod_free_commit() (6.12, 7.3) frees a label only while the chip exists, so
    a chip removed while a line is requested (unbind with lines held) leaks
    it, whichever driver the chip belongs to; and of edge interrupt labels
    allocated in the character device's edge_detector_setup: a chip removed
    while a line watches edges has gpiochip_free_remaining_irqs() free the
    interrupt and drop the label free_irq() hands back;
  - kmemleak leaks whose trace is in the C driver ([gpio_virtio]) and, when
    the guest wrote driver-jiffies, that were made while only the C driver's
    tests ran; or made then by a virtqueue_add* called from a module
    unloaded since (bare addresses): memory it lost with requests that never
    completed (its known bugs).
"""
import os
import re
import sys

SPLAT = re.compile(
    r"WARNING:|BUG:|Oops|KASAN|UBSAN|general protection fault|Kernel panic|kernel BUG|"
    r"possible circular locking|possible recursive locking|inconsistent lock state|"
    r"suspicious RCU usage|lock held when returning|blocked for more than|"
    r"unreferenced object|suspected memory leak|Call [Tt]race:"
)
C_DRIVER = re.compile(r"gpio-virtio\.c|\[gpio_virtio\]")
CONTEXT = 30


# a virtqueue buffer added by code unloaded since (kmemleak prints a bare
# address for a frame in a module gone): a GPIO driver's, no test module's
VQ_ADD_BY_UNLOADED = re.compile(r"(?m)^\s+virtqueue_add\w*\+0x\S+\n\s+0x[0-9a-f]{16}$")
KMEMLEAK_SUMMARY = re.compile(r"kmemleak: \d+ new suspected memory leaks")


def check_log(path, leaks_checked=False):
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        print(f"logcheck: no kernel log at {path} (the guest did not finish?)")
        return 1, 0
    if not lines:
        print(f"logcheck: empty kernel log at {path}")
        return 1, 0
    # The ring buffer keeps the newest messages: a log that no longer starts
    # with the boot's first line lost its beginning, and a splat in the lost
    # part (a whole test's, the markers that say whose) cannot be checked.
    if not any("Linux version" in w for w in lines[:3]):
        print(
            f"logcheck: the kernel log at {path} lost its beginning (the ring buffer, "
            f"log_buf_len, wrapped; first line kept: {lines[0][:100]!r}): not checkable"
        )
        return 1, 0
    # Each line belongs to the test begun last: a report that comes after a
    # test ended (a hung-task report 120 s after a C-driver request got
    # stuck) still belongs to it.
    section = None
    sections = []
    for line in lines:
        m = re.search(r"vgpio-test: begin (\S+)", line)
        if m:
            section = m.group(1)
        sections.append(section)
    shared_irqchip = any("shared with multiple gpiochips" in w for w in lines)
    bad = known = 0
    # the C test sections in which a known C-driver splat killed a task
    c_oopsed = set()
    last = -CONTEXT
    for i, line in enumerate(lines):
        # (one report is one splat: lines within CONTEXT of the last one
        # counted belong to it, unless a test's section began between)
        if not SPLAT.search(line) or (i < last + CONTEXT and sections[i] == sections[last]):
            continue
        # kmemleak's one-line summary: its report, read by check_leaks(),
        # says which leaks they are and whether they count.
        if leaks_checked and KMEMLEAK_SUMMARY.search(line):
            continue
        last = i
        # WARN() prints its message (and "cut here") just before "WARNING:"
        window = lines[max(0, i - 2) : i + CONTEXT]
        test = sections[i]
        # The C driver shares one static irq_chip between devices: gpiolib
        # says so at probe, and the second device's enable hook is NULL, so
        # its first interrupt calls address 0 from the irq core.
        # (x86: "RIP: 0010:0x0"; arm64: "pc : 0x0")
        shared_chip_oops = shared_irqchip and any(
            re.search(r"RIP: 0010:0x0\b|pc : (0x0|0{16})\b", w) for w in window
        )
        c_test = bool(test and test.startswith("c:"))
        in_c_driver = shared_chip_oops or any(C_DRIVER.search(w) for w in window)
        if c_test and (in_c_driver or test in c_oopsed):
            if in_c_driver and any(re.search(r"Oops|kernel NULL pointer", w) for w in window):
                c_oopsed.add(test)
            known += 1
            if known <= 3:
                print(f"logcheck: known C driver bug during {test} (line {i + 1}, not counted):")
                for w in window[:6]:
                    print(f"  | {w}")
            continue
        bad += 1
        where = f" during {test}" if test else ""
        print(f"logcheck: splat in the guest kernel log{where} ({path} line {i + 1}):")
        for w in window:
            print(f"  | {w}")
    if known > 3:
        print(f"logcheck: ... {known} splats of the C driver's known bugs in all")
    print(f"logcheck: {len(lines)} kernel log lines checked: {bad} splat(s), {known} known C-driver splat(s)")
    return (1 if bad else 0), known


def check_leaks(path):
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return 0
    objects = [o for o in re.split(r"(?m)^(?=unreferenced object)", text) if o.strip()]
    # The guest writes the jiffies at which the tests began next to the
    # report: what was allocated before (at boot) is not the tests'.
    start = None
    try:
        start = int(open(os.path.join(os.path.dirname(path), "kmemleak-start-jiffies")).read())
    except (OSError, ValueError):
        pass
    # the C driver's tests: from their start (the Rust module unloaded)
    # to the next driver's; a file not as the guest writes it excuses nothing
    c_from = c_to = None
    try:
        marks = [line.split() for line in open(os.path.join(os.path.dirname(path), "driver-jiffies"))]
        for drv, j in marks:
            if c_from is not None and c_to is None:
                c_to = int(j)
            if drv == "c" and c_from is None:
                c_from = int(j)
    except OSError:
        pass
    except ValueError:
        print("logcheck: driver-jiffies is malformed: no leak is taken for the C driver's by when it was made")
        c_from = c_to = None

    def in_c_window(born):
        return (
            c_from is not None
            and born is not None
            and c_from <= int(born.group(1)) < (c_to if c_to is not None else float("inf"))
        )

    bad = []
    gpiolib_labels = irq_labels = c_driver = boot = 0
    for o in objects:
        born = re.search(r"jiffies (\d+)", o)
        if start is not None and born and int(born.group(1)) < start:
            boot += 1
            continue
        frames = re.findall(r"^\s+(\S+)\+0x", o, re.M)
        # the first frame past the allocator is who asked for the memory
        caller = next((f for f in frames if "alloc" not in f and "kstrdup" not in f), "")
        if caller == "gpiod_request_commit":
            gpiolib_labels += 1
        # (7.3 inlines edge_detector_setup into gpio_ioctl: its label is
        # the one kstrdup_and_replace makes)
        elif caller == "edge_detector_setup" or "kstrdup_and_replace" in frames:
            irq_labels += 1
        elif C_DRIVER.search(o) and (c_from is None or in_c_window(born)):
            c_driver += 1
        elif in_c_window(born) and VQ_ADD_BY_UNLOADED.search(o):
            c_driver += 1
        else:
            bad.append(o)
    if boot:
        print(f"logcheck: kmemleak: {boot} object(s) allocated before the tests began (boot), not counted")
    if gpiolib_labels:
        print(
            f"logcheck: kmemleak: {gpiolib_labels} gpiolib line label(s) from gpiod_request_commit "
            "(gpiolib, 6.12 and 7.3, does not free a label whose chip was removed while the "
            "line was requested), not counted"
        )
    if irq_labels:
        print(
            f"logcheck: kmemleak: {irq_labels} edge interrupt label(s) from the GPIO character "
            "device's edge_detector_setup (gpiolib, 6.12 and 7.3: a chip removed while a line watches "
            "edges has gpiochip_free_remaining_irqs free the irq and drop the label free_irq "
            "returns), not counted"
        )
    if c_driver:
        print(
            f"logcheck: kmemleak: {c_driver} allocation(s) by the C driver (gpio_virtio) lost "
            "with its requests that never completed (its known bugs), not counted"
        )
    for o in bad[:5]:
        print("logcheck: kmemleak reports a leak:")
        for w in o.splitlines()[:16]:
            print(f"  | {w}")
    if bad:
        print(f"logcheck: kmemleak: {len(bad)} leak(s)")
    return 1 if bad else 0


def main():
    report = sys.argv[2] if len(sys.argv) > 2 and os.path.exists(sys.argv[2]) else None
    rc, _ = check_log(sys.argv[1], leaks_checked=report is not None)
    if report:
        rc |= check_leaks(report)
    if rc == 0:
        print("logcheck: guest kernel log clean")
    sys.exit(rc)


if __name__ == "__main__":
    main()
