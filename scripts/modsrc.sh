#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/modsrc.sh DIR: a copy of the module's sources and of the test
# modules in DIR, to build against a kernel the work tree's .ko is not for
# (make buildcheck, make bench, make ARCH=arm64) without touching that .ko.
# The sources are copied anew (a file gone from the work tree goes here
# too), with their times; what was built from them stays (kbuild rebuilds
# what changed), and so do other files in DIR (the arm64 vgpio-bench). The
# files kbuild generates (the bindings, *.mod.c) are neither copied nor
# removed: the work tree's are for its own kernel.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
SRC=$1
mkdir -p "$SRC/tests/modules"
[ "$(cd "$SRC" && pwd -P)" != "$(cd "$TOP" && pwd -P)" ] ||
	{ echo "modsrc.sh: $SRC is the work tree itself" >&2; exit 2; }
# sources DIR: the module's source files under DIR, relative to it
sources() {
	(cd "$1" && for f in Kbuild Kconfig ./*.rs ./*.c ./*.h driver/*.rs wrappers/*.rs \
		tests/modules/Kbuild tests/modules/*.c; do
		case "$f" in
		./gpio_virtio_bindings.rs | *.mod.c) ;;
		*) if [ -e "$f" ]; then echo "${f#./}"; fi ;;
		esac
	done)
}
sources "$SRC" | (cd "$SRC" && xargs -r rm -f)
sources "$TOP" | (cd "$TOP" && xargs -r cp --parents --preserve=timestamps -t "$SRC")
