#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# A line hogged as an output while the chip registers, and a kernel user
# that asks its direction the moment gpiolib shows the chip (issue 12's bug
# 10). gpiolib asks every line's direction first, then hogs the line (the
# device makes it an output), then publishes the chip, all inside
# gpiochip_add_data. A driver that kept answering from the directions it
# fetched at probe until its probe returned would tell that user "input":
# gpiolib then records the hogged output as an input, and that is what
# every user of the chip sees (lsgpio, gpioinfo) until someone asks again.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 4

line=3
rounds=$(tier 3 10)
drv=/sys/bus/virtio/drivers/$DRV_NAME
wait_chip 0
vdev=$(vdev_of 0)
# the virtio device's parent (a PCI function, or a virtio-mmio platform
# device) and its bus, for the software node on kernels without machine
# hogs
parent=$(cd -P "/sys/bus/virtio/devices/$vdev/.." && echo "${PWD##*/}")
pbus=$(cd -P "/sys/bus/virtio/devices/$vdev/../subsystem" && echo "${PWD##*/}")
# the test (and so the bind) on CPU 0, the module's watcher on CPU 1
taskset -pc 0 $$ >/dev/null

out_lsgpio() {
	"$KTOOLS/lsgpio" -n "$(chip_of 0)" | grep -E "^[[:space:]]+line +$line:" | grep -q 'output'
}
seen_all=() fails=0 drives=0 reported=0
for ((r = 1; r <= rounds; r++)); do
	unbind 0 || break
	# unrequested lines are deactivated (the last round's hog was freed
	# with its chip): the probe-time direction is none
	ctl 0 dirs | grep -q "^ok " || break
	insmod "$HOG_KO" label="$vdev" line=$line vdev="$vdev" parent="$parent" bus="$pbus" || break
	echo "$vdev" >"$drv/bind"
	wait_chip 0
	WAIT_S=60 wait_for eval '[ "$(cat /sys/module/vgpio_hog/parameters/seen)" != "-115" ]'
	s=$(cat /sys/module/vgpio_hog/parameters/seen)
	p=$(cat /sys/module/vgpio_hog/parameters/polls)
	seen_all+=("$s/$p")
	[ "$s" = 0 ] || fails=$((fails + 1))
	line_is 0 $line dir out && line_is 0 $line value 1 && drives=$((drives + 1))
	out_lsgpio && reported=$((reported + 1))
	unbind 0
	rmmod vgpio_hog
done
log "$((r - 1)) of $rounds rounds; the direction the watcher saw / lookups it took: ${seen_all[*]}"
check "each round: a kernel user asking the hogged line's direction as soon as the chip shows gets output" \
	eval "[ ${#seen_all[@]} = $rounds ] && [ $fails = 0 ]"
check "each round: the device drives the hogged line (dir=out value=1)" eval "[ $drives = $rounds ]"
check "each round: lsgpio reports the hogged line as an output" eval "[ $reported = $rounds ]"
rmmod vgpio_hog 2>/dev/null
echo "$vdev" >"$drv/bind" 2>/dev/null
check "without the hog the device binds again, the line free and deactivated" \
	eval "wait_chip 0 && gpioget \$(chip_of 0) $line >/dev/null && wait_for line_is 0 $line dir none"
vgpio_finished
