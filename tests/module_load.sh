#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drivers: rust c
#
# The driver module unloads and loads again in the guest, unbinding and
# binding every virtio-gpio device, and the C reference module loads from the
# test kernel's own modules.
. "$VGPIO_TOP/tests/lib.sh"

ktap_print_header
ktap_set_plan 5

check "driver bound to device 0 after load" wait_for driver_bound 0
check "rmmod $MODULE" rmmod "$MODULE"
check "device 0 unbound after rmmod" wait_for eval '! driver_bound 0'
check "insmod $(basename "$MODULE_KO")" insmod "$MODULE_KO"
check "device 0 bound again" wait_for driver_bound 0
vgpio_finished
