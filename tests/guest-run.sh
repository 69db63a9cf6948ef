#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the guest: guest-run.sh [--drivers "rust c"] [--not DRIVER:TEST]..
#     [--selftest] [TEST.sh...]
# For each driver: load its module, run every test that declares the driver
# ("# drivers: ..." line), unload it. Prints KTAP: one case per test and
# driver, the test's own KTAP nested under it. Then scans for leaks and
# saves the kernel log for the host's log check.
set -u
: "${VGPIO_OUT:?}" "${VGPIO_TOP:?}"
VGPIO_BUILD=${VGPIO_BUILD:-$VGPIO_TOP}
drivers="rust c"
# (a bound for a test that hangs, several times what the slowest test takes
# on a slow machine: a test must not fail for being slow)
per_test_timeout=900
selftest=0
# DRIVER:TEST pairs left out of the plan (not run, not listed)
declare -A not_run
while [ $# -gt 0 ]; do
	case "$1" in
	--drivers) drivers=$2; shift 2 ;;
	--not) not_run[${2:?--not DRIVER:TEST}]=1; shift 2 ;;
	# after the suite and its log: a module that WARNs, and the log again
	# in dmesg-selftest.txt, which the host's log check must fail
	--selftest) selftest=1; shift ;;
	*) break ;;
	esac
done
# No test named: every test in the tests folder (the list would make the
# kernel command line, which carries the guest's command, too long).
[ $# -gt 0 ] || set -- "$VGPIO_TOP"/tests/*.sh
# Each test's header, read in this shell (a process start costs about half a
# second in this guest): "# drivers: ...", "# runs: last [RANK]" (after the
# others, by rank, default 1: the C driver leaves stuck tasks and broken
# queues behind them) and "# timeout: SECONDS" (times VGPIO_TIME_SCALE, the
# runner's: slower guests).
declare -A t_drivers t_rank t_limit
last_rank=0
for t in "$@"; do
	t_drivers[$t]="" t_rank[$t]=0 t_limit[$t]=$per_test_timeout
	while IFS= read -r line; do
		case "$line" in
		"# drivers:"*) t_drivers[$t]=" ${line#*:} " ;;
		"# runs: last") t_rank[$t]=1 ;;
		"# runs: last "*) t_rank[$t]=${line##* } ;;
		"# timeout: "*) t_limit[$t]=${line##* } ;;
		"" | "#"*) ;;
		*) break ;;
		esac
	done <"$t"
	[ "${t_rank[$t]}" -le "$last_rank" ] || last_rank=${t_rank[$t]}
done
tests=()
for ((r = 0; r <= last_rank; r++)); do
	for t in "$@"; do [ "${t_rank[$t]}" != "$r" ] || tests+=("$t"); done
done
export VGPIO_TOP VGPIO_KDIR VGPIO_DEVICES

# jiffies: now, as kmemleak stamps the objects it reports. (Read in one
# pass by awk: bash's read of this seq_file, whose text changes as timers
# fire, once came back without the number.)
jiffies() {
	local j i
	for i in 1 2 3; do
		j=$(awk '$1 == "jiffies:" { print $2; exit }' /proc/timer_list)
		[[ $j =~ ^[0-9]+$ ]] && { echo "$j"; return 0; }
	done
	return 1
}

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
kmemleak=/sys/kernel/debug/kmemleak
if [ -w "$kmemleak" ]; then
	# Boot-time suspects are not ours: the host's log check counts only
	# objects allocated from now on (kmemleak reports each one's jiffies).
	# A scan and clear here did the same at the cost of a scan (20 s).
	start_jiffies=$(jiffies)
	if [ -n "$start_jiffies" ]; then
		echo "$start_jiffies" >"$VGPIO_OUT/kmemleak-start-jiffies"
	else
		echo scan >"$kmemleak"
		echo clear >"$kmemleak"
	fi
fi

# Everything below goes to the console and to ktap.txt for the host.
exec > >(tee "$VGPIO_OUT/ktap.txt") 2>&1

declares() {
	local name=${1##*/}
	[[ ${t_drivers[$1]} == *" $2 "* ]] && [ -z "${not_run[$2:${name%.sh}]:-}" ]
}

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
	# Where each driver's tests begin: during the C driver's (begun with the
	# Rust module unloaded), the host's log check knows that leaks
	# allocated by code since unloaded (kmemleak prints bare addresses for
	# it) are not ours.
	if [ "$drv" = rust ] || [ ! -e /sys/module/gpio_virtio_rs ]; then
		j=$(jiffies) && echo "$drv $j" >>"$VGPIO_OUT/driver-jiffies"
	fi
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
		start=$EPOCHSECONDS
		# Markers let the host's log check tell which test a splat is in.
		echo "vgpio-test: begin $name" >/dev/kmsg
		limit=$((${t_limit[$t]} * ${VGPIO_TIME_SCALE:-1}))
		timeout -k 5 "$limit" bash "$t" >/tmp/vgpio-test.out 2>&1
		rc=$?
		echo "vgpio-test: end $name" >/dev/kmsg
		while IFS= read -r line || [ -n "$line" ]; do
			printf '# %s\n' "$line"
		done </tmp/vgpio-test.out
		echo "# $name took $((EPOCHSECONDS - start)) s"
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
	# its own section: after the last test's, a splat would be that test's
	# (and excused there if it was a C test whose known bug oopsed)
	echo "vgpio-test: begin selftest" >/dev/kmsg
	insmod "$VGPIO_BUILD/tests/modules/vgpio_warn_test.ko"
	dmesg >"$VGPIO_OUT/dmesg-selftest.txt"
fi
[ "$fails" = 0 ]
