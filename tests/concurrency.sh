#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
# runs: last 3
# timeout: 1200
#
# Many users at once: processes each holding their own output line write
# and read back pseudo-random values in tight loops, and a reader reads 8
# lines at once (device 3), while others watch edge trains on input lines
# (device 0, the device whose interrupts work on the C driver too). Every
# value read back is the one last written; every edge is reported; nobody
# is left stuck.
# On the C driver this corrupts the requestq ("requestq:id N is not a
# head!": its callback calls virtqueue_get_buf without the lock that
# serializes virtqueue_add_sgs): the requests in flight then never complete
# (their callers stay in uninterruptible sleep for good) and every later
# request fails. Hence last, after every other test of the C driver.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 5

secs=${VGPIO_CONCURRENCY_S:-$(tier 10 120)}
writers="0 1 2 3 4 5"
watched="5 6 7"
edges=$(tier 60 300)
period_us=40000
# A watcher's own time limit: its paced train (an edge at most every
# $period_us, each once the driver took the one before) ends long before.
# (The C driver's watchers are known to see nothing here: see below.)
watch_s=$((secs + $(known_c 150 20)))
# (a C driver left stale by an earlier test never arms them: see below)
[ "${VGPIO_C_STALE:-0}" = 1 ] && watch_s=$((secs + 3))
# A read's: it takes seconds at worst on a slow machine under this load.
read_s=30
wdev=0
udev=3
if [ "$VGPIO_DEVICES" -le $udev ]; then
	ktap_test_skip "needs four devices"
	exit 4
fi
wait_chip $wdev && wait_chip $udev
wchip=$(chip_of $wdev)
uchip=$(chip_of $udev)
tmp=$(mktemp -d)
mark=$(dmesg_mark)

for l in $watched; do ctl $wdev set "$l" 0 >/dev/null; done
ctl $wdev reset-counters >/dev/null
# Readers of lines 8..15, one request for all eight, whose levels are fixed.
ctl $udev levels 0000000010110100 >/dev/null
# The watchers and their edge trains first (a control command is slow
# once the writers load the guest), then the writers and the reader.
pids=()
for l in $watched; do
	"$BENCH" count "$wchip" "$l" $watch_s $edges >"$tmp/count.$l" 2>&1 &
	pids+=($!)
done
nwatch=${#pids[@]}
# (On a C driver left stale by an earlier test (see guest-run.sh), whose
# watchers never arm, briefly.)
arm_s=30
[ "${VGPIO_C_STALE:-0}" = 1 ] && arm_s=3
for l in $watched; do
	WAIT_S=$arm_s wait_for file_has armed "$tmp/count.$l"
	WAIT_S=$arm_s wait_for line_is $wdev "$l" queued 1
done
for l in $watched; do ctl $wdev edges "$l" $edges $period_us paced-read >/dev/null; done
for l in $writers; do
	"$BENCH" hammer "$uchip" "$l" "$secs" >"$tmp/hammer.$l" 2>&1 &
	pids+=($!)
done
(
	end=$((SECONDS + secs))
	n=0
	bad=0
	while [ $SECONDS -lt $end ]; do
		v=$(timeout -s KILL $read_s gpioget "$uchip" 8 9 10 11 12 13 14 15 | tr -d ' ') || bad=$((bad + 1))
		[ "$v" = 10110100 ] || bad=$((bad + 1))
		n=$((n + 1))
	done
	echo "reads=$n bad=$bad"
) >"$tmp/reader" 2>&1 &
pids+=($!)
# Bounded: a user stuck in the kernel is a result, not a reason to hang.
# Every user ends by itself: the writers after $secs s, the reader after its
# last read (each bounded), the watchers with their last edge or at their own
# time limit. One still there after that is stuck in the kernel.
alive() {
	local p
	for p; do running "$p" && return 0; done
	return 1
}
users_done() { ! alive "${pids[@]:nwatch}"; }
watchers_done() { ! alive "${pids[@]:0:nwatch}"; }
# (On the C driver, once its requestq is known corrupted, the users stuck in
# it are the known result: no need to wait out their bound.)
ring_broken() { [ "$DRIVER" = c ] && dmesg_since "$mark" | grep -q 'is not a head'; }
users_settled() { users_done || ring_broken; }
WAIT_S=$((secs + $(known_c $((read_s + 30)) 10))) wait_for users_settled
WAIT_S=$((watch_s + 30)) wait_for watchers_done
for l in $watched; do ctl $wdev stop "$l" >/dev/null; done
stuck=0
for p in "${pids[@]}"; do
	running "$p" || continue
	stuck=$((stuck + 1))
	log "stuck: $(ps -o pid=,stat=,wchan:32=,args= -p "$p")"
done
dmesg_since "$mark" | grep -m1 -E 'is not a head|RIP: 0010:0x0|pc : (0x0|0{16})' | sed 's/^/# /'
result() { check_c_known "$mark" "$@"; }
result "6 writers: every value read back is the one written" \
	all_match 'mismatches=0 errors=0' $(for l in $writers; do echo "$tmp/hammer.$l"; done)
result "edge watchers: every generated edge reported (of $edges each)" \
	all_match "events=$edges\$" $(for l in $watched; do echo "$tmp/count.$l"; done)
log "8-line reader: $(cat "$tmp/reader")"
result "8-line reader: every read right" grep -q 'bad=0$' "$tmp/reader"
result "no user left stuck in the kernel" test "$stuck" = 0
check "the device saw no double-queued eventq buffer" \
	eval '[ "$(field double_queue "$(ctl $wdev counters)")" = 0 ]'
rm -rf "$tmp"
vgpio_finished
