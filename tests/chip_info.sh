#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# The chip as user space sees it (gpiodetect, gpioinfo, lsgpio): one chip per
# device, the device's line count and line names.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 6

wait_chip 0
chip=$(chip_of 0)
info=$(ctl 0 info)
ngpio=$(field ngpio "$info")
log "chip $chip, device: $info"

check "gpiochip registered for device 0" test -n "$chip"
check "chip label is the virtio device name" eval "gpiodetect | grep -q \"^$chip \[$(vdev_of 0)\]\""
check "gpiodetect shows $ngpio lines" eval "gpiodetect | grep -q \"^$chip .*($ngpio lines)\""
names_ok() {
	local want got
	want=$(for ((i = 0; i < ngpio; i++)); do printf '"d0l%d" ' $i; done)
	got=$(gpioinfo "$chip" | awk '$1 == "line" { printf "%s ", $3 }')
	[ "$got" = "$want" ] || { log "names: '$got'"; return 1; }
}
check "gpioinfo shows the device's line names" names_ok
check "lsgpio lists the chip" eval "\"$KTOOLS/lsgpio\" -n $chip | grep -q 'd0l0'"
check "gpiofind finds a line by name" eval "[ \"\$(gpiofind d0l3)\" = \"$chip 3\" ]"

vgpio_finished
