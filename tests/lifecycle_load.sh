#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
# timeout: 3600
#
# The module comes and goes while the chip is busy: 6 (make check) or 100
# (make soak) unbind/bind cycles of device 0 while a user writes and reads
# back a line the whole time (getting errors while the device is gone, never
# a crash), every third (soak: fifth) cycle with a burst of interrupts (an edge watcher
# sees the device's four edges) before the next unbind; then as many
# rmmod/insmod cycles, each followed by a line written and read back, every
# third (fifth) by an edge burst too. Afterwards the chips work, and memory in use
# (slab) is back at its starting level. (kmemleak runs after the whole
# suite.)
# The interrupt bursts alternate with the unbinds rather than overlap them:
# an edge watcher that requests its interrupt while the chip is being
# removed hits a race in 6.12's gpiolib, whichever the driver
# (gpiochip_remove's gpiochip_free_remaining_irqs frees the irqaction that
# request_threaded_irq is still registering: KASAN use-after-free in
# __setup_irq, then "Trying to free already-free IRQ").
# Each rmmod/insmod cycle binds device 0 only.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 8

cycles=${VGPIO_LIFECYCLE_CYCLES:-$(tier 6 100)}
# an edge burst every $every cycles
every=$(tier 3 5)
vdev=$(vdev_of 0)
drv=/sys/bus/virtio/drivers/$DRV_NAME
wait_chip 0
wait_chip 1
tmp=$(mktemp -d)

# edge_burst CHIP: a watcher on line 7 sees the four edges the device makes
# (paced: each once the driver took the one before and read the line since,
# so that none is latched or merged into another however slow the machine;
# the watcher gives up after 30 s).
edge_burst() {
	local p
	# (emptied here, not by the watcher's redirection: the wait below must
	# not find the last burst's "armed")
	: >"$tmp/c1"
	"$BENCH" count "$1" 7 30 4 >>"$tmp/c1" 2>&1 &
	p=$!
	wait_for file_has armed "$tmp/c1"
	ctl 0 edges 7 4 10000 paced-read >/dev/null
	wait $p
	ctl 0 stop 7 >/dev/null
	grep -q 'events=4$' "$tmp/c1" ||
		{ log "edge burst: watcher: $(tail -n1 "$tmp/c1"); device: $(ctl 0 counters 7)"; return 1; }
}

# A user of device 0 until $tmp/stop exists: a writer that reads back line 4.
users() {
	local c
	while [ ! -e "$tmp/stop" ]; do
		_chip 0 || { nap 0.05; continue; }
		c=$_CHIP
		"$BENCH" hammer "$c" 4 0.3 >>"$tmp/hammer" 2>&1
	done
}

before=$(slab_kb)
: >"$tmp/hammer"
users &
upid=$!
ok=1
bursts=0
for ((i = 1; i <= cycles; i++)); do
	echo "$vdev" >"$drv/unbind" || { ok=0; break; }
	echo "$vdev" >"$drv/bind" || { ok=0; break; }
	wait_chip 0 || { ok=0; break; }
	[ $((i % every)) = 0 ] && _chip 0 && edge_burst "$_CHIP" && bursts=$((bursts + 1))
done
touch "$tmp/stop"
wait $upid
log "unbind/bind: $((i - 1)) cycles; the writer ran $(grep -c 'workload=hammer' "$tmp/hammer") whole sessions, $(grep -c 'mismatches=[1-9]' "$tmp/hammer") with a wrong value read back; $bursts of $((cycles / every)) edge bursts whole"
check "$cycles unbind/bind cycles with a user active" test $ok = 1
check "no value read back wrong while the chip came and went" \
	eval "! grep -q 'mismatches=[1-9]' $tmp/hammer"
check "every burst of 4 edges between unbinds was delivered whole" test "$bursts" = $((cycles / every))

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
t_rm=0 t_ins=0 t_bind=0 t_use=0
for ((i = 1; i <= cycles; i++)); do
	_now_ms; a=$NOW_MS
	rmmod "$MODULE" || { ok=0; break; }
	_now_ms; b=$NOW_MS
	insmod "$ko" || { ok=0; break; }
	_now_ms; c=$NOW_MS
	echo "$vdev" >"$drv/bind" || { ok=0; break; }
	wait_chip 0 || { ok=0; break; }
	_now_ms; d=$NOW_MS
	t_rm=$((t_rm + b - a)) t_ins=$((t_ins + c - b)) t_bind=$((t_bind + d - c))
	# A burst of use: a line written and read back, four edges watched.
	_chip 0
	c=$_CHIP
	"$BENCH" hammer "$c" 4 0.1 >/dev/null 2>&1 && uses=$((uses + 1))
	[ $((i % every)) = 0 ] && edge_burst "$c" && bursts=$((bursts + 1))
	_now_ms; t_use=$((t_use + NOW_MS - d))
done
log "time in rmmod $t_rm ms, insmod $t_ins ms, bind $t_bind ms, use $t_use ms"
echo 1 >/sys/bus/virtio/drivers_autoprobe
for ((d = 1; d < VGPIO_DEVICES; d++)); do
	_vdev "$d" && echo "$_VDEV" >"$drv/bind" && wait_chip "$d"
done
log "rmmod/insmod: $((i - 1)) cycles; $uses of $cycles write bursts and $bursts of $((cycles / every)) edge bursts right"
check "$cycles rmmod/insmod cycles, each with a burst of use" test $ok = 1
check "every write burst read back right" test "$uses" = "$cycles"
check "every burst of 4 edges after an insmod was delivered whole" test "$bursts" = $((cycles / every))
ctl 0 set 3 1 >/dev/null
check "afterwards the chips work" \
	eval "[ \"\$(gpioget $(chip_of 0) 3)\" = 1 ] && gpioget $(chip_of 1) 50 >/dev/null"
after=$(slab_kb)
log "slab: $before kB before, $after kB after $((2 * cycles)) cycles"
check "slab back at its starting level (within 512 kB)" test $((after - before)) -lt 512
rm -rf "$tmp"
vgpio_finished
