#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: the Rust and the C driver side by side in one guest, same
# simulators, alternating rounds; prints a table of medians with Rust/C
# ratios and writes a latency plot. Options: --rounds N (default 3), --kvm
# (use KVM instead of TCG, where KVM works).
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
rounds=3
accel=()
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--kvm) accel=(--kvm); shift ;;
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
start=$(date +%s)
"$TOP/scripts/run-guest.sh" "${accel[@]}" --out "$out" --devices 4 --timeout 1500 \
	--sim0 "--lines 32 --wire 0:1" --sim1 "--lines 256" --sim2 "--lines 1024" \
	--sim3 "--lines 8" -- \
	bash "$TOP/bench/guest-bench.sh" "$TOP/bench/vgpio-bench" "$rounds"
rc=$?
echo "bench: guest run took $(($(date +%s) - start)) s"
python3 "$TOP/bench/report.py" "$out" | tee "$out/table.txt"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
exit $rc
