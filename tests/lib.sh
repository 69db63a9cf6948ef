#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers for the in-guest kselftests. A test sources this, runs its
# cases with the kernel's KTAP helpers and ends with vgpio_finished.
# Environment (set by scripts/run-guest.sh and tests/guest-run.sh):
#   VGPIO_TOP, VGPIO_KDIR, VGPIO_DEVICES, DRIVER (rust | c), VGPIO_BUILD
#   (where the module, the test modules and vgpio-bench were built for the
#   guest's architecture: the work tree, or a copy for arm64)

: "${VGPIO_TOP:?}" "${VGPIO_KDIR:?}"
# shellcheck source=/dev/null
. "$VGPIO_KDIR/tools/testing/selftests/kselftest/ktap_helpers.sh"

VGPIO_BUILD=${VGPIO_BUILD:-$VGPIO_TOP}
KTOOLS=$VGPIO_KDIR/tools/gpio
BENCH=${BENCH:-$VGPIO_BUILD/bench/vgpio-bench}
DRIVER=${DRIVER:-rust}
VGPIO_DEVICES=${VGPIO_DEVICES:-1}
KTAP_CNT_XFAIL=0

case "$DRIVER" in
# (VGPIO_RUST_KO: another build of the Rust module, e.g. an older commit's,
# to show that a test fails on it)
rust) MODULE=gpio_virtio_rs; MODULE_KO=${VGPIO_RUST_KO:-$VGPIO_BUILD/gpio-virtio-rs.ko}; DRV_NAME=gpio-virtio-rs ;;
c) MODULE=gpio_virtio; MODULE_KO=$VGPIO_KDIR/drivers/gpio/gpio-virtio.ko; DRV_NAME=gpio_virtio ;;
*) echo "unknown DRIVER $DRIVER" >&2; exit 1 ;;
esac

# A known bug of the driver under test makes this case fail as expected.
ktap_test_xfail() {
	__ktap_test "ok" "$1" "XFAIL $2"
	KTAP_CNT_XFAIL=$((KTAP_CNT_XFAIL + 1))
}

vgpio_finished() {
	echo "# Totals: pass:$KTAP_CNT_PASS fail:$KTAP_CNT_FAIL xfail:$KTAP_CNT_XFAIL xpass:0 skip:$KTAP_CNT_SKIP error:0"
	if [ "$KTAP_CNT_FAIL" = 0 ] &&
		[ $((KTAP_CNT_PASS + KTAP_CNT_SKIP + KTAP_CNT_XFAIL)) -eq "$KSFT_NUM_TESTS" ]; then
		exit "$KSFT_PASS"
	fi
	exit "$KSFT_FAIL"
}

# check DESCRIPTION COMMAND...: one KTAP case from a command's status.
check() {
	local d=$1
	shift
	if "$@"; then ktap_test_pass "$d"; else ktap_test_fail "$d"; fi
}

# check_xfail_c DESCRIPTION REASON COMMAND...: like check, but on the C
# driver a failure is its known bug REASON (XFAIL).
check_xfail_c() {
	local d=$1 why=$2
	shift 2
	if "$@"; then
		ktap_test_pass "$d"
	elif [ "$DRIVER" = c ]; then
		ktap_test_xfail "$d" "C driver: $why"
	else
		ktap_test_fail "$d"
	fi
}

