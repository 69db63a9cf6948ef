#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make lint: the driver's Rust, formatted as the kernel's .rustfmt.toml says
# (rustfmt --check) and clean under the kernel's own clippy lint set (a
# CLIPPY=1 build of the module); any finding fails. Uses the kernel tree
# named by KDIR, else the cached test kernel of $KERNEL.
#
#   scripts/lint.sh               lint (and build) the module in place
#   scripts/lint.sh --copy DIR    copy the module's sources and the test
#                                 modules to DIR and build and lint them
#                                 there (make buildcheck: a kernel the work
#                                 tree's .ko is not for)
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH
KDIR=${KDIR:-$("$TOP/scripts/kernel.sh" dir)}
SRC=$TOP
if [ "${1:-}" = --copy ]; then
	SRC=$2
	"$TOP/scripts/modsrc.sh" "$SRC" || exit 1
fi
rc=0

files=("$SRC"/gpio_virtio.rs "$SRC"/virtio_gpio_uapi.rs "$SRC"/driver/*.rs "$SRC"/wrappers/*.rs)
if ! /usr/bin/rustfmt --check --config-path "$KDIR/.rustfmt.toml" --edition 2021 "${files[@]}"; then
	echo "lint: rustfmt would change the lines above"
	rc=1
fi

# The object is rebuilt by clippy-driver (the same rustc), so it must go.
rm -f "$SRC"/gpio_virtio.o
# (the Makefile's own module rule; CLIPPY reaches the kernel's make)
log=$(make -C "$TOP" KDIR="$KDIR" MODSRC="$SRC" CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver modules 2>&1)
st=$?
if [ $st != 0 ] || grep -qE '^(warning|error)' <<<"$log"; then
	grep -vE '^make|^  [A-Z]+ ' <<<"$log"
	echo "lint: clippy found the above (build status $st)"
	rc=1
fi
if [ "$SRC" != "$TOP" ]; then
	make -C "$TOP" KDIR="$KDIR" MODSRC="$SRC" testmods >"$SRC/testmods.log" 2>&1 ||
		{ tail -n 20 "$SRC/testmods.log"; echo "lint: the test modules do not build"; rc=1; }
fi
[ $rc = 0 ] && echo "lint: rustfmt and clippy clean ($(basename "$KDIR" ) $(make -s -C "$KDIR" kernelversion 2>/dev/null))"
exit $rc
