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
ktap_set_plan 12

wait_chip 0
vdev=$(vdev_of 0)
line=7

consumer() { insmod "$CONSUMER_KO" label="$vdev" line=$line "$@"; }

# The counts are final once the device holds the line's buffer again and
# has made every edge of its train, and the last interrupt was handled (a
# line's buffer is requeued when its thread is done: ONESHOT); the tests of
# edges wait for the handlers' counts first.
settled() { WAIT_S=60 wait_for line_settled 0 $line; }

level() {
	local trig=$1 active=$2 h t o h2 ev t0 t1
	ctl 0 set $line $((1 - active)) >/dev/null
	consumer trigger="$trig" work_ms=20 || return 1
	ctl 0 reset-counters >/dev/null
	_now_ms; t0=$NOW_MS
	ctl 0 set $line "$active" >/dev/null
	# held until a few interrupts came, however long each takes
	WAIT_S=60 wait_for eval '[ "$(consumer_param thread)" -ge 3 ]'
	ctl 0 set $line $((1 - active)) >/dev/null
	_now_ms; t1=$NOW_MS
	settled
	h=$(consumer_param hard); t=$(consumer_param thread); o=$(consumer_param overlap)
	ev=$(field events "$(ctl 0 counters $line)")
	# The level is gone and nothing is in flight: the device sends nothing
	# more, so a later interrupt would be the driver's own. Half a second to
	# catch one; a longer wait could only catch more.
	nap 0.5
	h2=$(consumer_param hard)
	rmmod vgpio_irq_consumer
	log "level $trig held $((t1 - t0)) ms with a 20 ms thread: hard=$h thread=$t overlap=$o; the device sent $ev events; hard=$h2 after the level went away"
	# at least a few interrupts while held; one per event the device sent
	# and per thread run (no storm); none while the thread ran; none after
	# the level went away
	[ "$t" -ge 3 ] && [ "$h" -le "$ev" ] && [ "$h" = "$t" ] && [ "$o" = 0 ] && [ "$h2" = "$h" ]
}
check "level high held: one interrupt per thread completion" level high 1
check "level low held: one interrupt per thread completion" level low 0

edges() {
	local h t
	ctl 0 set $line 0 >/dev/null
	consumer trigger=rising work_ms=5 || return 1
	# paced: each edge once the driver has taken the one before, so that
	# none is latched into another however slow the machine
	ctl 0 edges $line 10 100000 paced >/dev/null
	WAIT_S=60 wait_for eval '[ "$(consumer_param thread)" -ge 5 ]'
	settled
	h=$(consumer_param hard); t=$(consumer_param thread)
	rmmod vgpio_irq_consumer
	ctl 0 stop $line >/dev/null
	log "10 edges at up to 10/s, rising: hard=$h thread=$t"
	[ "$h" = 5 ] && [ "$t" = 5 ]
}
check "rising edges: 5 of 10 edges, each once" edges

# An edge that comes while the thread runs is not lost: the line is masked
# until the thread is done (ONESHOT), the device keeps that edge meanwhile
# (it latches one while it has no message) and sends it when the message is
# back, and the thread runs once more. A third edge in the same time is
# merged by the device. (Handled as edges instead, with the message back as
# the interrupt is acked, each edge would reach the hard handler, but an
# edge that comes while a thread is still waiting to run is merged by the
# irq core into that run: gpiolib's character device, whose thread makes
# one event per run, then loses it; see driver/irq.rs.)
edges_during_thread() {
	local h t lat
	ctl 0 set $line 0 >/dev/null
	consumer trigger=rising work_ms=1500 || return 1
	WAIT_S=60 wait_for line_is 0 $line queued 1
	ctl 0 reset-counters >/dev/null
	# rising edges at 0.2, 0.6 and 1.0 s: the last two while the first's
	# 1.5 s thread runs
	ctl 0 edges $line 6 200000 >/dev/null
	WAIT_S=60 wait_for eval '[ "$(consumer_param thread)" -ge 2 ]'
	settled
	h=$(consumer_param hard); t=$(consumer_param thread)
	lat=$(field latched "$(ctl 0 counters $line)")
	rmmod vgpio_irq_consumer
	log "3 rising edges 0.4 s apart, a 1.5 s thread: hard=$h thread=$t; the device latched $lat"
	[ "$h" = 2 ] && [ "$t" = 2 ]
}
check "an edge during the thread: kept by the device, handled after it" \
	edges_during_thread

