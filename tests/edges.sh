#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# Edges the device generates, driven from inside the guest through the
# control channel, reach gpiomon in number and order.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 3

wait_chip 0
chip=$(chip_of 0)
line=5
ctl 0 set $line 0 >/dev/null

gpiomon --num-events=4 "$chip" $line >/tmp/gpiomon.out 2>&1 &
pid=$!
armed() { line_is 0 $line queued 1; }
check "gpiomon arms the line's interrupt on the device" wait_for armed
# Paced: each edge once the driver has taken the one before (its eventq
# buffer is back) and read the line since (gpiomon watches both edges: the
# character device reads the line to tell them), so no two are latched or
# merged into one on a slow machine.
ctl 0 edges $line 4 100000 paced-read >/dev/null
WAIT_S=60 wait_for eval "! running $pid"
kill $pid 2>/dev/null
wait $pid 2>/dev/null
ctl 0 stop $line >/dev/null
sed 's/^/# gpiomon: /' /tmp/gpiomon.out
got=$(grep -oE 'RISING|FALLING' /tmp/gpiomon.out | tr '\n' ' ')
check "gpiomon saw 4 edges" test "$(echo $got | wc -w)" = 4
check "in order: rising, falling, rising, falling" test "$got" = "RISING FALLING RISING FALLING "
vgpio_finished
