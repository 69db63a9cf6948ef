#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/modsrc.sh DIR: a copy of the module's sources and of the test
# modules in DIR (emptied first), to build against a kernel the work tree's
# .ko is not for (make buildcheck, make bench) without touching that .ko.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
SRC=$1
rm -rf "$SRC"
mkdir -p "$SRC/tests/modules"
(cd "$TOP" && cp -r Kbuild Kconfig ./*.rs ./*.c ./*.h driver wrappers "$SRC"/)
cp "$TOP"/tests/modules/Kbuild "$TOP"/tests/modules/*.c "$SRC/tests/modules/"