latched() {
	local h lat
	ctl 0 set $line 0 >/dev/null
	ctl 0 reset-counters >/dev/null
	consumer trigger=both work_ms=500 || return 1
	WAIT_S=60 wait_for line_is 0 $line queued 1
	# three edges at once on the device: the first takes the line's buffer
	# (delivered, it starts a 500 ms thread), the next two come before the
	# driver has given it back and are latched by the device: one more
	# interrupt, when the buffer is back
	ctl 0 edges $line 3 0 >/dev/null
	WAIT_S=60 wait_for eval '[ "$(consumer_param hard)" -ge 2 ]'
	settled
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
	local p=/sys/module/vgpio_irq_consumer/parameters/disabled h0 h1 h2 ev0 sent
	ctl 0 set $line 0 >/dev/null
	consumer trigger=rising work_ms=0 || return 1
	WAIT_S=60 wait_for line_is 0 $line queued 1
	echo 1 >$p
	h0=$(consumer_param hard)
	ev0=$(field events "$(ctl 0 counters $line)")
	ctl 0 set $line 1 >/dev/null
	# The device sends the edge at once if it holds the line's buffer (a
	# driver that told it the interrupt is off made it drop the edge).
	sent=$(($(field events "$(ctl 0 counters $line)") - ev0))
	# A second for the driver to take it while disabled, and for a wrong
	# handler call to show; a longer wait could only catch more.
	nap 1
	h1=$(consumer_param hard)
	echo 0 >$p
	# the edge the device sent is handled now: wait for it, then until the
	# line's buffer is back (nothing more in flight)
	[ "$sent" = 1 ] && WAIT_S=60 wait_for eval '[ "$(consumer_param hard)" -gt '"$h1"' ]'
	settled
	h2=$(consumer_param hard)
	rmmod vgpio_irq_consumer
	log "a rising edge while disabled (the device sent it: $sent): $((h1 - h0)) interrupts while disabled, $((h2 - h1)) after enable_irq"
	[ "$h1" = "$h0" ] && [ $((h2 - h1)) = 1 ]
}
check_xfail_c "an edge while disabled is handled after enable_irq" \
	"disable_irq tells the device none, which discards the edge" while_disabled

# fire_once H0 SECONDS: raise the line, wait (up to SECONDS, 10 on the C
# driver) for the consumer's next interrupt after its count H0, lower the
# line, let it settle and unload the consumer. FIRED: interrupts since H0.
fire_once() {
	local h1
	ctl 0 set $line 1 >/dev/null
	WAIT_S=$(known_c "$2" 10) wait_for eval '[ "$(consumer_param hard)" -gt '"$1"' ]'
	h1=$(consumer_param hard)
	ctl 0 set $line 0 >/dev/null
	settled
	rmmod vgpio_irq_consumer
	FIRED=$((h1 - $1))
}

