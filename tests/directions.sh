#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Direction changes reach the device in the spec's order (value before
# output), and gpiolib reports them; released lines are deactivated.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 5

wait_chip 0
chip=$(chip_of 0)
line=4

ctl 0 reset-counters >/dev/null
gpioset --mode=signal "$chip" $line=1 &
pid=$!
is_out() { line_is 0 $line dir out && line_is 0 $line value 1; }
check "requested as output high: device has dir=out value=1" wait_for is_out
check "lsgpio reports the line as output" lsgpio_line "$chip" $line output
kill $pid; wait $pid 2>/dev/null
check "released: device line deactivated" wait_for line_is 0 $line dir none

gpioget "$chip" $line >/dev/null
check "read as input, then released: deactivated again" wait_for line_is 0 $line dir none

cycles=$(tier 5 20)
cycles_ok() {
	local i
	for ((i = 1; i <= cycles; i++)); do
		gpioset "$chip" 6=$((i % 2)) || return 1
		gpioget "$chip" 7 >/dev/null || return 1
	done
	# the last release's deactivation is not waited for by the releaser
	wait_for eval '[ "$(ctl 0 dirs)" = "ok --------" ]'
}
check "$cycles request/release cycles leave every line deactivated" cycles_ok
vgpio_finished
