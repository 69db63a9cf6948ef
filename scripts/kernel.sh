#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test kernel: Debian's linux-source-$KERNEL, virtme-ng's minimal config
# plus kernel/config.fragment, built with clang and Debian's /usr/bin/rustc.
# Cached under ~/.cache/virtio-gpio-rs/ keyed by the kernel version, the
# fragment and the tool versions; rebuilt only when the key changes.
#
#   KERNEL=6.12            Debian 12's linux-source-6.12, clang 14 (LLVM=1)
#   KERNEL=7.3 (default)   linux-source-7.3 from trixie-backports, fetched into
#                          the cache; Rust on 7.3 needs LLVM >= 17, so clang 19
#                          from bookworm (LLVM=-19, bindgen on libclang 19)
#   VGPIO_ARCH=x86_64 (default) or arm64: arm64 is cross-built on this x86
#                          host with LLVM (ARCH=arm64), from vng's arm64
#                          config with the kernel's virt.config (no SoC
#                          platforms) and kernel/arm64.fragment on top
#   FLAVOUR=test (default) the debug test kernel (kernel/config.fragment)
#   FLAVOUR=prod           the same with kernel/prod.fragment on top: the
#                          debug options off, as a distribution ships it
#                          (make bench)
#
#   scripts/kernel.sh dir        print the cached tree's path (built or not)
#   scripts/kernel.sh build      build it unless the cache already holds it
#   scripts/kernel.sh prepare    only as far as building modules needs
#   scripts/kernel.sh make-args  the toolchain arguments for make -C <tree>
#   scripts/kernel.sh env        the environment those need (sh assignments)
set -euo pipefail

# Bump when the recipe below changes in a way the key does not see.
RECIPE=3
TOP=$(cd "$(dirname "$0")/.." && pwd)
FRAGMENT=$TOP/kernel/config.fragment
FLAVOUR=${FLAVOUR:-test}
case "$FLAVOUR" in
test) FRAGMENTS=("$FRAGMENT") ;;
prod) FRAGMENTS=("$FRAGMENT" "$TOP/kernel/prod.fragment") ;;
*) echo "kernel.sh: FLAVOUR=$FLAVOUR: supported are test and prod" >&2; exit 2 ;;
esac
CACHE=${VGPIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-gpio-rs}
KERNEL=${KERNEL:-7.3}
VGPIO_ARCH=${VGPIO_ARCH:-x86_64}
case "$VGPIO_ARCH" in
x86_64) ;;
arm64) FRAGMENTS+=("$TOP/kernel/arm64.fragment") ;;
*) echo "kernel.sh: VGPIO_ARCH=$VGPIO_ARCH: supported are x86_64 and arm64" >&2; exit 2 ;;
esac
export PATH=/usr/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH

case "$KERNEL" in
6.12)
	SRCPKG=linux-source-6.12
	LLVM_ARG=1
	CLANG=clang
	# clang-sys (bindgen) picks the newest libclang it finds: with 7.3's
	# installed too that would be 19's, which rejects 6.12's clang-14 flags
	if command -v clang >/dev/null; then
		LIBCLANG_PATH=$(dirname "$(dirname "$(clang -print-resource-dir)")")
		export LIBCLANG_PATH
	fi
	;;
7.3)
	SRCPKG=linux-source-7.3
	LLVM_ARG=-19
	CLANG=clang-19
	# bindgen (the kernel's and our Kbuild's) loads libclang at run time
	export LIBCLANG_PATH=/usr/lib/llvm-19/lib
	;;
*) echo "kernel.sh: KERNEL=$KERNEL: supported are 6.12 and 7.3" >&2; exit 2 ;;
esac

make_args() {
	echo LLVM=$LLVM_ARG RUSTC=/usr/bin/rustc BINDGEN="$(command -v bindgen)"
	[ "$VGPIO_ARCH" = x86_64 ] || echo ARCH=$VGPIO_ARCH
}

