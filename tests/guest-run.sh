#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the guest: guest-run.sh [--drivers "rust c"] [--selftest] [TEST.sh...]
# For each driver: load its module, run every test that declares the driver
# ("# drivers: ..." line), unload it. Prints KTAP: one case per test and
# driver, the test's own KTAP nested under it. Then scans for leaks and
# saves the kernel log for the host's log check.
set -u
: "${VGPIO_OUT:?}" "${VGPIO_TOP:?}"
drivers="rust c"
# (a bound for a test that hangs, several times what the slowest test takes
# on a slow machine: a test must not fail for being slow)
per_test_timeout=900
selftest=0
while [ $# -gt 0 ]; do
	case "$1" in
	--drivers) drivers=$2; shift 2 ;;
	# after the suite and its log: a module that WARNs, and the log again
	# in dmesg-selftest.txt, which the host's log check must fail
	--selftest) selftest=1; shift ;;
	*) break ;;
	esac
done
# No test named: every test in the tests folder (the list would make the
# kernel command line, which carries the guest's command, too long).
[ $# -gt 0 ] || set -- "$VGPIO_TOP"/tests/*.sh
# Tests that say "# runs: last [RANK]" go after the others, by rank (default
# 1): the C driver leaves stuck tasks and broken queues behind them.
tests=()
for t in "$@"; do grep -q '^# runs: last' "$t" || tests+=("$t"); done
while read -r _ t; do tests+=("$t"); done < <(
	for t in "$@"; do
		grep -q '^# runs: last' "$t" || continue
		r=$(sed -n 's/^# runs: last *\([0-9]*\)$/\1/p' "$t")
		echo "${r:-1} $t"
	done | sort -s -n -k1,1
)
export VGPIO_TOP VGPIO_KDIR VGPIO_DEVICES

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
kmemleak=/sys/kernel/debug/kmemleak
if [ -w "$kmemleak" ]; then
	# Boot-time suspects are not ours: start from a clean slate.
	echo scan >"$kmemleak"
	echo clear >"$kmemleak"
fi

# Everything below goes to the console and to ktap.txt for the host.
exec > >(tee "$VGPIO_OUT/ktap.txt") 2>&1

declares() { grep -qE "^# drivers:.*\b$2\b" "$1"; }

plan=0
for drv in $drivers; do
	for t in "${tests[@]}"; do declares "$t" "$drv" && plan=$((plan + 1)); done
done
echo "TAP version 13"
echo "1..$plan"
n=0
fails=0
for drv in $drivers; do
	export DRIVER=$drv
	# shellcheck source=/dev/null
	(. "$VGPIO_TOP/tests/lib.sh" && vgpio_load) || echo "# could not load the $drv driver"
	for t in "${tests[@]}"; do
		declares "$t" "$drv" || continue
		n=$((n + 1))
		name="$drv:$(basename "$t" .sh)"
		# The C driver keeps state across rebinds in its one static
		# irq_chip (see c_irq_device in lib.sh): each of its tests gets
		# a freshly loaded module, unless a stuck task holds it.
		if [ "$drv" = c ]; then
			export VGPIO_C_STALE=0
			# shellcheck source=/dev/null
			if ! (. "$VGPIO_TOP/tests/lib.sh" && vgpio_unload && vgpio_load); then
				echo "# could not reload the c driver before $name"
				VGPIO_C_STALE=1
			fi
		fi
		start=$(date +%s)
		# Markers let the host's log check tell which test a splat is in.
		echo "vgpio-test: begin $name" >/dev/kmsg
		# a test may say "# timeout: SECONDS" (default $per_test_timeout)
		limit=$(sed -n 's/^# timeout: \([0-9]*\)$/\1/p' "$t")
		limit=${limit:-$per_test_timeout}
		timeout -k 5 "$limit" bash "$t" >/tmp/vgpio-test.out 2>&1
		rc=$?
		echo "vgpio-test: end $name" >/dev/kmsg
		sed 's/^/# /' /tmp/vgpio-test.out
		echo "# $name took $(($(date +%s) - start)) s"
		case $rc in
		0) echo "ok $n $name" ;;
		4) echo "ok $n $name # SKIP" ;;
		124) echo "not ok $n $name # TIMEOUT ${limit}s"; fails=$((fails + 1)) ;;
		*) echo "not ok $n $name"; fails=$((fails + 1)) ;;
		esac
	done
	# shellcheck source=/dev/null
	(. "$VGPIO_TOP/tests/lib.sh" && vgpio_unload) || echo "# could not unload the $drv driver"
done
echo "# Totals: pass:$((n - fails)) fail:$fails"

if [ -w "$kmemleak" ]; then
	# kmemleak only reports objects older than 5 s; scan twice to be sure.
	sleep 6
	echo scan >"$kmemleak"
	echo scan >"$kmemleak"
	cat "$kmemleak" >"$VGPIO_OUT/kmemleak.txt"
fi
dmesg >"$VGPIO_OUT/dmesg.txt"
if [ "$selftest" = 1 ]; then
	insmod "$VGPIO_TOP/tests/modules/vgpio_warn_test.ko"
	dmesg >"$VGPIO_OUT/dmesg-selftest.txt"
fi
[ "$fails" = 0 ]
