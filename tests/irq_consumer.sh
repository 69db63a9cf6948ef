#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# A kernel driver's threaded ONESHOT interrupt (tests/modules/
# vgpio_irq_consumer): a held level gives one interrupt per thread
# completion (no storm, no loss, never while the thread runs); edges are
# counted exactly; edges while masked are latched and delivered once; an
# edge while the interrupt is disabled (disable_irq) is handled once it is
# enabled again; changing the trigger type goes through none on the device.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 7

wait_chip 0
vdev=$(vdev_of 0)
line=7

consumer() { insmod "$CONSUMER_KO" label="$vdev" line=$line "$@"; }

level() {
	local trig=$1 active=$2 h t o h2 t0 t1 held_ms max
	ctl 0 set $line $((1 - active)) >/dev/null
	consumer trigger="$trig" work_ms=20 || return 1
	t0=$(date +%s%N)
	ctl 0 set $line "$active" >/dev/null
	sleep 2
	ctl 0 set $line $((1 - active)) >/dev/null
	t1=$(date +%s%N)
	sleep 0.5
	h=$(consumer_param hard); t=$(consumer_param thread); o=$(consumer_param overlap)
	sleep 0.5
	h2=$(consumer_param hard)
	rmmod vgpio_irq_consumer
	held_ms=$(((t1 - t0) / 1000000))
	max=$((held_ms / 20 + 2))
	log "level $trig held ${held_ms} ms with a 20 ms thread: hard=$h thread=$t overlap=$o (at most $max)"
	# at least a few interrupts while held; at most one per thread run;
	# primary and thread counts equal; none while the thread ran; none
	# after the level went away
	[ "$t" -ge 3 ] && [ "$h" -le "$max" ] && [ "$h" = "$t" ] && [ "$o" = 0 ] && [ "$h2" = "$h" ]
}
check "level high held: one interrupt per thread completion" level high 1
check "level low held: one interrupt per thread completion" level low 0

edges() {
	local h t
	ctl 0 set $line 0 >/dev/null
	consumer trigger=rising work_ms=5 || return 1
	ctl 0 edges $line 10 100000 >/dev/null
	sleep 2
	h=$(consumer_param hard); t=$(consumer_param thread)
	rmmod vgpio_irq_consumer
	log "10 edges at 10/s, rising: hard=$h thread=$t"
	[ "$h" = 5 ] && [ "$t" = 5 ]
}
check "rising edges: 5 of 10 edges, each once" edges

latched() {
	local h lat
	ctl 0 set $line 0 >/dev/null
	ctl 0 reset-counters >/dev/null
	consumer trigger=both work_ms=500 || return 1
	# the first edge starts a 500 ms thread; the next two come while the
	# line is masked and are latched by the device: one more interrupt
	ctl 0 edges $line 3 100000 >/dev/null
	sleep 2
	h=$(consumer_param hard)
	lat=$(field latched "$(ctl 0 counters $line)")
	rmmod vgpio_irq_consumer
	log "3 edges, 2 while masked: hard=$h device latched=$lat"
	[ "$h" = 2 ] && [ "$lat" -ge 2 ]
}
check "edges while masked: latched, delivered once" latched

# The irq core replays an edge that came while the interrupt was disabled
# when it is enabled again, if the chip saw it (a lazy disable).
while_disabled() {
	local p=/sys/module/vgpio_irq_consumer/parameters/disabled h0 h1 h2
	ctl 0 set $line 0 >/dev/null
	consumer trigger=rising work_ms=0 || return 1
	echo 1 >$p
	h0=$(consumer_param hard)
	ctl 0 edges $line 2 100000 >/dev/null
	sleep 1
	h1=$(consumer_param hard)
	echo 0 >$p
	sleep 1
	h2=$(consumer_param hard)
	rmmod vgpio_irq_consumer
	log "a rising edge while disabled: $((h1 - h0)) interrupts while disabled, $((h2 - h1)) after enable_irq"
	[ "$h1" = "$h0" ] && [ $((h2 - h1)) = 1 ]
}
check_xfail_c "an edge while disabled is handled after enable_irq" \
	"disable_irq tells the device none, which discards the edge" while_disabled

check "released: interrupt off and no eventq buffer on the device" \
	eval '[ "$(line_state 0 $line irq)" = none ] && [ "$(line_state 0 $line queued)" = 0 ]'

retype() {
	local bad
	ctl 0 reset-counters >/dev/null
	consumer trigger=rising retype=falling || return 1
	rmmod vgpio_irq_consumer
	bad=$(field type_without_none "$(ctl 0 counters)")
	log "trigger changed rising -> falling while enabled: device saw $bad changes without none"
	[ "$bad" = 0 ]
}
check_xfail_c "trigger type change goes through none" "it sends the new type directly" retype
vgpio_finished
