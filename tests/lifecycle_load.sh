#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
# timeout: 1200
#
# The module comes and goes while the chip is busy: 100 unbind/bind cycles
# of device 0 while users toggle lines and watch a line that the device
# fires edges on the whole time (users get errors while the device is gone,
# never a crash); then 100 rmmod/insmod cycles, each followed by a burst of
# such use. Afterwards the chips work, and memory in use (slab) is back at
# its starting level. (kmemleak runs after the whole suite.)
# Each rmmod/insmod cycle binds device 0 only.
# The C driver runs without the interrupt users: its one static irq_chip,
# shared by all its chips, oopses (a NULL irq_enable) on the first interrupt
# request after a rebind; irq_many_lines shows that failure.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 8

BENCH=$VGPIO_TOP/bench/vgpio-bench
cycles=${VGPIO_LIFECYCLE_CYCLES:-100}
vdev=$(vdev_of 0)
drv=/sys/bus/virtio/drivers/$DRV_NAME
irq=1
[ "$DRIVER" = c ] && irq=0
wait_chip 0
wait_chip 1

# Users of device 0 until $tmp/stop exists: a writer that reads back (line 4),
# and an edge watcher on line 7, which the device toggles every 5 ms.
tmp=$(mktemp -d)
users() {
	local c
	while [ ! -e "$tmp/stop" ]; do
		c=$(chip_of 0) || { sleep 0.05; continue; }
		"$BENCH" hammer "$c" 4 0.3 >>"$tmp/hammer" 2>&1
		[ $irq = 1 ] && "$BENCH" count "$c" 7 0.3 >>"$tmp/count" 2>&1
	done
}

before=$(slab_kb)
ctl 0 edges 7 100000000 5000 >/dev/null
: >"$tmp/count"
users &
upid=$!
ok=1
for i in $(seq "$cycles"); do
	echo "$vdev" >"$drv/unbind" || { ok=0; break; }
	echo "$vdev" >"$drv/bind" || { ok=0; break; }
	wait_chip 0 || { ok=0; break; }
done
touch "$tmp/stop"
wait $upid
log "unbind/bind: $i cycles; users ran $(grep -c 'workload=hammer' "$tmp/hammer") writer and $(grep -c workload=count "$tmp/count") watcher sessions, $(grep -c mismatches=[1-9] "$tmp/hammer") with a wrong value read back"
check "$cycles unbind/bind cycles with users and interrupts active" test $ok = 1
check "no value read back wrong while the chip came and went" \
	eval "! grep -q 'mismatches=[1-9]' $tmp/hammer"
if [ $irq = 1 ]; then
	check "edges were delivered while the chip came and went" \
		grep -q 'events=[1-9]' "$tmp/count"
else
	ktap_test_skip "edges were delivered while the chip came and went (C driver: oopses, see above)"
fi
ctl 0 stop 7 >/dev/null

# Only device 0 follows the module in and out: with autoprobe off, insmod
# binds nothing by itself (the other devices would make a cycle slower,
# not harder).
ok=1
uses=0
bursts=0
# insmod from the guest's own memory, not from the host over 9p each time
ko=$tmp/$(basename "$MODULE_KO")
cp "$MODULE_KO" "$ko"
trap 'echo 1 >/sys/bus/virtio/drivers_autoprobe' EXIT
echo 0 >/sys/bus/virtio/drivers_autoprobe
ms() { echo $(($(date +%s%N) / 1000000)); }
t_rm=0 t_ins=0 t_bind=0 t_use=0
for i in $(seq "$cycles"); do
	a=$(ms)
	rmmod "$MODULE" || { ok=0; break; }
	b=$(ms)
	insmod "$ko" || { ok=0; break; }
	c=$(ms)
	echo "$vdev" >"$drv/bind" || { ok=0; break; }
	wait_chip 0 || { ok=0; break; }
	d=$(ms)
	t_rm=$((t_rm + b - a)) t_ins=$((t_ins + c - b)) t_bind=$((t_bind + d - c))
	# A burst of use: a line written and read back, eight edges watched.
	c=$(chip_of 0)
	"$BENCH" hammer "$c" 4 0.1 >/dev/null 2>&1 && uses=$((uses + 1))
	[ $irq = 1 ] || { t_use=$((t_use + $(ms) - d)); continue; }
	"$BENCH" count "$c" 7 5 8 >"$tmp/c1" 2>&1 &
	cpid=$!
	wait_for eval "grep -q armed $tmp/c1"
	ctl 0 edges 7 8 20000 >/dev/null
	wait $cpid
	grep -q 'events=8$' "$tmp/c1" && bursts=$((bursts + 1))
	t_use=$((t_use + $(ms) - d))
done
log "time in rmmod $t_rm ms, insmod $t_ins ms, bind $t_bind ms, use $t_use ms"
echo 1 >/sys/bus/virtio/drivers_autoprobe
for d in $(seq 1 $((VGPIO_DEVICES - 1))); do
	echo "$(vdev_of "$d")" >"$drv/bind" && wait_chip "$d"
done
log "rmmod/insmod: $i cycles; $uses of $cycles write bursts and $bursts edge bursts right"
check "$cycles rmmod/insmod cycles, each with a burst of use" test $ok = 1
check "every write burst read back right" test "$uses" = "$cycles"
if [ $irq = 1 ]; then
	check "every burst of 8 edges was delivered whole" test "$bursts" = "$cycles"
else
	ktap_test_skip "every burst of 8 edges was delivered whole (C driver: oopses, see above)"
fi
ctl 0 set 3 1 >/dev/null
check "afterwards the chips work" \
	eval "[ \"\$(gpioget $(chip_of 0) 3)\" = 1 ] && gpioget $(chip_of 1) 50 >/dev/null"
after=$(slab_kb)
log "slab: $before kB before, $after kB after $((2 * cycles)) cycles"
check "slab back at its starting level (within 512 kB)" test $((after - before)) -lt 512
rm -rf "$tmp"
vgpio_finished
