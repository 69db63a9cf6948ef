#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
# runs: last 2
#
# More interrupt lines than the eventq has room for (QEMU gives it 64
# entries): every line still gets its buffer queued as slots free, and an
# edge on every line at once is reported for every line.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 2

wait_chip 1
chip=$(chip_of 1)
n=$(field ngpio "$(ctl 1 info)")
zeros= ones= lo=() hi=()
for ((i = 0; i < n; i++)); do zeros+=0 ones+=1; done
ctl 1 levels "$zeros" >/dev/null
ctl 1 reset-counters >/dev/null
mark=$(dmesg_mark)

# libgpiod 1.6 monitors at most 64 lines per process: two monitors
half=$((n / 2))
for ((i = 0; i < n; i++)); do
	if [ $i -lt $half ]; then lo+=("$i"); else hi+=("$i"); fi
done
gpiomon --rising-edge --num-events=$half "$chip" "${lo[@]}" >/tmp/many0.out 2>&1 &
pid0=$!
gpiomon --rising-edge --num-events=$((n - half)) "$chip" "${hi[@]}" >/tmp/many1.out 2>&1 &
pid1=$!
# every line enabled on the device (each needs a SET_IRQ_TYPE)
enabled() { [ "$(field set_irq_type "$(ctl 1 counters)")" -ge "$n" ]; }
WAIT_S=120 wait_progress "$(known_c 30 10)" "ctl 1 counters" enabled || log "only $(field set_irq_type "$(ctl 1 counters)") lines enabled"
nap 1
ctl 1 levels "$ones" >/dev/null
# The monitors end once every line's event came, which takes as long as the
# machine takes: wait for as long as the device sees the driver at work (it
# delivers events, gets buffers back; a line whose buffer waits for a free
# slot gets its latched edge when it comes).
monitors_done() { ! running $pid0 && ! running $pid1; }
WAIT_S=240 wait_progress "$(known_c 30 10)" "ctl 1 counters" monitors_done
# (what a monitor that is still waiting is doing, for the failure report)
for p in $pid0 $pid1; do
	running $p || continue
	log "monitor $p still running: wchan $(cat /proc/$p/wchan 2>/dev/null), $(ls /proc/$p/fd 2>/dev/null | wc -l) fds, state $(sed -n 's/^State:\t//p' /proc/$p/status)"
	sed 's/^/# stack: /' /proc/$p/stack 2>/dev/null | head -n 12
done
# (which lines the device still holds an edge for, for the failure report;
# not for the C driver, whose lines beyond the eventq are known to go deaf)
if [ "$DRIVER" != c ] && { running $pid0 || running $pid1; }; then
	held=""
	for ((l = 0; l < n; l++)); do
		_ctl 1 get "$l"
		case "$_CTL_REPLY" in *latched=1*) held="$held $l($(field queued "$_CTL_REPLY"))" ;; esac
	done
	log "lines with an edge the driver has not been given (queued):${held:- none}"
fi
_vdev 1
irqs=$(awk -v d="$_VDEV" '$4 == d { s += $2 + $3; n++ } END { print n " irqs, " s + 0 " interrupts" }' /proc/interrupts)
# SIGTERM first: gpiomon then exits normally and writes out what it
# buffered (a SIGKILLed one loses its events still in stdio's buffer).
kill $pid0 $pid1 2>/dev/null
# (a monitor stuck in the kernel ignores it: the C driver's, see below)
WAIT_S=$(known_c 10 3) wait_for monitors_done
kill -9 $pid0 $pid1 2>/dev/null
# A monitor stuck in the kernel (uninterruptible) cannot be waited for. A
# killed one releases its lines (requests the device counts).
stuck=0
WAIT_S=120 wait_progress "$(known_c 30 5)" "ctl 1 counters" monitors_done || stuck=1
head -n 3 /tmp/many0.out | sed 's/^/# gpiomon: /'
got=$(cat /tmp/many0.out /tmp/many1.out | grep -oE 'offset: *[0-9]+' | sort -u | wc -l)
[ $stuck = 1 ] && log "a gpiomon is stuck in the kernel: $(grep -l 'State:.*D' /proc/$pid0/status /proc/$pid1/status 2>/dev/null)"
log "$n lines with an edge at once: events on $got distinct lines"
if [ "$got" != "$n" ]; then
	log "monitor 0: $(grep -c offset /tmp/many0.out) events, monitor 1: $(grep -c offset /tmp/many1.out) events"
	grep -v offset /tmp/many0.out /tmp/many1.out | head -n 4 | sed 's/^/# /'
	log "device: $(ctl 1 counters)"
	log "guest: $irqs on the device's lines"
	for l in 0 $((half - 1)) $half $((n - 1)); do log "line $l: $(ctl 1 get $l)"; done
fi
dmesg_since "$mark" | grep -iE 'eventq' | head -n 3 | sed 's/^/# /'
if [ "$got" = "$n" ] && [ $stuck = 0 ]; then
	ktap_test_pass "an edge on all $n lines at once: every line reports"
elif [ "$DRIVER" = c ] && [ "$C_SHARED_IRQCHIP" = 1 ] && [ $stuck = 1 ]; then
	ktap_test_xfail "an edge on all $n lines at once: every line reports" \
		"C driver: one static irq_chip for all devices, the second device's first interrupt oopses (NULL irq_enable) and the monitor is left stuck"
	# The stuck monitor holds its lines, so they cannot be released.
	ktap_test_xfail "afterwards no line holds an interrupt on the device" \
		"C driver: the stuck monitor still holds its lines"
	vgpio_finished
elif [ "$DRIVER" = c ]; then
	ktap_test_xfail "an edge on all $n lines at once: every line reports" \
		"C driver: lines whose eventq buffer does not fit go deaf"
else
	ktap_test_fail "an edge on all $n lines at once: every line reports"
fi
released() { [ "$(field set_irq_type "$(ctl 1 counters)")" -ge $((2 * n)) ]; }
if WAIT_S=$(known_c 60 10) wait_for released; then
	ktap_test_pass "afterwards no line holds an interrupt on the device"
elif [ "$DRIVER" = c ]; then
	ktap_test_xfail "afterwards no line holds an interrupt on the device" \
		"C driver: not every line's interrupt was enabled and released"
else
	ktap_test_fail "afterwards no line holds an interrupt on the device"
fi
ctl 1 levels "$zeros" >/dev/null
vgpio_finished
