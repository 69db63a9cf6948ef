#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# A bad names block (unterminated, too short, duplicate or non-ASCII names)
# is logged and the chip registers without names rather than failing; a
# good block gives the names back. ngpio 0 fails probe cleanly with a log
# line.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 7

wait_chip 0
# What the C driver is known to accept (../shared/virtio-gpio-spec.md):
# it forces a NUL at the end instead of checking, and checks neither ASCII
# nor uniqueness.
c_accepts="unterminated duplicate nonascii"

for f in unterminated short duplicate nonascii; do
	ctl 0 fault names $f >/dev/null
	mark=$(dmesg_mark)
	rebind 0
	res=fail
	if wait_chip 0; then
		# (one process each, the rest in this shell)
		info=$(gpioinfo "$_CHIP")
		named=0
		while read -r l; do [[ $l == *'"d0l'* ]] && named=$((named + 1)); done <<<"$info"
		said=$(dmesg_since "$mark" | grep -m1 -iE 'names')
		[ "$named" = 0 ] && [ -n "$said" ] && res=pass
		log "$f: $named named lines; log: $said"
	fi
	if [ $res = pass ]; then
		ktap_test_pass "names block $f: logged, chip registered without names"
	elif [ "$DRIVER" = c ] && [[ " $c_accepts " == *" $f "* ]]; then
		ktap_test_xfail "names block $f: logged, chip registered without names" "C driver accepts a $f names block"
	else
		ktap_test_fail "names block $f: logged, chip registered without names"
	fi
done

ctl 0 fault names ok >/dev/null
rebind 0
wait_chip 0
check "a good block gives the names back" eval "[ \"\$(line_name $(chip_of 0) 7)\" = d0l7 ]"

ctl 0 fault ngpio0 on >/dev/null
mark=$(dmesg_mark)
rebind 0
# (bind probes before it returns; the log line is waited for all the same,
# in case a slow machine writes it later)
logged=0
wait_for eval "dmesg_since $mark | grep -qiE 'gpio.*(zero|0 lines|ngpio)'" && logged=1
log "ngpio 0: chip '$(chip_of 0)', probe failure logged: $logged: $(dmesg_since "$mark" | grep -iE 'gpio.*(zero|0 lines|ngpio)' | head -n1)"
check "ngpio 0: no chip, probe failed with a log line" \
	eval "[ -z \"\$(chip_of 0)\" ] && [ $logged = 1 ]"
ctl 0 fault ngpio0 off >/dev/null
rebind 0
check "ngpio back to 8: chip registers again" wait_chip 0
vgpio_finished
