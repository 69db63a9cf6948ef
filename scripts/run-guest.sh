#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-guest.sh [options] -- GUEST-COMMAND
#
# Starts one device simulator per virtio-gpio device, boots the test kernel
# with virtme-ng under QEMU's TCG with a vhost-user-gpio-pci device per
# simulator and a virtio-serial control port per device (in the guest:
# /dev/virtio-ports/vgpio-ctlN), runs GUEST-COMMAND as root in the guest,
# then checks the guest's kernel log. Exit status: the guest command's, or 1
# if the kernel log has a splat, or 124 if the guest did not come back.
#
# Options:
#   --devices N      number of virtio-gpio devices (default 1)
#   --sim ARGS       simulator options for every device (see sim --help)
#   --simN ARGS      simulator options for device N only
#   --out DIR        results folder (default out/run-TIMESTAMP)
#   --timeout S      limit for the whole guest run (default 2400)
#   --memory SIZE    guest memory (default 2G)
#   --no-logcheck    do not check the kernel log
#   --cpus N         guest CPUs (default 2)
#   --kvm            use KVM instead of TCG (where KVM runs our kernels)
#   --dma            every device offers VIRTIO_F_ACCESS_PLATFORM (QEMU's
#                    iommu_platform=on, the simulator's --access-platform)
#                    and the guest bounces all DMA through swiotlb
#                    (swiotlb=force): the virtqueues then map each buffer
#                    through the DMA API, as in a confidential guest
# Environment: VGPIO_TIER (check or soak, for the tests' loop counts),
# VGPIO_QEMU_OPTS (more QEMU options, e.g. "-cpu qemu64" to compare),
# VGPIO_KERNEL_ARGS (more kernel command line, e.g. "nokaslr"),
# VGPIO_ARCH (x86_64, default, or arm64: QEMU's virt machine, emulated, with
# a root of arm64 binaries from scripts/rootfs.sh), VGPIO_TRANSPORT (pci, or
# mmio: arm64 only, its default), VGPIO_BUILD (where the guest finds the
# module, the test modules and vgpio-bench built for its architecture;
# arm64's default: out/build-$KERNEL-arm64), VGPIO_TIME_SCALE (multiplies
# the tests' time bounds in the guest; arm64's default: 3).
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
KDIR=${KDIR:-$("$TOP"/scripts/kernel.sh dir)}
SIM=$TOP/sim/target/release/virtio-gpio-sim
export PATH=/usr/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH

devices=1
sim_all=""
declare -A sim_one
out=""
timeout_s=3600
mem=2G
logcheck=1
accel=--disable-kvm
cpus=2
dma=0
while [ $# -gt 0 ]; do
	case "$1" in
	--devices) devices=$2; shift 2 ;;
	--sim) sim_all=$2; shift 2 ;;
	--sim[0-9]*) sim_one[${1#--sim}]=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--memory) mem=$2; shift 2 ;;
	--no-logcheck) logcheck=0; shift ;;
	--cpus) cpus=$2; shift 2 ;;
	--kvm) accel=""; shift ;;
	--dma) dma=1; shift ;;
	--) shift; break ;;
	*) echo "run-guest: unknown option $1" >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "run-guest: no guest command" >&2; exit 2; }
guest_cmd=$*

ARCH=${VGPIO_ARCH:-x86_64}
case "$ARCH" in
x86_64) image=arch/x86/boot/bzImage transport=${VGPIO_TRANSPORT:-pci} ;;
arm64) image=arch/arm64/boot/Image transport=${VGPIO_TRANSPORT:-mmio} ;;
*) echo "run-guest: VGPIO_ARCH=$ARCH: x86_64 or arm64" >&2; exit 2 ;;
esac
case "$ARCH:$transport" in
*:pci | arm64:mmio) ;;
*) echo "run-guest: no $transport transport on $ARCH" >&2; exit 2 ;;
esac

[ -x "$SIM" ] || { echo "run-guest: build the simulator first (make sim)" >&2; exit 2; }
[ -e "$KDIR/$image" ] || { echo "run-guest: no kernel at $KDIR (make kernel)" >&2; exit 2; }

