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
ktap_set_plan 5

wait_chip 0
vdev=$(vdev_of 0)
line=7
cycles=${VGPIO_STRESS_CYCLES:-100000}

ctl 0 set $line 0 >/dev/null
ctl 0 reset-counters >/dev/null
mark=$(dmesg_mark)
ctl 0 edges $line 1000000 "${VGPIO_STRESS_PERIOD_US:-10000}" >/dev/null   # an edge every 10 ms until stopped
start=$(date +%s)
check "$cycles disable/enable cycles with edges arriving" \
	insmod "$CONSUMER_KO" label="$vdev" line=$line trigger=both work_ms=0 stress_cycles="$cycles"
log "took $(($(date +%s) - start)) s; $(ctl 0 counters $line)"
ctl 0 stop $line >/dev/null
sleep 1
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
# Settled: the line is unmasked again, so its one message is with the device.
check "the device holds one eventq buffer for the line, none twice" \
	eval '[ "$(line_state 0 $line queued)" = 1 ] && [ "$(field double_queue "$(ctl 0 counters)")" = 0 ]'
before=$(consumer_param hard)
ctl 0 edges $line 4 100000 >/dev/null
sleep 1.5
after=$(consumer_param hard)
log "4 edges after the stress: $((after - before)) interrupts"
check "the line still delivers every event afterwards" test $((after - before)) = 4
rmmod vgpio_irq_consumer
check "after release the device holds no buffer for it" \
	wait_for eval '[ "$(line_state 0 $line queued)" = 0 ]'
vgpio_finished
