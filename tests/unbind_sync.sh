#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Removal while a task is inside the irq chip's irq_bus_sync_unlock (issue
# 12's bug 9). A kernel consumer changes its interrupt's trigger
# (irq_set_irq_type: the driver sends the new type from
# irq_bus_sync_unlock); the device holds the answer; the device is unbound.
# Removal wakes the task with ENODEV, but the task (SCHED_FIFO 1) shares its
# CPU with a SCHED_FIFO 99 busy loop, which keeps it from running for a few
# seconds: an unbind that did not wait for it would return, and the
# driver's state be freed, while the task has still to run on that state
# (KASAN reports it: the runner fails the log). The unbind must return only
# after the busy loop ended, the task out of the driver.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 3

line=5
hog_s=$((5 * ${VGPIO_TIME_SCALE:-1}))
drv=/sys/bus/virtio/drivers/$DRV_NAME
tmp=$(mktemp -d)
wait_chip 0
vdev=$(vdev_of 0)
# The test itself (and the unbind) on CPU 0; the consumer's task and the
# busy loop on CPU 1, both real-time, so that no share of the CPU for
# other tasks (RT throttling, the fair server) lets the task run before the
# loop ends.
taskset -pc 0 $$ >/dev/null
ctl 0 fault clear >/dev/null
ctl 0 set $line 0 >/dev/null
# request_irq's SET_IRQ_TYPE (rising) goes through; the next one, of the
# retype to falling, is held
ctl 0 fault hold type=set_irq_type line=$line skip=1 count=1 >/dev/null
(chrt -f 1 taskset -c 1 insmod "$CONSUMER_KO" label="$vdev" line=$line trigger=rising retype=falling \
	2>"$tmp/insmod.err"; r=$?; _now_ms; echo $NOW_MS >"$tmp/inserted"; exit $r) &
ins=$!
held=0
WAIT_S=60 wait_for line_is 0 $line pending 1 && held=1
# (its pid from /proc: no procps needed; the subshell's child, through
# chrt's and taskset's execs)
ipid=
for d in /proc/[0-9]*; do
	{ read -r c <"$d/comm" && read -r st <"$d/stat"; } 2>/dev/null || continue
	st=${st##*) }
	st=${st#* }
	[ "$c" = insmod ] && [ "${st%% *}" = "$ins" ] && { ipid=${d#/proc/}; break; }
done
stack_of() { head -n 7 /proc/"$1"/stack 2>/dev/null | sed 's/^\[<0>\] //; s/+0x.*//' | tr '\n' ' '; }
log "insmod ($ipid) waits: $(stack_of "$ipid")"
# The busy loop writes when it began, runs $hog_s s, writes when it ended;
# the unbind starts once it runs.
chrt -f 99 taskset -c 1 bash -c \
	"echo \${EPOCHREALTIME/[.,]/}; e=\$((SECONDS + $hog_s + 1)); while [ \$SECONDS -lt \$e ]; do :; done; echo \${EPOCHREALTIME/[.,]/}" \
	>"$tmp/hog" &
hog=$!
looping=0
wait_for eval "[ -s $tmp/hog ]" && looping=1
_now_ms
t0=$NOW_MS
(echo "$vdev" >"$drv/unbind"; _now_ms; echo $NOW_MS >"$tmp/unbound") 2>"$tmp/unbind.err" &
ub=$!
# The C driver's unbind waits uninterruptibly for the held answer (its irq
# bus lock is a mutex held from irq_bus_lock to the answer): the test
# releases the answer after a while.
WAIT_S=$((hog_s / ${VGPIO_TIME_SCALE:-1} + 10)) wait_for eval "! running $ub"
# (where the insmod task is once the unbind returned: still in the driver
# means removal freed what it is about to use)
after=$(stack_of "$ipid")
stuck=0
if running $ub; then
	stuck=1
	log "unbind still running: $(stack_of "$ub")"
	ctl 0 release >/dev/null
	WAIT_S=60 wait_for eval "! running $ub"
fi
wait $hog
WAIT_S=60 wait_for eval "! running $ins"
wait $ins
rc=$?
hog_start= hog_end=
{ read -r hog_start; read -r hog_end; } <"$tmp/hog"
hog_start=$((${hog_start:-0} / 1000)) hog_end=$((${hog_end:-0} / 1000))
unbound=$(cat "$tmp/unbound" 2>/dev/null || echo 0)
inserted=$(cat "$tmp/inserted" 2>/dev/null || echo 0)
log "held=$held; the busy loop from $((hog_start - t0)) to $((hog_end - t0)) ms; unbind returned at $((unbound - t0)) ms, insmod at $((inserted - t0)) ms (returned $rc); insmod when the unbind returned: ${after:-out of the kernel} ($(cat "$tmp/insmod.err")); unbind: $(cat "$tmp/unbind.err")"
check "a SET_IRQ_TYPE of irq_set_irq_type held by the device" eval "[ $held = 1 ]"
check_xfail_c "unbind returns only after a task woken in irq_bus_sync_unlock has left it" \
	"its unbind waits for the device's answer (a mutex from irq_bus_lock to the answer, uninterruptible)" \
	eval "[ $stuck = 0 ] && [ -n \"$ipid\" ] && [ $looping = 1 ] && [ $hog_end -gt $t0 ] && [ $unbound -ge $hog_end ] && [[ \"\$after\" != *gpio_virtio* ]]"
rmmod vgpio_irq_consumer 2>/dev/null
ctl 0 fault clear >/dev/null
ctl 0 release >/dev/null
echo "$vdev" >"$drv/bind"
check "the device binds again and works" eval "wait_chip 0 && [ \"\$(gpioget \$(chip_of 0) 0)\" != '' ]"
rm -rf "$tmp"
vgpio_finished
