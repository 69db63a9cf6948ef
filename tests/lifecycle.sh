#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Unbind/bind and rmmod/insmod while lines are held: holders get errors,
# not crashes; the module cannot go while a line is requested; the chip
# comes back working. Two devices stay independent.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 7

wait_chip 0
wait_chip 1
cycles=$(tier 3 20)

ok=1
for ((i = 1; i <= cycles; i++)); do
	gpioset --mode=signal "$(chip_of 0)" 2=1 &
	pid=$!
	wait_for line_is 0 2 dir out || ok=0
	rebind 0 || ok=0
	wait_chip 0 || ok=0
	kill $pid; wait $pid 2>/dev/null
done
check "$cycles unbind/bind cycles with a line held" test $ok = 1
check "after them the chip works" eval "ctl 0 set 3 1 >/dev/null && [ \"\$(gpioget $(chip_of 0) 3)\" = 1 ]"

gpioset --mode=signal "$(chip_of 0)" 2=1 &
pid=$!
wait_for line_is 0 2 dir out
check "rmmod refused while a line is held" eval "! rmmod $MODULE 2>/dev/null"
kill $pid; wait $pid 2>/dev/null
ok=1
for ((i = 1; i <= cycles; i++)); do
	rmmod "$MODULE" || ok=0
	insmod "$MODULE_KO" || ok=0
	wait_chip 0 && wait_chip 1 || ok=0
done
check "$cycles rmmod/insmod cycles once released" test $ok = 1

check "two devices: two chips" eval "[ -n \"$(chip_of 0)\" ] && [ -n \"$(chip_of 1)\" ] && [ \"$(chip_of 0)\" != \"$(chip_of 1)\" ]"
ctl 0 set 6 0 >/dev/null
ctl 1 set 6 1 >/dev/null
check "two devices: same line, own values" \
	eval "[ \"\$(gpioget $(chip_of 0) 6)\" = 0 ] && [ \"\$(gpioget $(chip_of 1) 6)\" = 1 ]"
gpioset "$(chip_of 1)" 5=1
check "two devices: device 0 unaffected by device 1's traffic" \
	wait_for eval "[ \"\$(ctl 0 dirs)\" = 'ok --------' ]"
vgpio_finished
