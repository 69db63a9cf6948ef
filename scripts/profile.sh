#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make profile: how many instructions the guest executes per operation
# with each driver, and where (bench/profile.py prints the table). QEMU
# runs the guest with a plugin of ours (bench/tbprof.c) that counts the
# instructions of every translated block it executes; the guest
# (bench/profile-guest.sh) runs each workload on each driver as a phase of
# its own and marks the phases with syncfs(2), whose entry the plugin
# watches. The kernel boots with nokaslr so that the report can name
# addresses from the guest's /proc/kallsyms. Counts, unlike times, do not
# drift with the host's speed: a difference of a few percent between two
# drivers is measurable in one run.
#
# Options: --build DIR (the modules built for the kernel scripts/kernel.sh
# names: make profile builds the production kernel's, as make bench does),
# --ops N (operations per phase, default 3000).
# Needs QEMU's plugin header for the QEMU in use (from Debian's source
# tarball of that version, cached) and glib's headers (libglib2.0-dev):
# installed here if missing, with curl and xz-utils to fetch the header.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
build=$TOP
ops=3000
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--ops) ops=$2; shift 2 ;;
	*) echo "profile: unknown option $1" >&2; exit 2 ;;
	esac
done
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
cache=${XDG_CACHE_HOME:-$HOME/.cache}/virtio-gpio-rs
need=()
pkg-config --exists glib-2.0 2>/dev/null || need+=(libglib2.0-dev pkg-config)
command -v curl >/dev/null || need+=(curl)
command -v xz >/dev/null || need+=(xz-utils)
[ ${#need[@]} = 0 ] ||
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
# Debian's version of the QEMU in use (epoch and revision off: 10.0.2+ds),
# and its upstream one (10.0.2)
debver=$(dpkg-query -W -f='${Version}' qemu-system-x86)
srcver=${debver#*:}
srcver=${srcver%-*}
upver=${srcver%+*}
hdrdir=$cache/qemu-plugin-$srcver
if [ ! -s "$hdrdir/qemu-plugin.h" ]; then
	echo "profile: fetching qemu-plugin.h from Debian's qemu_$srcver source"
	mkdir -p "$hdrdir"
	curl -fsSL "http://deb.debian.org/debian/pool/main/q/qemu/qemu_$srcver.orig.tar.xz" |
		tar -xJ -O "qemu-$upver/include/qemu/qemu-plugin.h" >"$hdrdir/qemu-plugin.h.tmp"
	mv "$hdrdir/qemu-plugin.h.tmp" "$hdrdir/qemu-plugin.h"
fi
out=$TOP/out/profile-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
# shellcheck disable=SC2046
cc -shared -fPIC -O2 -Wall -I "$hdrdir" $(pkg-config --cflags glib-2.0) \
	-o "$out/tbprof.so" "$TOP/bench/tbprof.c"
KDIR=$("$TOP/scripts/kernel.sh" dir)
export KDIR
trigger=$(awk '$3 == "__x64_sys_syncfs" { print $1 }' "$KDIR/System.map")
[ -n "$trigger" ] || { echo "profile: no __x64_sys_syncfs in $KDIR/System.map" >&2; exit 2; }
echo "kernel: $(make -s -C "$KDIR" kernelversion 2>/dev/null) (${FLAVOUR:-test}: $KDIR), QEMU $debver" |
	tee "$out/kernel.txt"
VGPIO_KERNEL_ARGS=nokaslr \
	VGPIO_QEMU_OPTS="-plugin $out/tbprof.so,trigger=$trigger,out=$out/tb" \
	"$TOP/scripts/run-guest.sh" --out "$out" --devices 2 --no-logcheck --timeout 2400 \
	--sim "--lines 32 --wire 0:1" -- \
	env VGPIO_RUST_KO="$build/gpio-virtio-rs.ko" \
	bash "$TOP/bench/profile-guest.sh" "$TOP/bench/vgpio-bench" "$ops"
grep -a '^# phase' "$out/console.log" || true
python3 "$TOP/bench/profile.py" "$out" | tee "$out/profile.txt"
