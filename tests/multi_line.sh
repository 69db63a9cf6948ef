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
n=32 # the v1 uAPI that gpioset/gpioget use takes at most 64 lines

# bits PATTERN N: N characters 0/1, character i = bit (i mod 31) of PATTERN
bits() { local i s=""; for ((i = 0; i < $2; i++)); do s+=$((($1 >> (i % 31)) & 1)); done; echo "$s"; }
# args BITS: gpioset arguments "0=b0 1=b1 ..."
args() { local i; for ((i = 0; i < ${#1}; i++)); do printf '%d=%s ' $i "${1:i:1}"; done; }

set_ok() {
	local lines=$1 p pid want got
	for p in 0x5a5a5a5a 0x0f0f0f0f 0x7fffffff 0; do
		want=$(bits $p "$lines")
		# shellcheck disable=SC2046
		gpioset --mode=signal "$chip" $(args "$want") &
		pid=$!
		settled() { _ctl 1 values; got=${_CTL_REPLY#* }; got=${got%% *}; [ "${got:0:$lines}" = "$want" ]; }
		wait_for settled || { log "pattern $p: device has '${got:0:$lines}', want '$want'"; kill $pid; wait $pid 2>/dev/null; return 1; }
		# gpioset may not have installed its signal handler yet when the
		# device already has the values (then SIGTERM ends it with 143):
		# its exit status is not the verdict, the device's values are.
		kill $pid; wait $pid 2>/dev/null
	done
	return 0
}

offsets=()
for ((i = 0; i < n; i++)); do offsets+=("$i"); done
get_ok() {
	local lines=$1 p want got
	for p in 0x33333333 0x55555555 0x7fffffff 0; do
		want=$(bits $p "$lines")
		ctl 1 levels "$want" >/dev/null
		got=$(gpioget "$chip" "${offsets[@]:0:lines}")
		got=${got// /}
		[ "$got" = "$want" ] || { log "pattern $p: read '$got', want '$want'"; return 1; }
	done
}

check "gpioset of 8 lines in one request" set_ok 8
check "gpioget of 8 lines in one request" get_ok 8
check "gpioset of $n lines in one request" set_ok "$n"
check "gpioget of $n lines in one request" get_ok "$n"
ctl 1 levels "$(bits 0 "$(field ngpio "$(ctl 1 info)")")" >/dev/null
vgpio_finished
