#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# A device that answers ERR gives the caller an error and one log line; the
# other lines keep working, and the line works again once the device does.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 5

wait_chip 0
chip=$(chip_of 0)
ctl 0 fault clear >/dev/null
ctl 0 fault err type=get_value line=3 >/dev/null
mark=$(dmesg_mark)
check "gpioget of a line the device fails: error" eval "! gpioget $chip 3"
check "a kernel log line names the failure" eval "dmesg_since $mark | grep -qiE 'virtio.*(fail|error|status)'"
check "other lines still work" eval "gpioget $chip 2 >/dev/null"
ctl 0 fault clear >/dev/null
check "the line works again once the device does" eval "gpioget $chip 3 >/dev/null"

# A value write the device fails, on a line already held as an output: the
# writer gets the error (gpiolib's set_rv), it is not lost in the driver.
# The writer has more writes to do than it can finish before the fault is in
# place on any machine: it stops at the error, or is seen to write on after
# it (the device counts its writes) and is stopped.
ctl 0 reset-counters >/dev/null
"$BENCH" set "$chip" 3 1000000 >/tmp/errors.set 2>&1 &
pid=$!
wait_for eval '[ "$(field requests "$(ctl 0 counters 3)")" -ge 20 ]'
ctl 0 fault err type=set_value line=3 count=1 >/dev/null
failed=0
WAIT_S=60 wait_for eval '[ "$(field errors "$(ctl 0 counters)")" -ge 1 ]' && failed=1
sv=$(field set_value "$(ctl 0 counters)")
WAIT_S=60 wait_for eval "! running $pid || [ \"\$(field set_value \"\$(ctl 0 counters)\")\" -ge $((sv + 10)) ]"
went_on=0
if running $pid; then
	went_on=1
	kill $pid
fi
wait $pid
rc=$?
log "device failed a write: $failed; writer exit $rc, wrote on after the failed write: $went_on ($(field set_value "$(ctl 0 counters)") writes, $sv when it failed): $(tail -n1 /tmp/errors.set)"
if [ $rc = 1 ] && grep -q 'values ioctl' /tmp/errors.set; then
	ktap_test_pass "a failed write of an output line: the writer gets an error"
elif [ "$DRIVER" = c ] && [ $failed = 1 ] && [ $went_on = 1 ]; then
	ktap_test_xfail "a failed write of an output line: the writer gets an error" \
		"C driver: its set() returns nothing, the error is only logged"
else
	ktap_test_fail "a failed write of an output line: the writer gets an error"
fi
ctl 0 fault clear >/dev/null
vgpio_finished
