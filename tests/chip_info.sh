#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
# timeout: 1800
#
# The chip as user space sees it (gpiodetect, gpioinfo, lsgpio): one chip per
# device, the device's line count and line names; the most lines the config
# space can give (65535) too.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
# (65535 lines: the soak tier's; gpiolib's check of a chip's names for
# duplicates is quadratic, minutes for 65535 names on the debug kernel)
big_lines=$(tier 0 1)
ktap_set_plan $((6 + big_lines))

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

# --- 65535 lines (ngpio is 16 bits, and every value but 0 is a device) ---
# Device 2 grows to 65535 lines while unbound; bound again, its chip has
# them all, the last one named and reading the device.
dev=2
[ "$big_lines" = 1 ] || vgpio_finished
n0=$(field ngpio "$(ctl $dev info)")
unbind $dev
ctl $dev lines 65535 >/dev/null
mark=$(dmesg_mark)
_now_ms
t0=$NOW_MS
# (bind returns when probe is done)
rebind $dev
wait_chip $dev
_now_ms
big=$_CHIP
ctl $dev set 65534 1 >/dev/null
got=$(gpiodetect | grep "^$big ")
v=$(gpioget "$big" 65534 2>&1)
name=$(line_name "$big" 65534)
log "65535 lines: '$got' after $((NOW_MS - t0)) ms; line 65534 named '$name' reads '$v'; log: $(dmesg_since "$mark" | grep -i gpio | tail -n 2 | tr '\n' ' ')"
check_xfail_c "a device with 65535 lines: a chip with all of them, the last one named and working" \
	"probe fails with -ENOMEM after a WARNING in the page allocator (7.3: its per-line array is one allocation larger than the largest order)" \
	eval '[[ $got == *"(65535 lines)"* ]] && [ "$name" = d${dev}l65534 ] && [ "$v" = 1 ]'
unbind $dev
ctl $dev lines "$n0" >/dev/null
rebind $dev
wait_chip $dev
vgpio_finished
