#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole test suite (make check):
#  1. the simulator's cargo tests;
#  2. the kselftests on the Rust driver and on the C reference driver, in
#     two guests at once, each guest's kernel log checked for splats;
#  3. the runner's self-test: a module that WARNs must make a run fail.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/bin:$HOME/.cargo/bin:$PATH
out=$TOP/out/check-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
passed=0
failed=0
failures=()
result() {
	if [ "$2" = 0 ]; then
		echo "check: PASS $1"
		passed=$((passed + 1))
	else
		echo "check: FAIL $1"
		failed=$((failed + 1))
		failures+=("$1")
	fi
}
t0=$(date +%s)

echo "check: [1/3] simulator cargo tests"
(cd "$TOP/sim" && cargo test --release 2>&1) | tee "$out/cargo-test.log" | grep -E '^test |test result'
result "simulator cargo tests" "${PIPESTATUS[0]}"

echo "check: [2/3] kselftests: the Rust driver and the C driver, each in a guest of its own, both at once"
# suite DRIVER: every test that declares DRIVER, in one guest boot. The two
# guests share the machine's cores; each has its own simulators.
suite() {
	"$TOP/scripts/run-guest.sh" --out "$out/suite-$1" --devices 4 --timeout 4800 \
		--sim0 "--lines 8 --wire 0:1 --wire 2:3" --sim1 "--lines 96" \
		--sim2 "--lines 16" --sim3 "--lines 16" -- \
		bash "$TOP/tests/guest-run.sh" --drivers "$1" >"$out/suite-$1.log" 2>&1
}
suite rust &
rust_pid=$!
suite c &
c_pid=$!
suite_summary=""
for drv in rust c; do
	pid=${drv}_pid
	wait "${!pid}"
	rc=$?
	k=$out/suite-$drv/ktap.txt
	sed 's/^/  | /' "$out/suite-$drv.log"
	n_bad=0
	if [ -s "$k" ]; then
		grep -E '^(TAP|1\.\.|ok |not ok |# Totals)' "$k"
		n_ok=$(grep -cE '^ok ' "$k")
		n_bad=$(grep -cE '^not ok ' "$k")
		echo "check: $drv driver: $n_ok ok, $n_bad not ok (details: $k)"
		grep -B30 -E '^not ok ' "$k" | grep -E '^# (not ok|#)' | head -n 40
	else
		echo "check: the $drv guest produced no KTAP output; console tail:"
		tail -n 30 "$out/suite-$drv/console.log" | sed 's/^/  | /'
		n_bad=1
	fi
	# a "not ok" fails the suite even if the runner's status said otherwise
	[ "$rc" = 0 ] && [ "$n_bad" != 0 ] && rc=1
	result "kselftests on the $drv driver, kernel log clean" "$rc"
	if [ "$rc" != 0 ]; then
		suite_summary+=$(
			grep -E '^not ok ' "$k" 2>/dev/null
			grep -E '^# +not ok ' "$k" 2>/dev/null | head -n 20
			grep -E '^run-guest: |^logcheck: splat' "$out/suite-$drv.log" 2>/dev/null | tail -n 15
		)$'\n'
	fi
done

echo "check: [3/3] runner self-test: a WARN in the guest must fail the run"
"$TOP/scripts/run-guest.sh" --out "$out/selftest" -- \
	"insmod $TOP/tests/modules/vgpio_warn_test.ko; dmesg >\$VGPIO_OUT/dmesg.txt" \
	>"$out/selftest.log" 2>&1
rc=$?
sed 's/^/  | /' "$out/selftest.log" | head -n 20
if [ "$rc" != 0 ] && grep -q 'deliberate warning for the runner self-test' "$out/selftest.log"; then
	result "runner fails a run whose kernel log has a WARNING, quoting the splat" 0
else
	result "runner fails a run whose kernel log has a WARNING (exit $rc)" 1
fi

echo "check: took $(($(date +%s) - t0)) s; results in $out"
if [ "$failed" != 0 ]; then
	echo "check: what failed:"
	printf '  %s\n' "${failures[@]}"
	[ -n "$suite_summary" ] && printf '%s\n' "$suite_summary" | sed 's/^/  | /'
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