out=${out:-$TOP/out/run-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
run=$(mktemp -d /tmp/vgpio-run.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$run"
}
trap cleanup EXIT

# start_sims: one simulator per device, listening on fresh sockets.
start_sims() {
	local i
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	pids=()
	rm -f "$run"/*.sock
	# virtio-mmio (arm64's virt machine has 32 transports): each device
	# pinned to its own, in order, so that device N is the Nth by address
	# as the tests count them; the modern (virtio 1.0) transport, which
	# vhost-user-gpio needs.
	if [ "$transport" = mmio ]; then
		qopts="-global virtio-mmio.force-legacy=false -device virtio-serial-device,id=vgpioser"
		gpiodev=vhost-user-gpio-device
	else
		qopts="-device virtio-serial-pci,id=vgpioser"
		gpiodev=vhost-user-gpio-pci
	fi
	for ((i = 0; i < devices; i++)); do
		# shellcheck disable=SC2086
		"$SIM" serve --socket "$run/vhost$i.sock" --ctl "$run/ctl$i.sock" \
			--names "gen:d${i}l" ${dma_sim:-} $sim_all ${sim_one[$i]:-} >"$out/sim$i.log" 2>&1 &
		pids+=($!)
		qopts+=" -chardev socket,path=$run/vhost$i.sock,id=vgpio$i"
		qopts+=" -device $gpiodev,chardev=vgpio$i,id=gpio$i${dma_dev:-}"
		[ "$transport" = mmio ] && qopts+=",bus=virtio-mmio-bus.$i"
		qopts+=" -chardev socket,path=$run/ctl$i.sock,id=vgpioctl$i"
		qopts+=" -device virtserialport,bus=vgpioser.0,chardev=vgpioctl$i,name=vgpio-ctl$i"
	done
	for ((i = 0; i < devices; i++)); do
		for _ in $(seq 100); do
			[ -S "$run/vhost$i.sock" ] && [ -S "$run/ctl$i.sock" ] && break
			sleep 0.1
		done
		if ! [ -S "$run/vhost$i.sock" ]; then
			echo "run-guest: simulator $i did not start:" >&2
			cat "$out/sim$i.log" >&2
			exit 2
		fi
	done
}

# The guest writes its results under $out (shared read-write); the
# console (kernel messages and the command's output) goes to console.log.
# udev must not auto-load the C driver: tests choose the driver (insmod
# ignores the modprobe blacklist). The log buffer holds a whole run. no5lvl:
# under TCG, a 5-level-paging boot once hit a KASAN report in early boot
# (identify_cpu, an interrupt on the direct map), before any of our code.
#
# Boot time: virtme-ng's init runs systemd-tmpfiles and a udev coldplug of
# every device before the command (40 s and up to 300 s under TCG); the
# shims in scripts/guest-shims, first in the init's PATH (the kernel hands
# unknown name=value parameters to init as its environment), cut both down
# to what the init needs: the virtio ports it runs the command through.
# loglevel=5: the console (which --verbose shows, and a slow emulated UART
# carries) gets warnings and worse; the whole log is saved at the end.
# max_loop=0, 8250.nr_uarts=1: fewer devices for udev to handle.
# mitigations=off: no page table isolation and no speculation barriers on
# every kernel entry, which under TCG cost a TLB flush each (the guest runs
# nothing untrusted). cache=loose on the 9p root: the host files do not
# change during a run, and cached pages make each process start about 2x
# cheaper (a process start is most of what a test costs in this guest).
#
# arm64: virtme-ng needs a root of the guest's architecture (--root, made
# by scripts/rootfs.sh) and runs its shell init from it; what the tests
# read from the host (the work tree, the kernel tree, the results folder)
# is shared at the same paths, whose mount points must exist in that
# read-only root. The shims live in the root (the init calls udevadm before
# it mounts the shares), with a udevd that does nothing (the root has no
# udev). The guest command goes in a file: virtme-ng's extra arguments
# for an external root leave too little of arm64's 2048-byte command line.
dma_sim="" dma_dev="" dma_arg=""
if [ "$dma" = 1 ]; then
	dma_sim=--access-platform dma_dev=,iommu_platform=on dma_arg=" swiotlb=force"
fi
params="rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose modprobe.blacklist=gpio_virtio,gpio_virtio_rs log_buf_len=32M loglevel=5 max_loop=0 8250.nr_uarts=1 mitigations=off$dma_arg${VGPIO_KERNEL_ARGS:+ $VGPIO_KERNEL_ARGS}"
vargs=()
if [ "$ARCH" = arm64 ]; then
	export VGPIO_BUILD=${VGPIO_BUILD:-$TOP/out/build-${KERNEL:-7.3}-arm64}
	export VGPIO_TIME_SCALE=${VGPIO_TIME_SCALE:-3}
	# (an ELF for aarch64: e_machine 183)
	[ "$(od -An -tu2 -j18 -N2 "$VGPIO_BUILD/gpio-virtio-rs.ko" 2>/dev/null | tr -d ' ')" = 183 ] ||
		{ echo "run-guest: no arm64 build of the module in $VGPIO_BUILD (make ARCH=arm64 modules)" >&2; exit 2; }
	case "$VGPIO_BUILD/" in "$TOP"/*) ;; *)
		echo "run-guest: VGPIO_BUILD must be inside $TOP (shared with the guest)" >&2; exit 2 ;;
	esac
	root=$("$TOP"/scripts/rootfs.sh arm64) || exit 2
	shims=$root/usr/local/vgpio-shims
	# (and the folders virtme-ng's init mounts overlays on)
	mkdir -p "$shims" "$root$TOP" "$root$KDIR" "$root/opt" "$root/srv" "$root/etc/lvm"
	cp "$TOP"/scripts/guest-shims/* "$shims/"
	printf '#!/bin/sh\nexit 0\n' >"$shims/udevd"
	chmod +x "$shims"/*
	params="PATH=/usr/local/vgpio-shims:/usr/sbin:/usr/bin:/sbin:/bin $params"
	vargs=(--arch arm64 --root "$root" --rwdir "$TOP=$TOP" --rodir "$KDIR=$KDIR")
	case "$out/" in "$TOP"/*) ;; *) mkdir -p "$root$out"; vargs+=(--rwdir "$out=$out") ;; esac
else
	params="PATH=$TOP/scripts/guest-shims $params no5lvl"
	vargs=(--rwdir "$out")
fi
boot() {
	timeout --foreground -k 10 "$timeout_s" \
		vng $accel "${vargs[@]}" --run "$KDIR" --force-9p --user root --cpus "$cpus" \
		-m "$mem" --numa "$mem" --verbose \
		--append "$params" \
		-o="$qopts ${VGPIO_QEMU_OPTS:-}" \
		-- "$gcmd" \
		>"$out/console.log" 2>&1 </dev/null
}

# VGPIO_TIER (check or soak) sizes the tests' loops (tier in tests/lib.sh).
gcmd="touch $out/.started; export VGPIO_OUT=$out VGPIO_TOP=$TOP VGPIO_KDIR=$KDIR VGPIO_DEVICES=$devices VGPIO_TIER=${VGPIO_TIER:-check}${VGPIO_BUILD:+ VGPIO_BUILD=$VGPIO_BUILD}${VGPIO_TIME_SCALE:+ VGPIO_TIME_SCALE=$VGPIO_TIME_SCALE}; $guest_cmd"
if [ "$ARCH" = arm64 ]; then
	# (in the directory it was started from, as virtme-ng does for a guest
	# on the host's root, when the guest sees it)
	printf 'cd %q 2>/dev/null || cd %q\n%s\n' "$PWD" "$TOP" "$gcmd" >"$out/guest-cmd.sh"
	gcmd="bash $out/guest-cmd.sh"
fi
# The command travels base64-encoded on the kernel command line, which x86
# cuts at 2048 bytes; virtme-ng's own part takes about 750 plus the results
# path. A cut command makes virtme-ng boot the full systemd instead (which
# then hit a 9p/netfs KASAN report in this kernel): refuse that early.
if [ $(((${#gcmd} + 2) / 3 * 4 + 850 + ${#out} + ${#TOP})) -gt 2000 ]; then
	echo "run-guest: the guest command is too long for the kernel command line; put it in a script" >&2
	exit 2
fi
echo "run-guest: booting $KDIR ($ARCH) under $([ -n "$accel" ] && echo TCG || echo KVM) with $devices virtio-gpio device(s) on virtio-$transport; results in $out"
start=$(date +%s)
rm -f "$out/.started"
start_sims
boot
rc=$?
# A guest that died while booting, before our command started (no module of
# ours loaded yet), is a platform failure, not a result: say so, keep its
# console log, and boot once more. Seen under TCG: a KASAN report in
# identify_cpu with 5-level paging (before no5lvl); QEMU 10.0.2 aborting
# with "iotlb_to_section: Assertion ... failed" while the guest kernel set
# up its PCI devices (once, with two guests running at once).
if [ ! -e "$out/.started" ] && [ "$rc" != 0 ]; then
	mv "$out/console.log" "$out/console-boot-crash.log"
	echo "run-guest: the guest died while booting (exit $rc), before the tests started; booting again. Its log: $out/console-boot-crash.log"
	grep -m3 -E 'Kernel panic|BUG:|Oops|qemu-system.*(Assertion|Abort)' "$out/console-boot-crash.log" | sed 's/^/  | /'
	start_sims
	boot
	rc=$?
fi
echo "run-guest: guest finished in $(($(date +%s) - start)) s, exit $rc"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "run-guest: the guest did not come back within $timeout_s s; console tail:"
	tail -n 40 "$out/console.log" | sed 's/^/  | /'
	rc=124
fi

if [ "$logcheck" = 1 ]; then
	log=$out/dmesg.txt
	# A guest that died never wrote dmesg.txt: check what the console saw.
	[ -s "$log" ] || log=$out/console.log
	if ! "$TOP"/scripts/logcheck.py "$log" "$out/kmemleak.txt"; then
		[ "$rc" = 0 ] && rc=1
	fi
	[ -s "$out/dmesg.txt" ] || { echo "run-guest: the guest wrote no kernel log"; [ "$rc" = 0 ] && rc=1; }
fi
exit "$rc"
