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
ktap_set_plan 5

line=3
rounds=$(tier 3 10)
drv=/sys/bus/virtio/drivers/$DRV_NAME
param() { modparam vgpio_hog "$1"; }
wait_chip 0
vdev=$(vdev_of 0)
# the virtio device's parent (a PCI function, or a virtio-mmio platform
# device) and its bus, for the software node on kernels without machine
# hogs
parent=$(cd -P "/sys/bus/virtio/devices/$vdev/.." && echo "${PWD##*/}")
pbus=$(cd -P "/sys/bus/virtio/devices/$vdev/../subsystem" && echo "${PWD##*/}")
# the test (and so the bind) on CPU 0, the module's watcher on CPU 1
taskset -pc 0 $$ >/dev/null
# Whatever happens, the hog goes: unbound first (rmmod would unbind it
# too), the module out, the device bound again without it.
cleanup() {
	if [ -d /sys/module/vgpio_hog ]; then
		unbind 0
		rmmod vgpio_hog
	fi
	driver_bound 0 || echo "$vdev" >"$drv/bind" 2>/dev/null
}
trap cleanup EXIT

seen_all=() fails=0 drives=0 reported=0 early=0
for ((r = 1; r <= rounds; r++)); do
	unbind 0 || break
	# the line deactivated (the last round's hog was freed with its chip):
	# what probe reads for it is none, the hog makes it an output
	wait_for line_is 0 $line dir none || break
	insmod "$HOG_KO" label="$vdev" line=$line parent="$parent" bus="$pbus" \
		wait_s=$((60 * ${VGPIO_TIME_SCALE:-1})) || break
	echo "$vdev" >"$drv/bind"
	wait_chip 0
	WAIT_S=60 wait_for eval '[ "$(param done)" = Y ]'
	s=$(param seen) e=$(param early) p=$(param polls)
	seen_all+=("$s/$e/$p")
	[ "$s" = 0 ] || fails=$((fails + 1))
	[ "$e" = Y ] && early=$((early + 1))
	line_is 0 $line dir out && line_is 0 $line value 1 && drives=$((drives + 1))
	lsgpio_line "$(chip_of 0)" $line output && reported=$((reported + 1))
	unbind 0 || break
	rmmod vgpio_hog || break
done
log "$((r - 1)) of $rounds rounds; what the watcher saw / asked before probe returned / lookups it took: ${seen_all[*]}"
check "each round: a kernel user asking the hogged line's direction as soon as the chip shows gets output" \
	eval "[ ${#seen_all[@]} = $rounds ] && [ $fails = 0 ]"
# Without a question asked inside probe the case above proves nothing.
if [ "$early" -gt 0 ]; then
	ktap_test_pass "the question came before probe returned ($early of ${#seen_all[@]} rounds)"
else
	ktap_test_skip "the question never came before probe returned: the window was not reached"
fi
check "each round: the device drives the hogged line (dir=out value=1)" eval "[ $drives = $rounds ]"
check "each round: lsgpio reports the hogged line as an output" eval "[ $reported = $rounds ]"
cleanup
check "without the hog the device binds again, the line free and deactivated" \
	eval "wait_chip 0 && gpioget \$(chip_of 0) $line >/dev/null && wait_for line_is 0 $line dir none"
vgpio_finished
