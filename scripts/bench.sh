#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: the Rust and the C driver side by side in one guest, each on
# its own device of the same shape, seconds apart; prints a table of
# medians with Rust/C ratios and writes latency plots. Options: --rounds N
# (default 6: each driver twice on each of the three devices it rotates
# over), --cpus N (the guest's vCPUs, default 2), --kvm (use KVM
# instead of TCG, where KVM works), --build DIR (the modules built
# for the kernel scripts/kernel.sh names, FLAVOUR included: make bench builds
# them in out/build-KERNEL-FLAVOUR; default the work tree's).
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
rounds=6
cpus=2
accel=()
build=$TOP
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--kvm) accel=(--kvm); shift ;;
	--build) build=$2; shift 2 ;;
	--cpus) cpus=$2; shift 2 ;;
	*) echo "bench: unknown option $1" >&2; exit 2 ;;
	esac
done
# the plot: Debian's matplotlib
python3 -c 'import matplotlib' 2>/dev/null || {
	SUDO=
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-matplotlib
}
out=$TOP/out/bench-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
echo "bench: the simulator alone:"
"$TOP/sim/target/release/virtio-gpio-sim" bench | tee "$out/sim-bench.txt"
KDIR=$("$TOP/scripts/kernel.sh" dir)
export KDIR
if [ "${FLAVOUR:-test}" != test ] && [ "$build" = "$TOP" ]; then
	echo "bench: FLAVOUR=$FLAVOUR needs --build DIR (the modules built for that kernel)" >&2
	exit 2
fi
{
	echo "kernel: $(make -s -C "$KDIR" kernelversion 2>/dev/null) (${FLAVOUR:-test}: $KDIR)"
	grep -E '^CONFIG_(KASAN|PROVE_LOCKING|DEBUG_KMEMLEAK|PREEMPT_[A-Z]+|HZ|RUST_OVERFLOW_CHECKS)=' "$KDIR/.config" | tr '\n' ' '
	echo
	echo "guest: QEMU $([ ${#accel[@]} = 0 ] && echo TCG || echo KVM), $cpus vCPU(s), the runner's kernel command line has mitigations=off"
} | tee "$out/kernel.txt"
start=$(date +%s)
# devices 0, 1, 2: the Rust driver's, the C driver's and the floor's, the
# same shape, rotating; 3, 4, 5: probe (bench/guest-bench.sh)
"$TOP/scripts/run-guest.sh" "${accel[@]}" --cpus "$cpus" --out "$out" --devices 6 --timeout 3600 \
	--sim0 "--lines 32 --wire 0:1" --sim1 "--lines 32 --wire 0:1" \
	--sim2 "--lines 32 --wire 0:1" --sim3 "--lines 8" --sim4 "--lines 256" \
	--sim5 "--lines 1024" -- \
	env VGPIO_RUST_KO="$build/gpio-virtio-rs.ko" \
	VGPIO_FLOOR_KO="$build/tests/modules/vgpio_floor.ko" \
	bash "$TOP/bench/guest-bench.sh" "$TOP/bench/vgpio-bench" "$rounds"
rc=$?
echo "bench: guest run took $(($(date +%s) - start)) s"
python3 "$TOP/bench/report.py" "$out" | tee "$out/table.txt"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
# where a request's time goes (when the kernel could trace: bench/trace.py)
python3 "$TOP/bench/trace.py" "$out" | tee -a "$out/table.txt"
exit $rc