# c_known_failure MARK: on the C driver, if the kernel log since MARK shows
# one of its known failures, say which (and succeed).
c_known_failure() {
	local l why=()
	[ "$DRIVER" = c ] || return 1
	l=$(dmesg_since "$1")
	grep -qE 'is not a head|failed to add request' <<<"$l" &&
		why+=("its requestq ring was corrupted under concurrent use (virtqueue_get_buf without the lock add_sgs holds): requests in flight never complete, later ones fail")
	[ "$C_SHARED_IRQCHIP" = 1 ] && grep -qE 'RIP: 0010:0x0|pc : (0x0|0{16})|kernel NULL pointer' <<<"$l" &&
		why+=("one static irq_chip for all its chips: an interrupt on a chip that did not install gpiolib's hooks calls a NULL irq_enable")
	# (guest-run.sh could not reload it before this test)
	[ "${VGPIO_C_STALE:-0}" = 1 ] &&
		why+=("an earlier test left its module in use, so this test ran on the state its one shared irq_chip was left in")
	[ ${#why[@]} -gt 0 ] || return 1
	local IFS=';'
	echo "${why[*]}"
}

# check_c_known MARK DESCRIPTION COMMAND...: like check, but a failure the
# C driver's known bugs explain (c_known_failure) is an XFAIL naming it.
check_c_known() {
	local mark=$1 d=$2 why
	shift 2
	if "$@"; then
		ktap_test_pass "$d"
	elif why=$(c_known_failure "$mark"); then
		ktap_test_xfail "$d" "C driver: $why"
	else
		ktap_test_fail "$d"
	fi
}

log() { echo "# $*"; }

# known_c SECONDS_RUST SECONDS_C: how long to wait for something the C
# driver is known never to do (its XFAIL cases): the Rust driver gets the
# generous bound (its wait ends as soon as the thing happens), the C driver
# only long enough to show the known failure, not minutes per case.
known_c() {
	if [ "$DRIVER" = c ]; then echo "$2"; else echo "$1"; fi
}

# tier CHECK SOAK: the loop count (or seconds) for this run's tier.
# `make check` (VGPIO_TIER=check) sizes every loop to prove its behaviour
# once: long enough to hit the race it is there for; `make soak`
# (VGPIO_TIER=soak) runs the long versions.
tier() {
	if [ "${VGPIO_TIER:-check}" = soak ]; then echo "$2"; else echo "$1"; fi
}

# The virtio device (virtioN) of simulator N: virtio-gpio devices (ID 0x0029)
# in the order of their places on the bus (PCI slot, virtio-mmio address),
# which is the order the runner added them in. Cached: the
# mapping does not change while the guest runs.
# (Found without starting a process: each costs about half a second here.)
declare -ga VDEVS=()
vdev_of() {
	if [ ${#VDEVS[@]} = 0 ]; then
		local d id i path here=$PWD
		local -a paths=()
		for d in /sys/bus/virtio/devices/*; do
			read -r id <"$d/device"
			[ "$id" = 0x0029 ] || continue
			# the device's place on its bus: its sysfs path
			cd -P "$d" 2>/dev/null || continue
			path=$PWD
			# insertion sort: a handful of devices
			for ((i = ${#paths[@]}; i > 0; i--)); do
				[[ ${paths[i - 1]} > $path ]] || break
				paths[i]=${paths[i - 1]} VDEVS[i]=${VDEVS[i - 1]}
			done
			paths[i]=$path VDEVS[i]=${d##*/}
		done
		cd "$here" || return 1
	fi
	echo "${VDEVS[$1]}"
}
# _vdev N: sets _VDEV to vdev_of N without a subshell (once the cache is
# filled, which sourcing this file does).
_vdev() {
	[ ${#VDEVS[@]} != 0 ] || vdev_of 0 >/dev/null
	_VDEV=${VDEVS[$1]:-}
}

# The gpiochip (gpiochipN) registered for simulator N, or nothing: chip_of N
# prints it; _chip N sets _CHIP to it (no subshell).
_chip() {
	local g
	_vdev "$1"
	_CHIP=
	for g in /sys/bus/virtio/devices/"$_VDEV"/gpiochip*; do
		[ -e "$g" ] && { _CHIP=${g##*/}; return 0; }
	done
	return 1
}
chip_of() { _chip "$1" && echo "$_CHIP"; }

wait_chip() { WAIT_S=60 wait_for _chip "$1"; }
no_chip() { ! _chip "$1"; }
wait_no_chip() { WAIT_S=60 wait_for no_chip "$1"; }

# The control port of simulator N inside the guest (cached): port_of N
# prints it; _port N sets _PORT to it (no subshell).
declare -gA PORTS=()
_port() {
	if [ -z "${PORTS[$1]:-}" ]; then
		local d name
		for d in /sys/class/virtio-ports/*; do
			read -r name <"$d/name" 2>/dev/null || continue
			[[ $name == vgpio-ctl* ]] && PORTS[${name#vgpio-ctl}]=/dev/${d##*/}
		done
	fi
	_PORT=${PORTS[$1]:-}
}
port_of() { _port "$1"; echo "$_PORT"; }

# nap SECONDS: sleep without starting a process (in this guest, under TCG
# with the debug kernel, every process start costs about half a second:
# polling loops must not start one per round). A read that times out on a
# FIFO nobody writes to.
_NAP_FD=
nap() {
	if [ -z "$_NAP_FD" ]; then
		local f=/tmp/vgpio-nap.$BASHPID.$RANDOM
		mkfifo "$f" && exec {_NAP_FD}<>"$f"
		rm -f "$f"
		[ -n "$_NAP_FD" ] || { sleep "$1"; return 0; }
	fi
	read -r -t "$1" -u "$_NAP_FD" _ || :
}

# _ctl N COMMAND...: as ctl, but prints nothing: the answers are in
# _CTL_OUT (one per line), the last one in _CTL_REPLY. No subshell needed.
# ctl N COMMAND...: one control command to simulator N; prints the answer;
# status 0 for "ok ...", 1 for "err ...", 2 for no answer within a minute
# (the guest may be loaded and slow). ctl N - sends each line of standard
# input as a command. Done in bash rather than by the simulator's own
# client (`$SIM ctl`, which works the same way): a process start per
# command made the tests' polling loops slow. A virtio-serial port has one
# opener at a time (EBUSY): wait for our turn. Each command carries a tag
# its answer repeats, so an answer left over from a client that gave up is
# skipped.
ctl() {
	local rc=0
	_ctl "$@" || rc=$?
	[ -z "$_CTL_OUT" ] || printf '%s\n' "$_CTL_OUT"
	return $rc
}
_ctl() {
	local n=$1 fd= line tag i=0 rc=0 c end
	local -a cmds
	_CTL_OUT= _CTL_REPLY=
	shift
	_port "$n"
	[ -n "$_PORT" ] || { echo "ctl: no control port for device $n" >&2; return 2; }
	if [ "$*" = - ]; then
		mapfile -t cmds
	else
		cmds=("$*")
	fi
	end=$((SECONDS + 60))
	until exec {fd}<>"$_PORT"; do
		[ "$SECONDS" -lt "$end" ] || { echo "ctl: $_PORT stays busy" >&2; return 2; }
		nap 0.01
	done 2>/dev/null
	for c in "${cmds[@]}"; do
		[ -n "${c// /}" ] || continue
		i=$((i + 1))
		tag=@$BASHPID.$RANDOM.$i
		printf '%s %s\n' "$tag" "$c" >&"$fd"
		while :; do
			if ! IFS= read -r -t 60 -u "$fd" line; then
				echo "ctl: no answer to '$c'" >&2
				exec {fd}>&-
				return 2
			fi
			[[ $line == "$tag "* ]] && break
		done
		line=${line#"$tag "}
		_CTL_OUT+=${_CTL_OUT:+$'\n'}$line
		_CTL_REPLY=$line
		[[ $line == ok* ]] || rc=1
	done
	exec {fd}>&-
	return $rc
}

# file_has TEXT FILE: does a line of FILE contain TEXT? (grep -qF without
# starting a process, for polling loops)
file_has() {
	local l
	while IFS= read -r l || [ -n "$l" ]; do
		[[ $l == *"$1"* ]] && return 0
	done <"$2"
	return 1
}

# field KEY "k=v k=v ...": the value of KEY.
field() {
	local kv
	for kv in $2; do
		[[ $kv == "$1="* ]] && { echo "${kv#*=}"; return 0; }
	done
}

# line_state N LINE KEY: one field of `ctl N get LINE`.
line_state() { _ctl "$1" get "$2"; field "$3" "$_CTL_REPLY"; }

# line_is N LINE KEY VALUE: does `ctl N get LINE` say KEY=VALUE?
line_is() {
	_ctl "$1" get "$2"
	[[ " $_CTL_REPLY " == *" $3=$4 "* ]]
}

# line_settled N LINE: simulator N has made every edge of the line's trains
# and holds its eventq buffer again, so no event of the line is in flight
# (the driver requeues the buffer once the line's handlers are done, and the
# device delivers a latched edge as soon as it has it).
line_settled() {
	_ctl "$1" get "$2"
	[[ " $_CTL_REPLY " == *" edges=0 "* && " $_CTL_REPLY " == *" queued=1 "* ]]
}

driver_bound() {
	_vdev "$1"
	[ /sys/bus/virtio/devices/"$_VDEV"/driver -ef /sys/bus/virtio/drivers/"$DRV_NAME" ]
}

vgpio_load() {
	[ -e /sys/module/"$MODULE" ] || insmod "$MODULE_KO" || return 1
}

vgpio_unload() {
	[ ! -e /sys/module/"$MODULE" ] || rmmod "$MODULE"
}

# Wait until a condition holds: poll for up to WAIT_S seconds (default 30),
# bounded in time however long one check takes. The bound is for a machine
# many times slower than the one the tests were written on (TCG, KASAN: a
# process start-up can take 100+ ms, a gpioget seconds); a condition that
# holds ends the wait at once, so only a failure costs the whole bound.
# VGPIO_TIME_SCALE (the runner's, e.g. 3 for an emulated arm64 guest)
# multiplies it.
wait_for() {
	local end=$((SECONDS + ${WAIT_S:-30} * ${VGPIO_TIME_SCALE:-1}))
	while [ "$SECONDS" -lt "$end" ]; do
		"$@" && return 0
		nap 0.05
	done
	"$@"
}

# wait_progress STALL_S PROBE COMMAND...: wait until COMMAND succeeds, for as
# long as something happens: PROBE (a command line for eval, e.g. a device's
# counters) runs between tries, and the wait gives up once its output has
# not changed for STALL_S seconds (or after WAIT_S seconds in all, default
# 600). For waits as long as the work still to do: a slow machine makes
# progress slowly, a stuck one none.
wait_progress() {
	local stall=$1 probe=$2 last cur end cap
	shift 2
	cap=$((SECONDS + ${WAIT_S:-600}))
	last=$(eval "$probe" 2>&1)
	end=$((SECONDS + stall))
	while [ "$SECONDS" -lt "$end" ] && [ "$SECONDS" -lt "$cap" ]; do
		"$@" && return 0
		nap 0.2
		cur=$(eval "$probe" 2>&1)
		if [ "$cur" != "$last" ]; then
			last=$cur
			end=$((SECONDS + stall))
		fi
	done
	"$@"
}

# unbind N: device N's driver lets go of it (if bound), its chip is gone.
unbind() {
	_vdev "$1"
	if driver_bound "$1"; then
		echo "$_VDEV" >/sys/bus/virtio/drivers/"$DRV_NAME"/unbind || return 1
		wait_no_chip "$1" || return 1
	fi
}

# Unbind simulator N's device from the driver under test and bind it again.
# (A device whose probe failed is not bound: then only bind.)
rebind() {
	unbind "$1" || return 1
	_vdev "$1"
	echo "$_VDEV" >/sys/bus/virtio/drivers/"$DRV_NAME"/bind 2>/dev/null
	return 0
}

# Until 6.15 the C driver had one static irq_chip for all its chips
# ("gpio: virtio: support multiple virtio-gpio controller instances"): the
# first chip probed installs gpiolib's hooks in it and keeps the originals;
# every later chip keeps none, and its first interrupt calls a NULL
# irq_enable (see irq_many_lines). C_SHARED_IRQCHIP=1 on such a kernel.
read -r _kver </proc/sys/kernel/osrelease
_kmaj=${_kver%%.*} _kmin=${_kver#*.}
_kmin=${_kmin%%.*}
if [ "$_kmaj" -lt 6 ] || { [ "$_kmaj" = 6 ] && [ "$_kmin" -lt 15 ]; }; then
	C_SHARED_IRQCHIP=1
else
	C_SHARED_IRQCHIP=0
fi

# c_irq_device N: on the C driver with one shared irq_chip, reload it so
# that device N's chip is the one whose interrupts work. Nothing to do for
# the Rust driver, nor for a C driver with an irq_chip per chip.
c_irq_device() {
	local d v drv=/sys/bus/virtio/drivers/$DRV_NAME
	[ "$DRIVER" = c ] && [ "$C_SHARED_IRQCHIP" = 1 ] || return 0
	vgpio_unload || return 1
	echo 0 >/sys/bus/virtio/drivers_autoprobe
	insmod "$MODULE_KO"
	_vdev "$1"
	echo "$_VDEV" >"$drv/bind"
	wait_chip "$1"
	for ((d = 0; d < VGPIO_DEVICES; d++)); do
		[ "$d" = "$1" ] || { _vdev "$d" && echo "$_VDEV" >"$drv/bind"; }
	done
	echo 1 >/sys/bus/virtio/drivers_autoprobe
	for ((d = 0; d < VGPIO_DEVICES; d++)); do wait_chip "$d" || return 1; done
}

# Kernel log lines since a mark: mark=$(dmesg_mark); ...; dmesg_since "$mark"
# (a token written to the log, so a log that wraps cannot shift it)
dmesg_mark() {
	local t="vgpio-mark-$$-$RANDOM$RANDOM"
	echo "$t" >/dev/kmsg
	echo "$t"
}
dmesg_since() { dmesg | sed "0,/$1\$/d"; }

# gpioinfo's name column for line L of chip C ("unnamed" or the name).
line_name() {
	gpioinfo "$1" | sed -nE "s/^[[:space:]]+line +$2: +(\"([^\"]*)\"|(unnamed)).*/\2\3/p"
}

# all_match PATTERN FILE...: log each file's last line; true if every file
# has a line matching PATTERN.
all_match() {
	local pat=$1 f rc=0
	shift
	for f; do
		log "${f##*/}: $(tail -n1 "$f")"
		grep -q "$pat" "$f" || rc=1
	done
	return $rc
}

# Milliseconds of the wall clock, for timing a step: _now_ms sets NOW_MS
# (no subshell).
_now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	NOW_MS=$((t / 1000))
}

# c_stuck PID: on the C driver, the process sleeps uninterruptibly inside
# one of the C driver's functions, seen twice a second apart. Its waits for
# the device have no bound and cannot be killed: in a case where the device
# holds the answer, such a process stays there until the test releases it,
# so its XFAIL need not wait out a bound.
c_stuck() {
	[ "$DRIVER" = c ] && _c_blocked "$1" && nap 1 && _c_blocked "$1"
}
_c_blocked() {
	local s st=
	{ read -r s </proc/"$1"/stat; } 2>/dev/null || return 1
	s=${s##*) }
	[[ $s == D* ]] || return 1
	{ read -r -d '' st </proc/"$1"/stack; } 2>/dev/null
	[[ $st == *virtio_gpio_* ]]
}

# running PID: is the process alive (and not a zombie)?
# (Its state from /proc: ps costs seconds here, it reads every process.)
running() {
	local s
	{ read -r s </proc/"$1"/stat; } 2>/dev/null || return 1
	s=${s##*) }
	[[ $s != Z* ]]
}

# stopped PID: is the process stopped by a signal (SIGSTOP)?
stopped() {
	local s
	{ read -r s </proc/"$1"/stat; } 2>/dev/null || return 1
	s=${s##*) }
	[[ $s == T* ]]
}

# hold PID: stop a character-device watcher (SIGSTOP) for the length of an
# unbind of its chip; the caller continues it (SIGCONT) once the unbind
# returned and lets it end before the device binds again. gpiolib (6.12.117
# and 7.3.4) frees the interrupts still requested in gpiochip_remove
# (gpiochip_free_remaining_irqs) behind the character device's back, which
# keeps the number and frees it again when its line request is closed:
# closed before gpiochip_remove disposed the line's mapping (the request
# sees the chip gone, POLLERR, in between), or after a new mapping took the
# number, the second free_irq warns "Trying to free already-free IRQ",
# whichever the driver (CI run of 1508f49). Succeeds once it is stopped.
hold() { kill -STOP "$1" 2>/dev/null && wait_for stopped "$1"; }

# Slab in use, in kB, with reclaimable caches dropped and every cache shrunk
# (which also empties KASAN's quarantine of freed objects).
slab_kb() {
	local f
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for f in /sys/kernel/slab/*/shrink; do echo 1 >"$f" 2>/dev/null; done
	awk '/^Slab:/ {print $2}' /proc/meminfo
}

CONSUMER_KO=$VGPIO_BUILD/tests/modules/vgpio_irq_consumer.ko
HOG_KO=$VGPIO_BUILD/tests/modules/vgpio_hog.ko
# modparam MODULE NAME: a loaded module's parameter
modparam() { cat /sys/module/"$1"/parameters/"$2"; }
# consumer_param NAME: a count from the test consumer module
consumer_param() { modparam vgpio_irq_consumer "$1"; }

# lsgpio_line CHIP LINE WORD: lsgpio's line LINE of CHIP mentions WORD
# (e.g. output)
lsgpio_line() {
	"$KTOOLS/lsgpio" -n "$1" | grep -E "^[[:space:]]+line +$2:" | grep -q "$3"
}

# Fill the lookup caches in this shell, not in a $(...) subshell that
# would throw them away.
vdev_of 0 >/dev/null
port_of 0 >/dev/null

# irqs_of DEVICE: the interrupts of the transport under a virtio device: a
# PCI function's MSI-X vectors, or its INTx line (shared with other
# devices) if it has none; a virtio-mmio device's one interrupt (the one
# with an action named after the virtio device: the GPIO lines' own
# interrupts show that name too, as their irq_chip's)
irqs_of() {
	local pci irq
	pci=/sys/bus/virtio/devices/$(vdev_of "$1")/..
	if [ -d "$pci/msi_irqs" ]; then
		for irq in "$pci"/msi_irqs/*; do echo "${irq##*/}"; done
	elif [ -r "$pci/irq" ]; then
		cat "$pci/irq"
	else
		local d a
		d=$(vdev_of "$1")
		for irq in /sys/kernel/irq/*; do
			read -r a <"$irq/actions" 2>/dev/null || continue
			[[ ,$a, == *",$d,"* ]] && echo "${irq##*/}"
		done
	fi
}
