#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo, inside the guest: load the Rust driver and use the chip with the
# ordinary GPIO tools.
export DRIVER=rust
. "$VGPIO_TOP/tests/lib.sh"
step() { echo; echo "=== demo: $*"; }

echo "=== demo: virtio-gpio Rust driver in a $(uname -r) guest"
step "insmod gpio-virtio-rs.ko"
insmod "$MODULE_KO" && lsmod | grep "^$MODULE"
wait_for driver_bound 0
dmesg | grep -E 'gpio-virtio-rs|gpio_virtio_rs' | grep -v 'modprobe.blacklist' | tail -n 5
if wait_chip 0; then
	chip=$(chip_of 0)
	step "gpiodetect"; gpiodetect
	step "gpioinfo $chip"; gpioinfo "$chip"
	step "gpioset $chip 0=1 (line 0 drives line 1 in the device), gpioget $chip 1"
	gpioset --mode=signal "$chip" 0=1 & p=$!
	wait_for eval 'line_is 0 0 dir out && line_is 0 0 value 1'
	echo "line 1 reads $(gpioget "$chip" 1)"; kill $p; wait $p 2>/dev/null
	step "gpiomon on line 3 while the device makes 2 edges"
	gpiomon --num-events=2 "$chip" 3 & p=$!
	wait_for line_is 0 3 queued 1
	ctl 0 edges 3 2 200000 paced-read >/dev/null
	WAIT_S=60 wait_for eval "! running $p"
	running $p && kill $p
	wait $p
	ctl 0 stop 3 >/dev/null
else
	echo "(no gpio_chip registered yet: the driver only logs probe at this stage)"
fi
step "rmmod $MODULE"
rmmod "$MODULE" && dmesg | grep -E 'gpio-virtio-rs' | tail -n 2
echo "=== end of demo"
dmesg >"$VGPIO_OUT/dmesg.txt"
