#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test kernel: Debian's linux-source-6.12, virtme-ng's minimal config plus
# kernel/config.fragment, built with LLVM=1 and Debian's /usr/bin/rustc.
# Cached under ~/.cache/virtio-gpio-rs/ keyed by the kernel version, the
# fragment and the tool versions; rebuilt only when the key changes.
#
#   scripts/kernel.sh dir     print the cached tree's path (built or not)
#   scripts/kernel.sh build   build it unless the cache already holds it
set -euo pipefail

# Bump when the recipe below changes in a way the key does not see.
RECIPE=3
TOP=$(cd "$(dirname "$0")/.." && pwd)
FRAGMENT=$TOP/kernel/config.fragment
CACHE=${VGPIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-gpio-rs}
TARBALL=/usr/src/linux-source-6.12.tar.xz
export PATH=/usr/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH

make_args() {
	echo LLVM=1 RUSTC=/usr/bin/rustc BINDGEN="$(command -v bindgen)"
}

key() {
	{
		echo "recipe $RECIPE"
		dpkg-query -W -f='${Version}\n' linux-source-6.12
		cat "$FRAGMENT"
		/usr/bin/rustc --version
		bindgen --version
		clang --version | head -n1
		vng --version
	} 2>&1 | sha256sum | cut -c1-16
}

kdir() {
	echo "$CACHE/kernel-$(key)/linux"
}

check_config() {
	local line sym val bad=0
	while read -r line; do
		case "$line" in
		CONFIG_*=*)
			sym=${line%%=*}
			val=${line#*=}
			grep -qx "$sym=$val" .config || { echo "kernel.sh: $sym=$val did not stick" >&2; bad=1; }
			;;
		"# CONFIG_"*" is not set")
			sym=${line#\# }
			sym=${sym%% *}
			! grep -qE "^$sym=" .config || { echo "kernel.sh: $sym should be off" >&2; bad=1; }
			;;
		esac
	done <"$FRAGMENT"
	return $bad
}

build() {
	local dir top start
	dir=$(kdir)
	top=$(dirname "$dir")
	if [ -e "$top/.built" ]; then
		echo "kernel.sh: cached test kernel at $dir"
		return 0
	fi
	start=$(date +%s)
	echo "kernel.sh: building the test kernel in $dir (no cache for key $(basename "$top"))"
	rm -rf "$top"
	mkdir -p "$top"
	tar -C "$top" -xf "$TARBALL"
	mv "$top"/linux-source-6.12 "$dir"
	cd "$dir"
	# vng writes its minimal bootable config into .config
	vng --kconfig >"$top/config.log" 2>&1 || { cat "$top/config.log"; exit 1; }
	scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" >>"$top/config.log" 2>&1 ||
		{ tail -n 30 "$top/config.log"; exit 1; }
	# shellcheck disable=SC2046
	make $(make_args) olddefconfig >/dev/null
	check_config
	# shellcheck disable=SC2046
	make $(make_args) rustavailable
	# shellcheck disable=SC2046
	make $(make_args) -j"$(($(nproc) + 1))" >"$top/build.log" 2>&1 ||
		{ tail -n 60 "$top/build.log"; exit 1; }
	make -C tools/gpio -j"$(nproc)" >>"$top/build.log" 2>&1 ||
		{ tail -n 30 "$top/build.log"; exit 1; }
	touch "$top/.built"
	echo "kernel.sh: built in $(($(date +%s) - start)) s"
}

case "${1:-}" in
dir) kdir ;;
build) build ;;
*) echo "usage: $0 dir|build" >&2; exit 2 ;;
esac
