#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the guest (scripts/bench.sh): the same workloads on the Rust and
# the C driver, moving the devices between them, alternating the order every
# round. Device 0: 32 lines, line 0 wired to line 1; device 1: 256 lines;
# device 2: 1024 lines; device 3: 8 lines. Writes RESULT lines to
# $VGPIO_OUT/results.txt and latency samples to
# $VGPIO_OUT/lat-DRIVER-WORKLOAD-rROUND.txt. Every round also measures the
# floor: the same round trip through vgpio_floor (tests/modules), a virtio
# driver with no GPIO logic ($VGPIO_FLOOR_KO), reported as driver "floor".
set -u
BENCH=$1
ROUNDS=${2:-5}
FLOOR_KO=${VGPIO_FLOOR_KO:-$VGPIO_TOP/tests/modules/vgpio_floor.ko}
res=$VGPIO_OUT/results.txt
: >"$res"
# The test kernel's kmemleak scans all memory every 10 minutes, a minute or
# more of both CPUs under TCG: not during a benchmark.
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
[ -w /sys/kernel/debug/kmemleak ] && echo scan=off >/sys/kernel/debug/kmemleak

use_driver() {
	export DRIVER=$1
	# shellcheck source=/dev/null
	. "$VGPIO_TOP/tests/lib.sh"
}
result() { echo "RESULT drv=$DRIVER round=$round workload=$1 metric=$2 value=$3" | tee -a "$res"; }
# record WORKLOAD LINE: the rate and latencies of a vgpio-bench result line
record() {
	local kv
	for kv in $2; do
		case $kv in
		ops_per_s=* | p50_us=* | p99_us=*) result "$1" "${kv%%=*}" "${kv#*=}" ;;
		esac
	done
}
# bench WORKLOAD ARGS...: run vgpio-bench, record its key=value results
bench() {
	local w=$1 line
	shift
	line=$("$BENCH" -o "$VGPIO_OUT/lat-$DRIVER-$w-r$round.txt" "${w%%[0-9]*}" "$@") ||
		{ echo "# $w failed"; return; }
	record "$w" "$line"
}
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

unbind_all() {
	local i
	for i in 0 1 2 3; do
		echo "$(vdev_of $i)" >/sys/bus/virtio/drivers/"$DRV_NAME"/unbind 2>/dev/null
	done
}

# floor: the round trip of device 0's line 3 with no driver logic
floor() {
	use_driver rust
	DRIVER=floor
	insmod "$FLOOR_KO" || { echo "# no floor module"; return; }
	wait_for eval '[ -e /sys/kernel/debug/vgpio_floor/$(vdev_of 0) ]'
	bench floor "/sys/kernel/debug/vgpio_floor/$(vdev_of 0)" 2000
	rmmod vgpio_floor
}

for round in $(seq "$ROUNDS"); do
	floor
	if [ $((round % 2)) = 1 ]; then order="rust c"; else order="c rust"; fi
	for drv in $order; do
		use_driver "$drv"
		insmod "$MODULE_KO"
		wait_chip 0 && wait_chip 1 && wait_chip 2 && wait_chip 3 || { echo "# chips missing"; continue; }

		chip=$(chip_of 0)
		bench set "$chip" 2 2000
		bench get "$chip" 3 2000
		bench mset8 "$chip" 8 500
		bench mget8 "$chip" 8 500
		bench mset32 "$chip" 32 500
		bench mget32 "$chip" 32 500
		# N tasks at once, each writing its own line (8, 9, ...): total ops/s
		bench par1 "$chip" 8 1 2000
		bench par4 "$chip" 8 4 1000
		bench loop "$chip" 0 1 500

		# the highest edge rate delivered with no loss (200 edges each),
		# and the first rate that lost some (how many got through)
		best=0
		for rate in 100 150 200 300 400 500 700 1000 1500 2000 3000 5000 7000 10000 20000; do
			period=$((1000000 / rate))
			secs=$((200 / rate + 3))
			"$BENCH" count "$chip" 5 "$secs" 200 >/tmp/count.out &
			pid=$!
			wait_for eval 'grep -q armed /tmp/count.out'
			wait_for eval '[ "$(line_state 0 5 queued)" = 1 ]'
			ctl 0 edges 5 200 $period >/dev/null
			wait $pid
			got=$(sed -n 's/.*events=//p' /tmp/count.out)
			echo "# $DRIVER: $rate edges/s: $got of 200"
			if [ "$got" != 200 ]; then
				result edges lossy_rate "$rate"
				result edges lossy_got "${got:-0}"
				break
			fi
			best=$rate
		done
		result edges lossless_per_s "$best"

		# CPU time per event: busy ticks (1/100 s) over a 400-edge train
		"$BENCH" count "$chip" 5 5 >/tmp/count.out &
		pid=$!
		wait_for eval 'grep -q armed /tmp/count.out'
		wait_for eval '[ "$(line_state 0 5 queued)" = 1 ]'
		b0=$(busy_ticks)
		ctl 0 edges 5 400 5000 >/dev/null
		sleep 2.5
		b1=$(busy_ticks)
		wait $pid
		got=$(sed -n 's/.*events=//p' /tmp/count.out)
		[ "${got:-0}" -gt 0 ] && result edges cpu_us_per_event "$(((b1 - b0) * 10000 / got))"

		# Probe time and memory per line: unbind, then bind one device.
		# Last: after a rebind the C driver's shared static irq_chip oopses
		# on the first interrupt, so the interrupt workloads come first.
		unbind_all
		for i in 3 1 2 0; do
			lines=$(field ngpio "$(ctl $i info)")
			before=$(slab_kb)
			v=$(vdev_of $i)
			# bash's own clock: a date process would add its start-up
			# (a good part of a second under TCG) to the probe
			t0=${EPOCHREALTIME/./}
			echo "$v" >/sys/bus/virtio/drivers/"$DRV_NAME"/bind
			t1=${EPOCHREALTIME/./}
			wait_chip $i
			after=$(slab_kb)
			result "probe$lines" us "$((t1 - t0))"
			result "probe$lines" slab_bytes_per_line "$(((after - before) * 1024 / lines))"
		done

		vgpio_unload
	done
done
# 16 tasks at once, each writing its own line: last, after every round,
# each driver for all rounds in a row, the C driver last. Its requestq ring
# breaks under that much concurrency (virtqueue_get_buf without the lock
# add_sgs holds): requests in flight never complete, and their tasks sleep
# uninterruptibly for good, which keeps its module loaded and the devices
# bound to it. A run that does not finish within 120 s is recorded as hung,
# and the C driver's later rounds are not tried.
for drv in rust c; do
	use_driver "$drv"
	insmod "$MODULE_KO"
	wait_chip 0 || { echo "# chips missing"; continue; }
	chip=$(chip_of 0)
	for round in $(seq "$ROUNDS"); do
		"$BENCH" -o "$VGPIO_OUT/lat-$DRIVER-par16-r$round.txt" par "$chip" 8 16 250 >/tmp/par16.out &
		pid=$!
		WAIT_S=120 wait_for eval "! running $pid"
		if running $pid; then
			result par16 hung 1
			echo "# $DRIVER: 16 tasks at once: still running after 120 s: $(dmesg | grep -c 'failed to add request') 'failed to add request' lines in the log"
			hung=1
			break
		fi
		wait $pid
		record par16 "$(cat /tmp/par16.out)"
	done
	[ "${hung:-0}" = 1 ] || vgpio_unload
done

dmesg >"$VGPIO_OUT/dmesg.txt"
