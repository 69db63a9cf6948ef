#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
# timeout: 1800
#
# 5,000 (make check) or 100,000 (make soak) disable/enable cycles of a line's interrupt, with the device
# firing edges the whole time (each one a mask/unmask through the ONESHOT
# thread); then the line still delivers events and the device holds exactly
# one eventq buffer for it.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 5

wait_chip 0
vdev=$(vdev_of 0)
line=7
cycles=${VGPIO_STRESS_CYCLES:-$(tier 5000 100000)}

ctl 0 set $line 0 >/dev/null
ctl 0 reset-counters >/dev/null
mark=$(dmesg_mark)
ctl 0 edges $line 1000000 "${VGPIO_STRESS_PERIOD_US:-10000}" >/dev/null   # an edge every 10 ms until stopped
start=$EPOCHSECONDS
check "$cycles disable/enable cycles with edges arriving" \
	insmod "$CONSUMER_KO" label="$vdev" line=$line trigger=both work_ms=0 stress_cycles="$cycles"
log "took $((EPOCHSECONDS - start)) s; $(ctl 0 counters $line)"
ctl 0 stop $line >/dev/null
# Settled: the device holds the line's buffer again, so the last edges'
# interrupts are handled (the driver requeues it when they are done, and the
# device delivers a latched edge as soon as it has it); their warnings, if
# any, are in the log.
settled=0
WAIT_S=60 wait_for line_settled 0 $line && settled=1
warns=$(dmesg_since "$mark" | grep -c 'WARNING:')
if [ "$warns" = 0 ]; then
	ktap_test_pass "no kernel warning during the stress"
elif [ "$DRIVER" = c ] && dmesg_since "$mark" | grep 'WARNING:' | grep -q 'gpio-virtio.c'; then
	dmesg_since "$mark" | grep -m1 'WARNING:' | sed 's/^/# /'
	ktap_test_xfail "no kernel warning during the stress" \
		"C driver: $warns WARN_ONs in virtio_gpio_irq_prepare (a buffer queued for a masked or disabled line)"
else
	dmesg_since "$mark" | grep -m3 'WARNING:' | sed 's/^/# /'
	ktap_test_fail "no kernel warning during the stress"
fi
# Settled, the line is unmasked again, so its one message is with the device.
dq=$(field double_queue "$(ctl 0 counters)")
log "settled: $settled ($(ctl 0 get $line)); double-queued buffers: $dq"
check "the device holds one eventq buffer for the line, none twice" \
	eval '[ $settled = 1 ] && [ "$dq" = 0 ]'
before=$(consumer_param hard)
# paced: each edge once the driver has taken the one before, so that none is
# latched into another however slow the machine; counted once the four are
# handled (or a minute passed) and the line settled (its buffer is back
# once the consumer's thread is done)
ctl 0 edges $line 4 100000 paced >/dev/null
WAIT_S=60 wait_for eval '[ "$(consumer_param hard)" -ge $((before + 4)) ]'
WAIT_S=60 wait_for line_settled 0 $line
after=$(consumer_param hard)
ctl 0 stop $line >/dev/null
log "4 edges after the stress: $((after - before)) interrupts"
check "the line still delivers every event afterwards" test $((after - before)) = 4
rmmod vgpio_irq_consumer
check "after release the device holds no buffer for it" \
	wait_for line_is 0 $line queued 0
vgpio_finished
