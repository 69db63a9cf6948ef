#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Every device of the guest (four in make check) busy at once: a writer
# reading back on each, edge trains watched on each; the last device is
# unbound mid-run. Its users get errors, the others lose nothing.
# The C driver watches edges on device 0 only: on its other devices the
# first interrupt oopses (one static irq_chip shared by all chips, see
# irq_many_lines).
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 5

BENCH=$VGPIO_TOP/bench/vgpio-bench
n=$VGPIO_DEVICES
last=$((n - 1))
secs=12
edges=250
tmp=$(mktemp -d)
for i in $(seq 0 $last); do wait_chip "$i"; done
log "$n devices: $(for i in $(seq 0 $last); do printf '%s ' "$(chip_of "$i")"; done)"
if [ "$n" -lt 2 ]; then
	ktap_test_skip "needs two devices or more"
	exit 4
fi
watch() { [ "$DRIVER" = rust ] || [ "$1" = 0 ]; }
mark=$(dmesg_mark)

# The watchers and their edge trains first (a control command is slow once
# the writers load the guest), then the writers.
for i in $(seq 0 $last); do
	watch "$i" || continue
	ctl "$i" set 5 0 >/dev/null
	"$BENCH" count "$(chip_of "$i")" 5 $((secs + 30)) $edges >"$tmp/count.$i" 2>&1 &
done
for i in $(seq 0 $last); do
	watch "$i" || continue
	wait_for eval "grep -q armed $tmp/count.$i"
	wait_for eval '[ "$(line_state '"$i"' 5 queued)" = 1 ]'
done
for i in $(seq 0 $last); do
	watch "$i" && ctl "$i" edges 5 $edges 40000 >/dev/null
done
for i in $(seq 0 $last); do
	"$BENCH" hammer "$(chip_of "$i")" 4 "$secs" >"$tmp/hammer.$i" 2>&1 &
done
sleep $((secs / 3))
t0=$(date +%s)
echo "$(vdev_of $last)" >/sys/bus/virtio/drivers/"$DRV_NAME"/unbind
log "device $last unbound mid-run in $(($(date +%s) - t0)) s"
wait

check_c_known "$mark" "devices still bound: every value read back right, no error" \
	all_match 'mismatches=0 errors=0' $(for i in $(seq 0 $((last - 1))); do echo "$tmp/hammer.$i"; done)
check_c_known "$mark" "devices still bound: every edge reported (of $edges each)" \
	all_match "events=$edges\$" $(for i in $(seq 0 $((last - 1))); do watch "$i" && echo "$tmp/count.$i"; done)
log "device $last (removed): $(cat "$tmp/hammer.$last")"
check "the removed device's user got errors, no wrong value" \
	eval "grep -q 'mismatches=0 errors=[1-9]' $tmp/hammer.$last"
echo "$(vdev_of $last)" >/sys/bus/virtio/drivers/"$DRV_NAME"/bind
check "the removed device comes back" wait_chip $last
ctl $last set 6 1 >/dev/null
check "and works" eval "[ \"\$(gpioget $(chip_of $last) 6)\" = 1 ]"
rm -rf "$tmp"
vgpio_finished
