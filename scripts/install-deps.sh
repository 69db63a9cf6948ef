#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the build, the guest runner and the tests need on a fresh
# Debian 12 (bookworm) machine. Idempotent: a second run checks and says so.
set -euo pipefail
export PATH=/usr/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH

BINDGEN_VERSION=0.71.1
VNG_VERSION=1.42

APT_PKGS=(
	linux-source-6.12 rustc-web rust-web-src rust-web-clippy rustfmt-web
	clang lld llvm libclang-dev
	flex bison bc libelf-dev libssl-dev cpio dwarves python3 python3-pip make
	udev gpiod kmod busybox-static socat
)
# Rust on Linux 7.3 needs LLVM >= 17 (bindgen's libclang too): bookworm's 19
[ "${KERNEL:-7.3}" = 6.12 ] || APT_PKGS+=(clang-19 lld-19 llvm-19 libclang-19-dev)
BACKPORTS_PKGS=(qemu-system-x86)
QEMUS=(qemu-system-x86_64)
# arm64 guests (VGPIO_ARCH=arm64): QEMU's aarch64 system emulator, an arm64
# root made without running arm64 code, a cross compiler for static tools
if [ "${VGPIO_ARCH:-x86_64}" = arm64 ]; then
	APT_PKGS+=(mmdebstrap gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
	BACKPORTS_PKGS+=(qemu-system-arm)
	QEMUS+=(qemu-system-aarch64)
fi
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.sources

say() { echo "install-deps: $*"; }
log=${TMPDIR:-/tmp}/vgpio-install-deps.log
# apt's own output goes to $log; on failure its tail is shown.
quiet() { "$@" >>"$log" 2>&1 || { tail -n 30 "$log"; say "failed: $* (log: $log)"; exit 1; }; }

missing_apt() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
			echo "$p"
	done
}

qemu_ok() {
	local q
	for q in "${QEMUS[@]}"; do
		command -v "$q" >/dev/null && "$q" --version | grep -qE 'version (9|[1-9][0-9])\.' ||
			return 1
	done
}

bindgen_ok() {
	command -v bindgen >/dev/null && bindgen --version | grep -q "$BINDGEN_VERSION"
}

vng_ok() { vng --version >/dev/null 2>&1; }

did=0
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

mapfile -t need < <(missing_apt "${APT_PKGS[@]}")
if [ "${#need[@]}" -gt 0 ] || ! qemu_ok; then
	if [ ! -e "$BACKPORTS_LIST" ]; then
		uri=$(awk '/^URIs:/ && $2 ~ /debian$/ {print $2; exit}' \
			/etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
		[ -n "$uri" ] || uri=http://deb.debian.org/debian
		say "adding bookworm-backports from $uri"
		printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$uri" | $SUDO tee "$BACKPORTS_LIST" >/dev/null
	fi
	say "apt-get update"
	quiet $SUDO apt-get update -qq
	if [ "${#need[@]}" -gt 0 ]; then
		say "installing ${need[*]}"
		quiet $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "${need[@]}"
	fi
	if ! qemu_ok; then
		say "installing ${BACKPORTS_PKGS[*]} from bookworm-backports"
		quiet $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends -t bookworm-backports "${BACKPORTS_PKGS[@]}"
	fi
	did=1
fi

# vng needs udevd running on the host-side root it shares with the guest only
# as a binary; nothing to start here.

if ! bindgen_ok; then
	say "installing bindgen-cli $BINDGEN_VERSION from crates.io"
	quiet cargo install --locked bindgen-cli --version "$BINDGEN_VERSION"
	did=1
fi

if ! vng_ok; then
	say "installing virtme-ng $VNG_VERSION from PyPI"
	# Debian's pip refuses the system Python without the second form
	pip3 install --quiet "virtme-ng==$VNG_VERSION" >>"$log" 2>&1 ||
		quiet pip3 install --quiet --break-system-packages "virtme-ng==$VNG_VERSION"
	did=1
fi

if [ "$did" = 0 ]; then
	say "all dependencies already installed; nothing to do"
else
	say "done"
fi
