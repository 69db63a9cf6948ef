#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rootfs.sh ARCH: the guest root for a guest of another architecture than
# the host's (virtme-ng shares the host's root with a guest of its own
# architecture; for arm64 on this x86 host it needs one of arm64 binaries).
# Made once with mmdebstrap's extract variant (it only unpacks Debian's
# packages: nothing of the target architecture runs on the host, so no
# emulator is needed), fixed up for what the skipped maintainer scripts
# would have done, and cached under ~/.cache/virtio-gpio-rs/ keyed by the
# package list. Prints the root's path.
#
# What the guest needs from it: virtme-ng's shell init (bash, env, mount,
# coreutils, grep, sed, setsid, poweroff), and what the tests run (gpiod's
# tools, kmod's insmod/rmmod, procps, awk, find).
set -euo pipefail

ARCH=${1:-arm64}
# Bump when the recipe below changes in a way the key does not see.
RECIPE=1
PKGS=(base-files base-passwd bash dash coreutils util-linux mount grep sed
	mawk findutils procps kmod gpiod busybox-static iproute2)
CACHE=${VGPIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-gpio-rs}
key=$(printf '%s\n' "recipe $RECIPE" "$ARCH" bookworm "${PKGS[@]}" | sha256sum | cut -c1-16)
root=$CACHE/rootfs-$ARCH-$key

if [ ! -e "$root/.done" ]; then
	uri=$(awk '/^URIs:/ && $2 ~ /debian$/ {print $2; exit}' \
		/etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$uri" ] || uri=http://deb.debian.org/debian
	rm -rf "$root"
	mkdir -p "$CACHE"
	log=$CACHE/rootfs-$ARCH-$key.log
	echo "rootfs.sh: making the $ARCH guest root in $root" >&2
	mmdebstrap --variant=extract --architectures="$ARCH" \
		--include="$(IFS=,; echo "${PKGS[*]}")" \
		bookworm "$root" "deb $uri bookworm main" >"$log" 2>&1 ||
		{ tail -n 30 "$log" >&2; exit 1; }
	# what base-passwd's and the alternatives' maintainer scripts make
	cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
	cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
	: >"$root/etc/shadow"
	: >"$root/etc/fstab"
	ln -sf mawk "$root/usr/bin/awk"
	# Debian's busybox-static ships no applet links: poweroff ends the
	# guest (virtme-ng's init calls it)
	ln -sf /bin/busybox "$root/sbin/poweroff"
	touch "$root/.done"
fi
echo "$root"
