#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# 100,000 disable/enable cycles of a line's interrupt, with the device
# firing edges the whole time (each one a mask/unmask through the ONESHOT
# thread); then the line still delivers events and the device holds exactly
# one eventq buffer for it.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 4

wait_chip 0
vdev=$(vdev_of 0)
line=7
cycles=${VGPIO_STRESS_CYCLES:-100000}

ctl 0 set $line 0 >/dev/null
ctl 0 reset-counters >/dev/null
ctl 0 edges $line 1000000 2000 >/dev/null   # an edge every 2 ms until stopped
start=$(date +%s)
check "$cycles disable/enable cycles with edges arriving" \
	insmod "$CONSUMER_KO" label="$vdev" line=$line trigger=both work_ms=0 stress_cycles="$cycles"
log "took $(($(date +%s) - start)) s; $(ctl 0 counters $line)"
before=$(consumer_param hard)
sleep 1
after=$(consumer_param hard)
log "interrupts in the last second: $((after - before))"
check "the line still delivers events afterwards" test "$after" -gt "$before"
check "the device holds one eventq buffer for the line, none twice" \
	eval '[ "$(field queued "$(ctl 0 get $line)")" = 1 ] && [ "$(field double_queue "$(ctl 0 counters)")" = 0 ]'
ctl 0 stop $line >/dev/null
rmmod vgpio_irq_consumer
check "after release the device holds no buffer for it" \
	wait_for eval '[ "$(field queued "$(ctl 0 get $line)")" = 0 ]'
vgpio_finished
