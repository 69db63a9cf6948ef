#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the guest: the pair method's own bias and noise. `vgpio-bench
# pair` on two devices bound to the same driver (Rust/Rust, C/C), beside
# Rust/C, six rounds of single-line sets and gets; prints one CTRL line per
# pair and round. Same-driver pairs should come out at 1.00 within the
# method's resolution; Rust/C beyond that is the drivers'. Four devices of
# 32 lines, the production kernel:
#   KDIR=$(FLAVOUR=prod scripts/kernel.sh dir) scripts/run-guest.sh \
#     --out out/control --devices 4 --no-logcheck --sim "--lines 32 --wire 0:1" \
#     -- env VGPIO_RUST_KO=$PWD/out/build-7.3-prod/gpio-virtio-rs.ko \
#     bash bench/control.sh
#   grep CTRL out/control/console.log
set -u
# (lib.sh reads DRIVER)
# shellcheck disable=SC2034
for DRIVER in c rust; do
	# shellcheck source=/dev/null
	. "$VGPIO_TOP/tests/lib.sh"
done
BENCH=$VGPIO_TOP/bench/vgpio-bench
insmod "$VGPIO_RUST_KO"
insmod "$VGPIO_KDIR/drivers/gpio/gpio-virtio.ko"
for i in 0 1 2 3; do wait_chip $i; done
# devices 0 and 1 the Rust driver's, 2 and 3 the C driver's
bindto() {
	local v
	v=$(vdev_of "$1")
	[ ! -e /sys/bus/virtio/devices/"$v"/driver ] ||
		echo "$v" >/sys/bus/virtio/devices/"$v"/driver/unbind
	echo "$v" >/sys/bus/virtio/drivers/"$2"/bind
}
bindto 2 gpio_virtio
bindto 3 gpio_virtio
# the task and the devices' INTx lines on CPU 0, as make bench has them
for i in 0 1 2 3; do
	wait_chip $i
	echo 0 >/proc/irq/"$(cat /sys/bus/virtio/devices/"$(vdev_of $i)"/../irq)"/smp_affinity_list
done
taskset -p -c 0 $$ >/dev/null
for r in 1 2 3 4 5 6; do
	for w in set get; do
		line=2
		[ $w = get ] && line=3
		for p in "RR 0 1" "CC 2 3" "RC $((r % 2)) $((2 + r % 2))"; do
			read -r k a b <<<"$p"
			echo "CTRL r=$r w=$w $k: $("$BENCH" pair $w 2000 25 "$(chip_of "$a")" "$(chip_of "$b")" $line 2>/dev/null | tr '\n' ' ')"
		done
	done
done
