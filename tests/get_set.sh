#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Values round-trip: gpioset reaches the device (checked through the control
# channel), levels the device puts on inputs come back through gpioget.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 4

wait_chip 0
chip=$(chip_of 0)

# gpioset holds the line until signalled; meanwhile the device shows it.
gpioset --mode=signal "$chip" 2=1 &
pid=$!
out_ok() { local g; g=$(ctl 0 get 2); [ "$(field dir "$g")" = out ] && [ "$(field value "$g")" = 1 ]; }
check "gpioset drives line 2 high on the device" wait_for out_ok
kill "$pid"; wait "$pid" 2>/dev/null
check "released line 2 is deactivated on the device" wait_for line_is 0 2 dir none

ok=1
for v in 1 0 1; do
	ctl 0 set 3 $v >/dev/null
	got=$(gpioget "$chip" 3)
	[ "$got" = "$v" ] || { log "level $v read back as $got"; ok=0; }
done
check "gpioget reads the levels the device sets" test $ok = 1
check "the device saw get_value requests" eval "[ \"\$(field get_value \"\$(ctl 0 counters)\")\" -ge 3 ]"
vgpio_finished
