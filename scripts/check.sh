#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole test suite (make check; make soak runs it with scripts/check.sh
# --soak: the same tests with the long loop counts, see tier in tests/lib.sh):
#  1. the simulator's cargo tests;
#  2. the kselftests in one guest boot, on the Rust driver and on the C
#     reference driver, with the guest's kernel log checked for splats;
#  3. the runner's self-test: a module that WARNs must make a run fail.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH
tier=check
guest_timeout=2700
if [ "${1:-}" = --soak ]; then
	tier=soak
	guest_timeout=10800
fi
out=$TOP/out/$tier-$(date +%Y%m%d-%H%M%S)
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

echo "check: [2/3] kselftests in the guest (Rust driver, then C driver; tier $tier)"
VGPIO_TIER=$tier "$TOP/scripts/run-guest.sh" --out "$out/suite" --devices 4 --timeout "$guest_timeout" \
	--sim0 "--lines 8 --wire 0:1 --wire 2:3" --sim1 "--lines 96" \
	--sim2 "--lines 16" --sim3 "--lines 16" -- \
	bash "$TOP/tests/guest-run.sh" 2>&1 | tee "$out/suite.log"
rc=${PIPESTATUS[0]}
if [ -s "$out/suite/ktap.txt" ]; then
	grep -E '^(TAP|1\.\.|ok |not ok |# Totals)' "$out/suite/ktap.txt"
	n_ok=$(grep -cE '^ok ' "$out/suite/ktap.txt")
	n_bad=$(grep -cE '^not ok ' "$out/suite/ktap.txt")
	echo "check: kselftests: $n_ok ok, $n_bad not ok (details: $out/suite/ktap.txt)"
	# one line per test: its seconds on each driver
	echo "check: seconds per test (rust, c):"
	sed -nE 's/^# (rust|c):([a-z_0-9]+) took ([0-9]+) s$/\2 \1 \3/p' "$out/suite/ktap.txt" |
		awk '{ if (!($1 in seen)) { order[++n] = $1; seen[$1] = 1 } t[$1, $2] = $3 }
		END { for (i = 1; i <= n; i++) { k = order[i]
			r = ((k, "rust") in t) ? t[k, "rust"] : "-"; c = ((k, "c") in t) ? t[k, "c"] : "-"
			printf "check:   %-16s %6s %6s\n", k, r, c } }'
	grep -B30 -E '^not ok ' "$out/suite/ktap.txt" | grep -E '^# (not ok|#)' | head -n 40
else
	n_bad=1
	echo "check: the guest produced no KTAP output; console tail:"
	tail -n 30 "$out/suite/console.log" | sed 's/^/  | /'
fi
# a "not ok" fails the suite even if the runner's status said otherwise
[ "$rc" = 0 ] && [ "${n_bad:-1}" != 0 ] && rc=1
result "kselftests in the guest, kernel log clean" "$rc"
suite_summary=""
if [ "$rc" != 0 ]; then
	suite_summary=$(
		grep -E '^not ok ' "$out/suite/ktap.txt" 2>/dev/null
		grep -E '^# +not ok ' "$out/suite/ktap.txt" 2>/dev/null | head -n 20
		grep -E '^run-guest: |^logcheck: splat' "$out/suite.log" 2>/dev/null | tail -n 15
	)
fi

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
