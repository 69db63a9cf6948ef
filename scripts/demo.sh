#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: boot a guest with one virtio-gpio device (8 lines; line 0 wired
# to line 1 inside the simulator) and show the Rust driver at work.
TOP=$(cd "$(dirname "$0")/.." && pwd)
out=$TOP/out/demo-$(date +%Y%m%d-%H%M%S)
"$TOP/scripts/run-guest.sh" --out "$out" --sim "--lines 8 --wire 0:1" -- \
	bash "$TOP/tests/demo-guest.sh"
rc=$?
sed -n '/^=== demo/,/^=== end of demo/p' "$out/console.log" | grep -v '^\[' 
exit $rc
