#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# A device that answers ERR gives the caller an error and one log line; the
# other lines keep working, and the line works again once the device does.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 4

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
vgpio_finished