# 7.3's source package is only in trixie-backports, which a bookworm machine
# does not list: fetch the .deb with apt through a private sources list and
# lists directory (the system's apt setup is not touched), once, into the cache.
SRC73=$CACHE/src/7.3
fetch73() {
	local apt=$SRC73/apt uri
	[ -e "$SRC73/version" ] && return 0
	mkdir -p "$apt/lists/partial" "$apt/archives/partial"
	uri=$(awk '/^URIs:/ && $2 ~ /debian$/ {print $2; exit}' \
		/etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$uri" ] || uri=http://deb.debian.org/debian
	printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie-backports main\n' \
		"$uri" >"$apt/sources.list"
	local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt" -o Debug::NoLocking=1
		-o APT::Sandbox::User="$(id -un)")
	apt-get "${opts[@]}" update -qq >"$apt/log" 2>&1 || { cat "$apt/log"; exit 1; }
	(cd "$SRC73" && apt-get "${opts[@]}" download "$SRCPKG" >>"$apt/log" 2>&1) ||
		{ cat "$apt/log"; exit 1; }
	dpkg-deb -f "$SRC73"/"$SRCPKG"_*.deb Version >"$SRC73/version.tmp"
	mv "$SRC73/version.tmp" "$SRC73/version"
}

src_version() {
	if [ "$KERNEL" = 6.12 ]; then
		dpkg-query -W -f='${Version}\n' linux-source-6.12
	else
		fetch73 >&2
		cat "$SRC73/version"
	fi
}

unpack() {
	local top=$1
	if [ "$KERNEL" = 6.12 ]; then
		tar -C "$top" -xf /usr/src/linux-source-6.12.tar.xz
	else
		dpkg-deb --fsys-tarfile "$SRC73"/"$SRCPKG"_*.deb |
			tar -xO ./usr/src/linux-source-7.3.tar.xz | tar -C "$top" -xJ
	fi
	mv "$top/$SRCPKG" "$top/linux"
}

key() {
	{
		echo "recipe $RECIPE"
		[ "$KERNEL" = 6.12 ] || echo "kernel $KERNEL"
		# (the x86 kernels' keys stay what they were before arm64)
		[ "$VGPIO_ARCH" = x86_64 ] || echo "arch $VGPIO_ARCH"
		src_version
		cat "$FRAGMENT"
		# (the test kernels' keys stay what they were before flavours)
		[ "$FLAVOUR" = test ] || { echo "flavour $FLAVOUR"; cat "${FRAGMENTS[@]:1}"; }
		/usr/bin/rustc --version
		bindgen --version
		$CLANG --version | head -n1
		vng --version
	} 2>&1 | sha256sum | cut -c1-16
}

kdir() {
	echo "$CACHE/kernel-$(key)/linux"
}

# The fragments' settings, a later fragment's line replacing an earlier
# one's for the same symbol.
settings() {
	awk '/^CONFIG_[A-Za-z0-9_]+=/ { s = $0; sub(/=.*/, "", s) }
		/^# CONFIG_[A-Za-z0-9_]+ is not set/ { s = $2 }
		s != "" { if (!(s in v)) order[n++] = s; v[s] = $0; s = "" }
		END { for (i = 0; i < n; i++) print v[order[i]] }' "${FRAGMENTS[@]}"
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
	done < <(settings)
	return $bad
}

