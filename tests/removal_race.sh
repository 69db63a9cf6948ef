#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
# timeout: 2400
#
# Removal while interrupts keep arriving, many times: a line storms (the
# device answers its eventq message with an edge at once, for ever) while a
# watcher holds it, and the device is unbound in the middle of the storm.
# On virtio-mmio a reset does not wait for a virtqueue callback that is
# already running: the driver must stop its callbacks before the chip and
# its irq domain go. Each unbind completes, the watcher is told the chip
# went, the device binds again; at the end it works. The runner fails any
# splat in the kernel log (a use of the freed domain, a lockdep report).
# The watcher is held across the unbind and done before the device binds
# again (hold in lib.sh: gpiolib's double free_irq is not what this test is
# about).
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 3

rounds=$(tier 10 100)
line=5
drv=/sys/bus/virtio/drivers/$DRV_NAME
tmp=$(mktemp -d)
wait_chip 0
vdev=$(vdev_of 0)
mark=$(dmesg_mark)
stormed=0 held=0 unbound=0 told=0 bound=0 during=0 live=0
for ((r = 1; r <= rounds; r++)); do
	ctl 0 fault clear >/dev/null
	ctl 0 set $line 0 >/dev/null
	_chip 0 || break
	: >"$tmp/count"
	# (its time limit far away: it ends when told the chip went)
	"$BENCH" count "$_CHIP" $line 100000 0 rising >>"$tmp/count" 2>&1 &
	w=$!
	# (a round that cannot start ends the loop: the checks below say so)
	if ! wait_for file_has armed "$tmp/count" || ! wait_for line_is 0 $line queued 1; then
		log "round $r: the watcher is not armed: $(tr '\n' ' ' <"$tmp/count")"
		kill $w 2>/dev/null
		wait $w
		break
	fi
	ctl 0 reset-counters >/dev/null
	ctl 0 fault evstorm line=$line >/dev/null
	# (the storm starts with an edge: from then on the message comes back
	# at once, each time the irq core unmasks the line)
	ctl 0 set $line 1 >/dev/null
	WAIT_S=30 wait_for eval '_ctl 0 counters $line; [ "$(field events "$_CTL_REPLY")" -ge 50 ]' &&
		stormed=$((stormed + 1))
	hold $w && held=$((held + 1))
	_ctl 0 counters $line
	e0=$(field events "$_CTL_REPLY")
	(echo "$vdev" >"$drv/unbind") &
	u=$!
	WAIT_S=60 wait_for eval "! running $u"
	if running $u; then
		log "round $r: unbind still running: $(ps -o pid=,stat=,wchan:32=,comm= -p $u)"
		kill -CONT $w
		break
	fi
	wait $u && unbound=$((unbound + 1))
	_ctl 0 counters $line
	e1=$(field events "$_CTL_REPLY")
	during=$((during + ${e1:-0} - ${e0:-0}))
	# (the storm still going between the last look before the unbind and
	# its end: the unbind's own start, a process, takes part of that time)
	[ "${e1:-0}" -gt "${e0:-0}" ] && live=$((live + 1))
	kill -CONT $w
	WAIT_S=10 wait_for eval "! running $w" || kill -9 $w
	wait $w
	grep -qx gone "$tmp/count" && told=$((told + 1))
	ctl 0 fault clear >/dev/null
	echo "$vdev" >"$drv/bind" && wait_chip 0 && bound=$((bound + 1))
	{ [ $bound = $r ] && [ $stormed = $r ]; } || break
done
log "$rounds rounds: storming $stormed, watcher held $held, unbound $unbound (the device still sending events from the last look before the unbind: $live), watcher told $told, bound again $bound; the device sent $during events from just before each unbind to its end"
check_c_known "$mark" "a device unbound in the middle of an interrupt storm, $rounds times: every unbind completes" \
	eval "[ $stormed = $rounds ] && [ $held = $rounds ] && [ $live = $rounds ] && [ $unbound = $rounds ]"
check_c_known "$mark" "... every watcher is told the chip went, and the device binds again" \
	eval "[ $told = $rounds ] && [ $bound = $rounds ]"
ctl 0 set $line 0 >/dev/null
ctl 0 set 6 1 >/dev/null
check_c_known "$mark" "... and then works" eval "_chip 0 && [ \"\$(gpioget \$_CHIP 6)\" = 1 ]"
ctl 0 set 6 0 >/dev/null
rm -rf "$tmp"
vgpio_finished
