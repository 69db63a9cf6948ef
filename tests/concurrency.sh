#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Many users at once on one chip: processes each holding their own output
# line write and read back pseudo-random values in tight loops, while
# others watch edge trains on input lines and others read 8 lines at once.
# Every value read back is the one last written; every edge is reported.
# On the C driver, device 1's interrupts work only if its chip is the first
# one probed (c_irq_device): its first run here, without that, oopsed on the
# first edge watcher and hung.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 4

BENCH=$VGPIO_TOP/bench/vgpio-bench
secs=${VGPIO_CONCURRENCY_S:-15}
writers="0 1 2 3 4 5"
watched="10 11 12"
edges=300
period_us=40000
c_irq_device 1
wait_chip 1
chip=$(chip_of 1)
tmp=$(mktemp -d)

for l in $watched; do ctl 1 set "$l" 0 >/dev/null; done
# Readers of lines 20..27, one ioctl for all eight, whose levels are fixed.
ctl 1 levels 0000000000000000000010110100 >/dev/null
# The watchers and their edge trains first (a control command is slow
# once the writers load the guest), then the writers and the reader.
for l in $watched; do
	"$BENCH" count "$chip" "$l" $((secs + 30)) $edges >"$tmp/count.$l" 2>&1 &
done
for l in $watched; do
	wait_for eval "grep -q armed $tmp/count.$l"
	wait_for eval '[ "$(line_state 1 '"$l"' queued)" = 1 ]'
done
for l in $watched; do ctl 1 edges "$l" $edges $period_us >/dev/null; done
for l in $writers; do
	"$BENCH" hammer "$chip" "$l" "$secs" >"$tmp/hammer.$l" 2>&1 &
done
(
	end=$((SECONDS + secs))
	n=0
	bad=0
	while [ $SECONDS -lt $end ]; do
		v=$(gpioget "$chip" 20 21 22 23 24 25 26 27 | tr -d ' ') || bad=$((bad + 1))
		[ "$v" = 10110100 ] || bad=$((bad + 1))
		n=$((n + 1))
	done
	echo "reads=$n bad=$bad"
) >"$tmp/reader" 2>&1 &
wait

check "6 writers: every value read back is the one written" \
	all_match 'mismatches=0 errors=0' $(for l in $writers; do echo "$tmp/hammer.$l"; done)
check "edge watchers: every generated edge reported (of $edges each)" \
	all_match "events=$edges\$" $(for l in $watched; do echo "$tmp/count.$l"; done)
log "8-line reader: $(cat "$tmp/reader")"
check "8-line reader: every read right" grep -q 'bad=0$' "$tmp/reader"
check "the device saw no double-queued eventq buffer" \
	eval '[ "$(field double_queue "$(ctl 1 counters)")" = 0 ]'
rm -rf "$tmp"
vgpio_finished