# A fresh tree for the key, unpacked and configured.
configure() {
	local dir=$1 top
	top=$(dirname "$dir")
	rm -rf "$top"
	mkdir -p "$top"
	unpack "$top"
	cd "$dir"
	# vng writes its minimal bootable config into .config (for arm64: the
	# architecture's defconfig and vng's list, trimmed by the kernel's own
	# virt.config to what QEMU's virt machine has)
	if [ "$VGPIO_ARCH" = x86_64 ]; then
		vng --kconfig >"$top/config.log" 2>&1 || { cat "$top/config.log"; exit 1; }
	else
		vng --kconfig --arch "$VGPIO_ARCH" LLVM=$LLVM_ARG >"$top/config.log" 2>&1 ||
			{ cat "$top/config.log"; exit 1; }
		scripts/kconfig/merge_config.sh -m .config "arch/$VGPIO_ARCH/configs/virt.config" \
			>>"$top/config.log" 2>&1 || { tail -n 30 "$top/config.log"; exit 1; }
		# defconfig builds hundreds of modules nothing here loads: none
		# but the fragments' (the C driver's, merged below)
		# shellcheck disable=SC2046
		make $(make_args) mod2noconfig >>"$top/config.log" 2>&1
	fi
	scripts/kconfig/merge_config.sh -m .config "${FRAGMENTS[@]}" >>"$top/config.log" 2>&1 ||
		{ tail -n 30 "$top/config.log"; exit 1; }
	# shellcheck disable=SC2046
	make $(make_args) olddefconfig >/dev/null
	check_config
	# shellcheck disable=SC2046
	make $(make_args) rustavailable
	# (a build stopped after this resumes from here: see build)
	touch "$top/.configured"
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
	if [ -e "$top/.prepared" ] || [ -e "$top/.configured" ]; then
		# (make picks up where a stopped build left off: an object whose
		# compile was cut has no .cmd file, so Kbuild builds it again)
		echo "kernel.sh: building the test kernel in $dir (configured; prepared or partly built before)"
		cd "$dir"
	else
		echo "kernel.sh: building the test kernel in $dir (no cache for key $(basename "$top"))"
		configure "$dir"
	fi
	# (arm64: the Image virtme-ng boots and the modules, not the dtbs or
	# the compressed image)
	local targets=()
	[ "$VGPIO_ARCH" = x86_64 ] || targets=(Image modules)
	# shellcheck disable=SC2046
	make $(make_args) -j"$(($(nproc) + 1))" "${targets[@]}" >>"$top/build.log" 2>&1 ||
		{ tail -n 60 "$top/build.log"; exit 1; }
	# the kernel's GPIO tools, static for a guest of another architecture
	local tools=()
	[ "$VGPIO_ARCH" = x86_64 ] || tools=(CROSS_COMPILE=aarch64-linux-gnu- LDFLAGS=-static)
	make -C tools/gpio -j"$(nproc)" "${tools[@]}" >>"$top/build.log" 2>&1 ||
		{ tail -n 30 "$top/build.log"; exit 1; }
	touch "$top/.built"
	echo "kernel.sh: built in $(($(date +%s) - start)) s"
}

# Only as far as an out-of-tree module needs (modules_prepare: the config,
# the generated headers, the kernel crate): for building the module against
# a kernel the tests do not boot. There is no Module.symvers then, so
# modpost only warns about the kernel's symbols (make-args says so).
prepare() {
	local dir top start
	dir=$(kdir)
	top=$(dirname "$dir")
	if [ -e "$top/.built" ] || [ -e "$top/.prepared" ]; then
		echo "kernel.sh: cached kernel tree at $dir"
		return 0
	fi
	start=$(date +%s)
	echo "kernel.sh: preparing a $KERNEL tree for modules in $dir"
	configure "$dir"
	# shellcheck disable=SC2046
	make $(make_args) -j"$(($(nproc) + 1))" modules_prepare >"$top/build.log" 2>&1 ||
		{ tail -n 60 "$top/build.log"; exit 1; }
	touch "$top/.prepared"
	echo "kernel.sh: prepared in $(($(date +%s) - start)) s"
}

case "${1:-}" in
dir) kdir ;;
build) build ;;
prepare) prepare ;;
make-args)
	make_args
	[ -e "$(dirname "$(kdir)")/.built" ] || echo KBUILD_MODPOST_WARN=1
	;;
env) echo "LIBCLANG_PATH=${LIBCLANG_PATH:-}" ;;
*) echo "usage: $0 dir|build|prepare|make-args|env" >&2; exit 2 ;;
esac