# A line shared between an interrupt and an output (CEC, one-wire,
# bit-banged buses): disable_irq(), drive the line, make it an input again,
# enable_irq(); then the interrupt works as before. gpiolib refuses the
# output while the chip counts the interrupt as enabled.
shared_line() {
	local trig=$1 p=/sys/module/vgpio_irq_consumer/parameters h0 out=0 back=0 dir1 dir2
	ctl 0 set $line 0 >/dev/null
	# (a level interrupt's thread takes 20 ms, so that the level, held
	# until the test sees the interrupt, makes dozens of them, not a storm
	# that slows the test down)
	local work_ms=0
	[ "$trig" = high ] && work_ms=20
	consumer trigger="$trig" work_ms=$work_ms || return 1
	WAIT_S=60 wait_for line_is 0 $line queued 1
	echo 1 >$p/disabled
	h0=$(consumer_param hard)
	if echo 1 >$p/drive; then
		dir1=$(line_state 0 $line dir):$(line_state 0 $line value)
		echo 0 >$p/drive && echo -1 >$p/drive && out=1
	fi
	dir2=$(line_state 0 $line dir)
	echo 0 >$p/disabled
	# the interrupt works again: a rising edge, or a high level
	WAIT_S=60 wait_for line_is 0 $line queued 1 && back=1
	fire_once "$h0" 60
	log "$trig: disable_irq, output 1 then 0 (device: ${dir1:-refused}), input ($dir2), enable_irq (buffer back: $back): $FIRED interrupts on the next activation"
	[ $out = 1 ] && [ "$dir1" = out:1 ] && [ "$dir2" = in ] && [ "$FIRED" -ge 1 ]
}
check "shared line, edge: disable_irq, output, input, enable_irq, and the interrupt works" shared_line rising
check "shared line, level: disable_irq, output, input, enable_irq, and the interrupt works" shared_line high

# An open-drain line that is also an interrupt (a shared wake or alert
# line): gpiolib drives it low with the chip's direction_output and lets it
# go high with its direction_input, without asking whether the line is an
# interrupt. While it is low, the device gets no trigger type for it (an
# output), not even from a disable_irq/enable_irq then; after low, then
# high again, the interrupt works.
open_drain() {
	local p=/sys/module/vgpio_irq_consumer/parameters low high errs lowirq
	ctl 0 set $line 0 >/dev/null
	consumer trigger=rising work_ms=0 open_drain=1 || return 1
	WAIT_S=60 wait_for line_is 0 $line queued 1
	echo 0 >$p/drive && low=$(ctl 0 get $line)
	ctl 0 reset-counters >/dev/null
	echo 1 >$p/disabled && echo 0 >$p/disabled
	errs=$(field errors "$(ctl 0 counters)")
	lowirq=$(line_state 0 $line irq)
	echo 1 >$p/drive && high=$(ctl 0 get $line)
	WAIT_S=10 wait_for line_is 0 $line queued 1
	fire_once "$(consumer_param hard)" 30
	log "open drain, rising: driven low: ${low:-refused}; disable_irq/enable_irq while low: $errs device errors, irq $lowirq; released high: ${high:-refused}; $FIRED interrupts on the next rising edge"
	[[ $low == *" dir=out value=0 "*" irq=none "* ]] && [ "$errs" = 0 ] && [ "$lowirq" = none ] &&
		[[ $high == *" dir=in "*" irq=rising "* ]] && [ "$FIRED" -ge 1 ]
}
check_xfail_c "open-drain line driven low, then high: no type while low, the interrupt works after" \
	"it leaves the trigger type on a line that is an output (driven low) and sends it again on enable_irq, which the device refuses: the line stays deaf" \
	open_drain

check "released: interrupt off and no eventq buffer on the device" \
	eval 'line_is 0 $line irq none && line_is 0 $line queued 0'

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

# The device carried out a SET_IRQ_TYPE but answered it malformed: the
# driver no longer knows the line's type, so the next change must still go
# through none (a strict device refuses a change without it, and the line
# would stay deaf), and free_irq must still send none.
retype_after_bad_answer() {
	local bad
	ctl 0 reset-counters >/dev/null
	ctl 0 fault long type=set_irq_type line=$line count=1 >/dev/null
	consumer trigger=rising retype=falling || { ctl 0 fault clear >/dev/null; return 1; }
	rmmod vgpio_irq_consumer
	ctl 0 fault clear >/dev/null
	bad=$(field type_without_none "$(ctl 0 counters)")
	log "rising answered malformed, then rising -> falling, then free_irq: $bad changes without none; line: $(ctl 0 get $line)"
	[ "$bad" = 0 ] && line_is 0 $line irq none
}
check_xfail_c "after a malformed answer to SET_IRQ_TYPE, the next change still goes through none" \
	"it sends the new type directly" retype_after_bad_answer
vgpio_finished
