#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# first-run-proof.sh [TARGET]: run the README's command TARGET (default
# `check`, through .ci/run) the way a new machine of this project's kind
# sees it, and time it:
#   - a clean clone of this repository's HEAD in a new folder;
#   - an empty kernel cache (VGPIO_CACHE), so the test kernel is built (and
#     .ci/run's 7.3 tree fetched and prepared for modules);
#   - bindgen deleted and a new, empty CARGO_HOME: no crate downloaded yet
#     (cargo itself stays: the machine kind has it, from rustup);
#   - virtme-ng uninstalled (pip), and the Debian packages the installer
#     brings that nothing else on the machine needs (leaves) removed, so the
#     installer must put them back.
# Debian packages other packages depend on (clang, rustc-web, qemu) stay:
# removing them here would take parts of the machine with them. What the
# installer does for those was proven on a machine that had none of them
# (see README.md, "First run").
#
# --keep-kernel: the new kernel cache starts with (hard links to) this
# machine's cached kernels, so only the installer, the builds and the
# command itself are proven (for a change that does not touch how the
# kernel is built; the kernel's key still has to come out the same).
#
# Destructive for this machine's tools (it reinstalls them): meant for a CI
# machine or a throwaway one. Asks first unless --yes.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
yes=0 keep_kernel=0
[ "${1:-}" = --yes ] && { yes=1; shift; }
[ "${1:-}" = --keep-kernel ] && { keep_kernel=1; shift; }
target=${1:-check}
LEAVES=(gpiod socat busybox-static linux-source-6.12 rust-web-clippy rustfmt-web
	clang-19 lld-19 llvm-19 libclang-19-dev)

if [ "$yes" != 1 ]; then
	read -r -p "This removes ${LEAVES[*]} and virtme-ng from this machine (the run reinstalls them). Go on? [y/N] " a
	[ "$a" = y ] || exit 1
fi
proof=$(mktemp -d /tmp/vgpio-first-run.XXXXXX)
echo "first-run-proof: in $proof"
git clone -q "$TOP" "$proof/src"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "${LEAVES[@]}" >/dev/null
for pip in pip3 /usr/bin/pip3; do
	$pip uninstall -y -q virtme-ng 2>/dev/null ||
		$pip uninstall -y -q --break-system-packages virtme-ng 2>/dev/null || true
done
# pyenv keeps a shim for a program it no longer has until rehashed
command -v pyenv >/dev/null && pyenv rehash
hash -r
if vng --version >/dev/null 2>&1; then
	echo "first-run-proof: vng is still installed at $(command -v vng)" >&2
	exit 1
fi
# bindgen goes (the installer builds it again, into the new CARGO_HOME)
rm -f "${CARGO_HOME:-$HOME/.cargo}/bin/bindgen" "$HOME/.cargo/bin/bindgen"
old_cache=${VGPIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-gpio-rs}
export CARGO_HOME=$proof/cargo VGPIO_CACHE=$proof/cache
mkdir -p "$CARGO_HOME"
if [ "$keep_kernel" = 1 ] && [ -d "$old_cache" ]; then
	cp -al "$old_cache" "$VGPIO_CACHE"
	echo "first-run-proof: kernel cache kept: $(ls "$VGPIO_CACHE" | tr '\n' ' ')"
fi
hash -r
if command -v bindgen >/dev/null; then
	echo "first-run-proof: bindgen is still reachable at $(command -v bindgen)" >&2
	exit 1
fi
cd "$proof/src"
start=$(date +%s)
rc=0
if [ "$target" = check ]; then
	.ci/run || rc=$?
else
	make "$target" || rc=$?
fi
echo "first-run-proof: make $target from nothing: exit $rc after $(($(date +%s) - start)) s"
exit $rc
