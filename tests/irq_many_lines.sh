#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
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
zeros=$(printf '0%.0s' $(seq "$n"))
ones=$(printf '1%.0s' $(seq "$n"))
ctl 1 levels "$zeros" >/dev/null
ctl 1 reset-counters >/dev/null
mark=$(dmesg_mark)

# shellcheck disable=SC2046
gpiomon --rising-edge --num-events="$n" "$chip" $(seq 0 $((n - 1))) >/tmp/many.out 2>&1 &
pid=$!
# every line enabled on the device (each needs a SET_IRQ_TYPE)
enabled() { [ "$(field set_irq_type "$(ctl 1 counters)")" -ge "$n" ]; }
wait_for enabled
sleep 1
ctl 1 levels "$ones" >/dev/null
for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill $pid 2>/dev/null
wait $pid 2>/dev/null
got=$(grep -oE 'offset: *[0-9]+' /tmp/many.out | sort -u | wc -l)
log "$n lines with an edge at once: events on $got distinct lines"
dmesg_since "$mark" | grep -iE 'eventq' | head -n 3 | sed 's/^/# /'
if [ "$got" = "$n" ]; then
	ktap_test_pass "an edge on all $n lines at once: every line reports"
elif [ "$DRIVER" = c ]; then
	ktap_test_xfail "an edge on all $n lines at once: every line reports" \
		"C driver: lines whose eventq buffer does not fit go deaf"
else
	ktap_test_fail "an edge on all $n lines at once: every line reports"
fi
check "afterwards no line holds an interrupt on the device" \
	wait_for eval '[ "$(field set_irq_type "$(ctl 1 counters)")" -ge $((2 * n)) ]'
ctl 1 levels "$zeros" >/dev/null
vgpio_finished
