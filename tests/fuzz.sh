#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
# runs: last
#
# The simulator's fuzz mode on device 2 for a bounded time: about half of
# all answers get a random status, random bytes, a random or absurd used
# length, a random order, or no answer until the fuzz time ends; held
# eventq buffers come back at random. Meanwhile users write, read, watch
# edges and ask for directions on every line. Afterwards no user is stuck,
# the bad answers were logged, and once rebound the chip works. The log
# check (KASAN, lockdep, ...) covers the rest.
# On the C driver, device 2 is made the one whose interrupts work
# (c_irq_device).
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 5

dev=2
fuzz_s=${VGPIO_FUZZ_S:-$(tier 10 300)}
if [ "$VGPIO_DEVICES" -le $dev ]; then
	ktap_test_skip "needs a third device"
	exit 4
fi
c_irq_device $dev
if ! wait_chip $dev; then
	ktap_test_fail "device $dev has a chip"
	exit 1
fi
chip=$(chip_of $dev)
tmp=$(mktemp -d)
# Each user runs in a loop until the fuzz time is over; a request may go
# unanswered until then, so every call is bounded and killed if need be.
users() {
	local end=$((SECONDS + fuzz_s)) i=0
	while [ $SECONDS -lt $end ]; do
		timeout -s KILL 3 "$BENCH" hammer "$chip" $((i % 4)) 0.5 >/dev/null 2>&1
		timeout -s KILL 3 gpioget "$chip" 4 5 6 7 8 9 10 11 >/dev/null 2>&1
		timeout -s KILL 3 gpioset "$chip" 0=1 1=0 2=1 3=0 >/dev/null 2>&1
		timeout -s KILL 3 gpioinfo "$chip" >/dev/null 2>&1
		i=$((i + 1))
	done
	echo "rounds=$i"
}
watchers() {
	local end=$((SECONDS + fuzz_s)) n=0
	while [ $SECONDS -lt $end ]; do
		timeout -s KILL 4 "$BENCH" count "$chip" $((12 + n % 4)) 1 >/dev/null 2>&1
		n=$((n + 1))
	done
	echo "sessions=$n"
}

mark=$(dmesg_mark)
ctl $dev reset-counters >/dev/null
for l in 12 13 14 15; do ctl $dev edges $l 100000 10000 >/dev/null; done
ctl $dev fuzz $((fuzz_s * 1000)) >/dev/null
fuzz_end=$((SECONDS + fuzz_s))
users >"$tmp/users" 2>&1 &
u1=$!
users >"$tmp/users2" 2>&1 &
u2=$!
watchers >"$tmp/watchers" 2>&1 &
w=$!
# Until the fuzz time is over the device may hold every line's answer (a
# line's users then wait for its message: no request reaches the device
# for as long as the fuzz lasts), so progress is only asked for after it.
# The users start no call after the fuzz time; their last round (each call
# bounded) takes as long as the machine takes: wait for as long as the
# device still gets requests. A user stuck in the kernel makes none.
while [ $SECONDS -lt $fuzz_end ]; do nap 1; done
requests() { ctl $dev counters | cut -d' ' -f2-7; }
WAIT_S=300 wait_progress 30 requests \
	eval "! running $u1 && ! running $u2 && ! running $w"
stuck=$(jobs -rp | wc -l)
for l in 12 13 14 15; do ctl $dev stop $l >/dev/null; done
log "users: $(cat "$tmp/users") $(cat "$tmp/users2"); watchers: $(cat "$tmp/watchers")"
log "device: $(ctl $dev counters)"
check_c_known "$mark" "no user stuck after the fuzz time" test "$stuck" = 0
logged=$(dmesg_since "$mark" | grep -c "$(vdev_of $dev)")
log "$logged kernel log lines about the device"
check "the device's bad answers were logged" test "$logged" -gt 0
check_xfail_c "the device kept a bounded kernel log (rate-limited)" \
	"one line per bad answer, not rate-limited" test "$logged" -lt 2000
if [ "$stuck" != 0 ] && why=$(c_known_failure "$mark"); then
	# an unbind would wait for the stuck requests for good
	ktap_test_xfail "the device rebinds" "C driver: not tried, users are stuck: $why"
	ktap_test_xfail "and works" "C driver: not tried, users are stuck"
else
	rebind $dev
	check "the device rebinds" wait_chip $dev
	chip=$(chip_of $dev)
	ctl $dev set 9 1 >/dev/null
	check "and works" eval "[ \"\$(gpioget $chip 9)\" = 1 ]"
fi
rm -rf "$tmp"
vgpio_finished
