#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Edges the device generates reach user space exactly: gpiomon (v1 uAPI)
# and gpio-event-mon (v2 uAPI) see every edge of the selected kind, in
# order, at a slow rate and in a burst.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 6

wait_chip 0
chip=$(chip_of 0)
line=5

# monitor EVENTS-EXPECTED FLAGS EDGES PERIOD_US: gpiomon must print exactly
# the expected sequence of RISING/FALLING. The device's train is paced: an
# edge at most every PERIOD_US, and only once the driver has taken the one
# before (its eventq buffer is back), so that however slow the machine no
# two edges are latched into one; with both edges, also only once the line
# was read since (the character device reads it in its thread to tell the
# edge; the buffer is back only after that thread, so this adds nothing
# with a ONESHOT consumer, but an edge before the read would be told wrong).
monitor() {
	local want=$1 flags=$2 edges=$3 period=$4 n pid got g
	n=$(echo $want | wc -w)
	ctl 0 set $line 0 >/dev/null
	# shellcheck disable=SC2086
	gpiomon $flags --num-events="$n" "$chip" $line >/tmp/mon.out 2>&1 &
	pid=$!
	wait_for line_is 0 $line queued 1 || { kill $pid; log "not armed"; return 1; }
	local pace=paced
	[ -z "$flags" ] && pace=paced-read
	ctl 0 edges $line "$edges" "$period" $pace >/dev/null
	WAIT_S=60 wait_for eval "! running $pid"
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
	got=$(grep -oE 'RISING|FALLING' /tmp/mon.out | xargs)
	[ "$got" = "$want" ] || { log "want '$want', got '$got'; device: $(ctl 0 get $line)"; ctl 0 stop $line >/dev/null; return 1; }
	# nothing more arrives after the train: the device made its last edge
	# (a train outliving the monitor would run into the next case) and has
	# none latched
	wait_for line_is 0 $line edges 0
	g=$(ctl 0 get $line)
	ctl 0 stop $line >/dev/null
	[ "$(field edges "$g")" = 0 ] && [ "$(field latched "$g")" = 0 ] ||
		{ log "after the train: $g"; return 1; }
}

check "rising only: 3 of 6 edges at 10/s" monitor "RISING RISING RISING" "--rising-edge" 6 100000
check "falling only: 3 of 6 edges at 10/s" monitor "FALLING FALLING FALLING" "--falling-edge" 6 100000
check "both: 6 edges at 10/s, in order" monitor "RISING FALLING RISING FALLING RISING FALLING" "" 6 100000
burst="RISING FALLING"
for ((i = 1; i < 10; i++)); do burst+=" RISING FALLING"; done
check "both: a burst of 20 edges at 50/s, in order" monitor "$burst" "" 20 20000

eventmon() {
	local pid got
	ctl 0 set $line 0 >/dev/null
	"$KTOOLS/gpio-event-mon" -n "$chip" -o $line -r -f -c 4 >/tmp/evmon.out 2>&1 &
	pid=$!
	wait_for line_is 0 $line queued 1 || { kill $pid; return 1; }
	ctl 0 edges $line 4 100000 paced-read >/dev/null
	WAIT_S=60 wait_for eval "! running $pid"
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
	ctl 0 stop $line >/dev/null
	got=$(grep -oE 'rising edge|falling edge' /tmp/evmon.out | sed 's/ edge//' | xargs)
	[ "$got" = "rising falling rising falling" ] || { log "got '$got'"; sed 's/^/# /' /tmp/evmon.out; return 1; }
}
check "gpio-event-mon (v2 uAPI) sees 4 edges in order" eventmon

released() { line_is 0 $line irq none && line_is 0 $line queued 0; }
check "after the monitors: the line's interrupt is off on the device" wait_for released
vgpio_finished
