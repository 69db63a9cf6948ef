#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Every device of the guest (four in make check) busy at once: a writer
# reading back on each, edge trains watched on each; the last device is
# unbound mid-run. Its users get errors, the others lose nothing.
# The removed device's watcher is held across the unbind (hold in lib.sh:
# gpiolib's double free_irq is not what this test is about).
# The C driver before 6.15 watches edges on device 0 only: on its other
# devices the first interrupt oopses (one static irq_chip shared by all
# chips, see C_SHARED_IRQCHIP in lib.sh).
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 6

n=$VGPIO_DEVICES
last=$((n - 1))
secs=$(tier 6 60)
edges=$(tier 120 1000)
# A watcher's own time limit: its paced train (an edge at most every 40 ms,
# each once the driver took the one before) ends long before.
watch_s=$((secs + 150))
tmp=$(mktemp -d)
for ((i = 0; i <= last; i++)); do wait_chip "$i"; done
log "$n devices: $(for ((i = 0; i <= last; i++)); do printf '%s ' "$(chip_of "$i")"; done)"
if [ "$n" -lt 2 ]; then
	ktap_test_skip "needs two devices or more"
	exit 4
fi
watch() { [ "$DRIVER" = rust ] || [ "$C_SHARED_IRQCHIP" = 0 ] || [ "$1" = 0 ]; }
# The edges a device's train makes, and its watcher's time limit: the last
# device's run until the unbind (its watcher ends when told the chip went).
train() { if [ "$1" = $last ]; then echo 1000000; else echo "$edges"; fi; }
limit() { if [ "$1" = $last ]; then echo 100000; else echo "$watch_s"; fi; }
mark=$(dmesg_mark)
for ((i = 0; i <= last; i++)); do ctl "$i" reset-counters >/dev/null; done

# The watchers and their edge trains first (a control command is slow once
# the writers load the guest), then the writers.
for ((i = 0; i <= last; i++)); do
	watch "$i" || continue
	ctl "$i" set 5 0 >/dev/null
	_chip "$i"
	"$BENCH" count "$_CHIP" 5 "$(limit "$i")" "$(train "$i")" >"$tmp/count.$i" 2>&1 &
	watcher[i]=$!
done
for ((i = 0; i <= last; i++)); do
	watch "$i" || continue
	wait_for file_has armed "$tmp/count.$i"
	wait_for line_is "$i" 5 queued 1
done
for ((i = 0; i <= last; i++)); do
	watch "$i" && ctl "$i" edges 5 "$(train "$i")" 40000 paced-read >/dev/null
done
# The last device's writer runs until its chip goes (ENODEV ends it).
for ((i = 0; i <= last; i++)); do
	run_s=$secs
	[ "$i" = $last ] && run_s=$((secs + 150))
	_chip "$i"
	"$BENCH" hammer "$_CHIP" 4 "$run_s" >"$tmp/hammer.$i" 2>&1 &
done
# Mid-run: once every writer is at work on its device (20 requests on its
# line), however long they took to start.
busy() {
	local i
	for ((i = 0; i <= last; i++)); do
		_ctl "$i" counters 4
		[ "$(field requests "$_CTL_REPLY")" -ge 20 ] || return 1
	done
}
WAIT_S=60 wait_for busy || log "not every writer at work: $(for ((i = 0; i <= last; i++)); do printf '%s ' "$(field requests "$(ctl "$i" counters 4)")"; done)"
held= sent=
if watch $last && running "${watcher[last]}"; then
	sent=${watcher[last]}
	hold "$sent" && held=$sent
fi
t0=$EPOCHSECONDS
_vdev $last
echo "$_VDEV" >/sys/bus/virtio/drivers/"$DRV_NAME"/unbind
log "device $last unbound mid-run in $((EPOCHSECONDS - t0)) s"
[ -n "$sent" ] && kill -CONT "$sent"
ctl $last stop 5 >/dev/null
wait

check_c_known "$mark" "devices still bound: every value read back right, no error" \
	all_match 'mismatches=0 errors=0' $(for ((i = 0; i < last; i++)); do echo "$tmp/hammer.$i"; done)
check_c_known "$mark" "devices still bound: every edge reported (of $edges each)" \
	all_match "events=$edges\$" $(for ((i = 0; i < last; i++)); do watch "$i" && echo "$tmp/count.$i"; done)
log "device $last (removed): $(cat "$tmp/hammer.$last")"
check "the removed device's user got errors, no wrong value" \
	eval "grep -q 'mismatches=0 errors=[1-9]' $tmp/hammer.$last"
if watch $last; then
	log "device $last (removed): watcher: $(tr '\n' ' ' <"$tmp/count.$last")"
	check "the removed device's watcher was told the chip went" \
		eval "[ -n \"$held\" ] && grep -qx gone $tmp/count.$last"
else
	ktap_test_skip "the removed device's watcher was told the chip went (the C driver watches device 0 only here)"
fi
_vdev $last
echo "$_VDEV" >/sys/bus/virtio/drivers/"$DRV_NAME"/bind
check "the removed device comes back" wait_chip $last
ctl $last set 6 1 >/dev/null
check "and works" eval "[ \"\$(gpioget $(chip_of $last) 6)\" = 1 ]"
rm -rf "$tmp"
vgpio_finished
