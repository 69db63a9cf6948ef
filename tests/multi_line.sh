#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Many lines at once: gpioset/gpioget of 8 and 32 lines in one request
# (set_multiple/get_multiple) carry the right value for every line, in
# both directions, over several patterns.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 4

wait_chip 1
chip=$(chip_of 1)
n=$(field ngpio "$(ctl 1 info)")

# pattern P over N lines: bit i of P gives line i
args() { local i; for i in $(seq 0 $(($2 - 1))); do printf '%d=%d ' $i $(((($1 >> (i % 31)) & 1))); done; }
expect() { local i; for i in $(seq 0 $(($2 - 1))); do printf '%d ' $(((($1 >> (i % 31)) & 1))); done; }

set_ok() {
	local lines=$1 p pid got want i
	for p in 0x5a5a5a5a 0x0f0f0f0f 0x7fffffff 0; do
		# shellcheck disable=SC2046
		gpioset --mode=signal "$chip" $(args $p "$lines") &
		pid=$!
		want=$(expect $p "$lines")
		settled() {
			got=""
			for i in $(seq 0 $((lines - 1))); do got+="$(field value "$(ctl 1 get $i)") "; done
			[ "$got" = "$want" ]
		}
		if ! wait_for settled; then
			log "pattern $p: device has '$got', want '$want'"
			kill $pid; wait $pid 2>/dev/null
			return 1
		fi
		kill $pid; wait $pid 2>/dev/null
	done
}

get_ok() {
	local lines=$1 p i got want
	for p in 0x33333333 0x55555555 0x7fffffff 0; do
		for i in $(seq 0 $((lines - 1))); do echo "set $i $(((p >> (i % 31)) & 1))"; done | ctl 1 - >/dev/null
		# shellcheck disable=SC2046
		got="$(gpioget "$chip" $(seq 0 $((lines - 1))) | tr ' ' '\n' | xargs) "
		want=$(expect $p "$lines")
		[ "$got" = "$want" ] || { log "pattern $p: read '$got', want '$want'"; return 1; }
	done
}

check "gpioset of 8 lines in one request" set_ok 8
check "gpioget of 8 lines in one request" get_ok 8
check "gpioset of $n lines in one request" set_ok "$n"
check "gpioget of $n lines in one request" get_ok "$n"
vgpio_finished
