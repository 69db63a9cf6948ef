#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make lint: the driver's Rust, formatted as the kernel's .rustfmt.toml says
# (rustfmt --check) and clean under the kernel's own clippy lint set (a
# CLIPPY=1 build of the module); any finding fails. Uses the kernel tree
# named by KDIR, else the cached test kernel.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH
KDIR=${KDIR:-$("$TOP/scripts/kernel.sh" dir)}
rc=0

files=("$TOP"/gpio_virtio.rs "$TOP"/virtio_gpio_uapi.rs "$TOP"/driver/*.rs "$TOP"/wrappers/*.rs)
if ! /usr/bin/rustfmt --check --config-path "$KDIR/.rustfmt.toml" --edition 2021 "${files[@]}"; then
	echo "lint: rustfmt would change the lines above"
	rc=1
fi

# The object is rebuilt by clippy-driver (the same rustc), so it must go.
rm -f "$TOP"/gpio_virtio.o
# (the Makefile's own module build; CLIPPY reaches the kernel's make)
log=$(make -C "$TOP" KDIR="$KDIR" CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver modules 2>&1)
st=$?
if [ $st != 0 ] || grep -qE '^(warning|error)' <<<"$log"; then
	grep -vE '^make|^  [A-Z]+ ' <<<"$log"
	echo "lint: clippy found the above (build status $st)"
	rc=1
fi
[ $rc = 0 ] && echo "lint: rustfmt and clippy clean"
exit $rc
