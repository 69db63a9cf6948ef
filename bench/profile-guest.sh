#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the guest (scripts/profile.sh), under QEMU with the tbprof plugin
# (bench/tbprof.c), which writes the guest's executed instructions per block
# each time the guest enters syncfs(2): here, once after each phase. Both
# drivers loaded, the Rust driver on device 0 and the C driver on device 1
# (32 lines, line 0 wired to line 1), the task and the devices' interrupts
# on CPU 0 as make bench has them. Each phase is one workload on one driver,
# N operations (vgpio-bench); the phases alternate the drivers and the gets
# run twice. Writes $VGPIO_OUT/kallsyms.txt (the addresses the report
# names) and $VGPIO_OUT/phases.txt ("PHASE DRIVER WORKLOAD N": phase K is
# the plugin's dump K).
set -u
BENCH=$1
N=${2:-3000}
for DRIVER in c rust; do
	# shellcheck source=/dev/null
	. "$VGPIO_TOP/tests/lib.sh"
done
insmod "$VGPIO_RUST_KO"
insmod "$VGPIO_KDIR/drivers/gpio/gpio-virtio.ko"
for i in 0 1; do wait_chip $i; done
v=$(vdev_of 1)
echo "$v" >/sys/bus/virtio/devices/"$v"/driver/unbind
echo "$v" >/sys/bus/virtio/drivers/gpio_virtio/bind
for i in 0 1; do
	wait_chip $i
	echo 0 >/proc/irq/"$(cat /sys/bus/virtio/devices/"$(vdev_of $i)"/../irq)"/smp_affinity_list
done
taskset -p -c 0 $$ >/dev/null
cat /proc/kallsyms >"$VGPIO_OUT/kallsyms.txt"
declare -A chip=([rust]=$(chip_of 0) [c]=$(chip_of 1))
# (warm: every path the phases take has run once)
for d in rust c; do
	"$BENCH" get "${chip[$d]}" 3 200 >/dev/null
	"$BENCH" set "${chip[$d]}" 2 200 >/dev/null
	"$BENCH" mget "${chip[$d]}" 8 200 >/dev/null
	"$BENCH" loop "${chip[$d]}" 0 1 50 >/dev/null
done
: >"$VGPIO_OUT/phases.txt"
k=0
phase() {
	local d=$1 w=$2 n=$3
	shift 3
	sync -f /
	k=$((k + 1))
	echo "$k $d $w $n" >>"$VGPIO_OUT/phases.txt"
	echo "# phase $k: $d $w: $("$BENCH" "$@" "$n")"
}
for rep in 1 2; do
	for d in rust c; do phase $d get $N get "${chip[$d]}" 3; done
done
for d in rust c; do phase $d set $N set "${chip[$d]}" 2; done
for d in rust c; do phase $d mget8 $N mget "${chip[$d]}" 8; done
for d in rust c; do phase $d loop $((N / 3)) loop "${chip[$d]}" 0 1; done
# (the last phase's end)
sync -f /
