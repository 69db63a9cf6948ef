#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the guest (scripts/bench.sh). Both drivers are loaded at once,
# each bound to its own device of the same shape, so every workload runs on
# the Rust and on the C driver seconds apart (which goes first alternates
# every round), with the floor measured beside them: on this machine
# a guest's speed drifts by up to 2.5x over minutes, and two measurements
# taken minutes apart compare that drift more than the drivers.
#
# Devices: 0, 1 and 2, 32 lines with line 0 wired to line 1, the Rust
# driver's, the C driver's and the floor's, rotating every round (see
# assign); 3, 4 and 5, 8, 256 and 1024 lines (probe). The floor is vgpio_floor (tests/modules, $VGPIO_FLOOR_KO): the
# same GET_VALUE round trip through a virtio driver with no GPIO logic,
# reported as driver "floor".
# Phases: (1) ROUNDS rounds of the one-task request workloads (both
# drivers in one process, alternating batches: see pair) and the interrupt
# ones; (2) ROUNDS rounds of probe time and memory (each probe device
# bound to one driver, then the other); (3) ROUNDS rounds of 4 and 16 tasks
# at once. Every workload on the drivers' own devices is bounded in time
# (see bench); probe binds fresh devices.
# Writes RESULT lines (with their round) to $VGPIO_OUT/results.txt and
# latency samples to $VGPIO_OUT/lat-DRIVER-WORKLOAD-rROUND.txt.
# (the commands `each` runs expand when it runs them: single quotes)
# shellcheck disable=SC2016,SC2034,SC2154
set -u
BENCH=$1
ROUNDS=${2:-5}
FLOOR_KO=${VGPIO_FLOOR_KO:-$VGPIO_TOP/tests/modules/vgpio_floor.ko}
res=$VGPIO_OUT/results.txt
: >"$res"
# The test kernel's kmemleak scans all memory every 10 minutes, a minute or
# more of both CPUs under TCG: not during a benchmark.
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
[ -w /sys/kernel/debug/kmemleak ] && echo scan=off >/sys/kernel/debug/kmemleak

# Each driver's module, bus name and device (lib.sh knows the first two)
declare -A KO DRV DEV=()
for DRIVER in c rust; do
	# shellcheck source=/dev/null
	. "$VGPIO_TOP/tests/lib.sh"
	KO[$DRIVER]=$MODULE_KO
	DRV[$DRIVER]=$DRV_NAME
done
DRV[floor]=vgpio-floor

result() { echo "RESULT drv=$DRIVER round=$round workload=$1 metric=$2 value=$3" | tee -a "$res"; }
# record WORKLOAD LINE: the rate and latencies of a vgpio-bench result line
record() {
	local kv
	for kv in $2; do
		case $kv in
		ops_per_s=* | p50_us=* | p99_us=*) result "$1" "${kv%%=*}" "${kv#*=}" ;;
		esac
	done
}
# bench WORKLOAD ARGS...: run vgpio-bench, record its key=value results.
# Bounded: the C driver's requestq ring breaks under concurrent use
# (virtqueue_get_buf without the lock add_sgs holds; seen with 4 tasks and
# with 16), and then requests in flight never complete and their tasks
# sleep uninterruptibly for good. A run still going after BENCH_BOUND_S is
# recorded as hung, and the driver's device takes no more workloads.
BENCH_BOUND_S=120
declare -A hung=()
# bounded OUT COMMAND...: COMMAND with its output in OUT, within the bound;
# 0 done, 1 failed, 2 still running (left running)
bounded() {
	local out=$1 pid
	shift
	"$@" >"$out" &
	pid=$!
	WAIT_S=$BENCH_BOUND_S wait_for eval "! running $pid"
	running $pid && return 2
	wait $pid || return 1
}
# hung_now WORKLOAD DRIVER...: record that the drivers' devices hung
hung_now() {
	local w=$1
	shift
	for DRIVER; do
		result "$w" hung 1
		hung[$DRIVER]=$w
		echo "# $DRIVER: $w still running after $BENCH_BOUND_S s; no more workloads on its device"
	done
	echo "# the kernel log has $(dmesg | grep -c 'failed to add request') 'failed to add request' lines"
}
# hung_in_batch WORKLOAD ERR-FILE DRIVER-A DRIVER-B: a `vgpio-bench pair`
# that never ended hung the driver whose batch it was in (vgpio-bench says
# each batch's target on its standard error, ERR-FILE, before it starts it);
# both, if it did not get that far
hung_in_batch() {
	case $(tail -n 1 "$2") in
	"batch A") hung_now "$1" "$3" ;;
	"batch B") hung_now "$1" "$4" ;;
	*) hung_now "$1" "$3" "$4" ;;
	esac
}
bench() {
	local w=$1 rc=0
	shift
	bounded /tmp/bench.out "$BENCH" -o "$VGPIO_OUT/lat-$DRIVER-$w-r$round.txt" \
		"${w%%[0-9]*}" "$@" || rc=$?
	case $rc in
	0) record "$w" "$(cat /tmp/bench.out)" ;;
	1) echo "# $DRIVER: $w failed" ;;
	2) hung_now "$w" "$DRIVER" ;;
	esac
}
# pair WORKLOAD N ARGS...: N operations of WORKLOAD (vgpio-bench's own
# arguments after the chip, without N) on both drivers' chips in one
# process, alternating batches of PAIR_BATCH operations between them, this
# round's first driver first: both measured through the same moments, so
# the guest's drift falls on both alike. (Each driver alone, as `each`
# would, once one of them hung.)
PAIR_BATCH=25
pair() {
	local w=$1 n=$2 rc=0 line d wl files
	local -a drv chips outs args
	shift 2
	args=("$@")
	read -r -a drv <<<"$order"
	if [ -n "${hung[${drv[0]}]:-}${hung[${drv[1]}]:-}" ]; then
		each "$w" 'bench "$w" "$chip" "${args[@]}" "$n"'
		# (the floor alone, then)
		[ "$w" != get ] || { DRIVER=floor; bench floor "$floor_file" "$n"; }
		return
	fi
	for d in "${drv[@]}"; do
		chips+=("$(chip_of "${DEV[$d]}")")
		outs+=("$VGPIO_OUT/lat-$d-$w-r$round.txt")
	done
	# the floor in the same batches: a GET_VALUE, beside the gets
	if [ "$w" = get ]; then
		args+=("floor=$floor_file")
		outs+=("$VGPIO_OUT/lat-floor-floor-r$round.txt")
	fi
	printf -v files '%s,' "${outs[@]}"
	bounded /tmp/pair.out "$BENCH" -o "${files%,}" pair "${w%%[0-9]*}" \
		"$n" "$PAIR_BATCH" "${chips[@]}" "${args[@]}" 2>/tmp/pair.err || rc=$?
	case $rc in
	0)
		while read -r line; do
			case $line in
			target=A*) DRIVER=${drv[0]} wl=$w ;;
			target=B*) DRIVER=${drv[1]} wl=$w ;;
			target=C*) DRIVER=floor wl=floor ;;
			*) continue ;;
			esac
			record "$wl" "$line"
		done </tmp/pair.out
		;;
	1) echo "# $w (pair) failed: $(tail -n 3 /tmp/pair.err)" ;;
	2)
		hung_in_batch "$w" /tmp/pair.err "${drv[@]}"
		;;
	esac
}
# set_order: which driver goes first this round (order), alternating
set_order() {
	if [ $((round % 2)) = 1 ]; then order="rust c"; else order="c rust"; fi
}
# each WORKLOAD COMMAND: eval COMMAND for both drivers, in this round's
# order, with DRIVER, dev (its device) and chip (its gpiochip) set; not for
# a driver whose device hung (WORKLOAD recorded as skipped for it)
each() {
	for DRIVER in $order; do
		if [ -n "${hung[$DRIVER]:-}" ]; then
			result "$1" skipped 1
			continue
		fi
		dev=${DEV[$DRIVER]}
		chip=$(chip_of "$dev")
		eval "$2"
	done
}
# abba WORKLOAD COMMAND: `each` twice, the second time in the reverse
# order (A B B A), recorded as rounds Na and Nb: for the workloads that run
# one driver at a time (not both in one process, as `pair` does), so that
# the guest's drift between them falls on both alike
abba() {
	local r=$round o=$order
	round=${r}a
	each "$1" "$2"
	round=${r}b
	order="${o#* } ${o%% *}"
	each "$1" "$2"
	round=$r order=$o
}
# busy_ticks VAR: the CPUs' busy time so far (user, nice, system, irq,
# softirq; 1/100 s) into VAR, without starting a process
busy_ticks() {
	local _cpu u n s i io irq sirq _rest
	read -r _cpu u n s i io irq sirq _rest </proc/stat
	printf -v "$1" %d $((u + n + s + irq + sirq))
}
bind() { vdev_of "$1" >/sys/bus/virtio/drivers/"${DRV[$2]}"/bind; }
unbind() {
	local v
	v=$(vdev_of "$1")
	[ ! -e /sys/bus/virtio/devices/"$v"/driver ] ||
		echo "$v" >/sys/bus/virtio/devices/"$v"/driver/unbind
}
bound_to() {
	[ /sys/bus/virtio/devices/"$(vdev_of "$1")"/driver -ef /sys/bus/virtio/drivers/"${DRV[$2]}" ]
}

# edge_train N RATE [rising]: N edges at RATE per second on line 5 of
# device $dev, counted through $chip (both edges; with `rising`, N rising
# edges, the line toggled at twice the rate); sets got to how many were
# seen, and b0/b1 to the busy ticks just before the device starts the
# train and just after the counter has them all (or gave up). Fails
# (recording a hang) if the counter is still running BENCH_BOUND_S after
# the train.
edge_train() {
	local toggles=$1 period=$((1000000 / $2))
	[ "${3:-}" = rising ] && toggles=$(($1 * 2)) period=$((500000 / $2))
	# shellcheck disable=SC2086
	"$BENCH" count "$chip" 5 $(($1 / $2 + 3)) "$1" ${3:-} >/tmp/count.out &
	local pid=$!
	wait_for file_has armed /tmp/count.out
	wait_for eval '[ "$(line_state "$dev" 5 queued)" = 1 ]'
	busy_ticks b0
	ctl "$dev" edges 5 "$toggles" "$period" >/dev/null
	WAIT_S=$BENCH_BOUND_S wait_for eval "! running $pid"
	busy_ticks b1
	if running $pid; then
		hung_now edges "$DRIVER"
		got=0
		return 1
	fi
	wait $pid
	got=$(sed -n 's/.*events=//p' /tmp/count.out)
	got=${got:-0}
}

# ladder_step WORKLOAD RATE: unless the driver has lost edges in this
# ladder already, a 200-edge train at RATE (WORKLOAD edges: both edges;
# rising: rising edges only); records the rate lossless (best) or lossy
# (lost)
ladder_step() {
	local k=$DRIVER:$1 kind=
	[ "$1" = rising ] && kind=rising
	[ -z "${lost[$k]:-}" ] || return 0
	edge_train 200 "$2" $kind || return 0
	echo "# $DRIVER: $2 $1 edges/s: $got of 200"
	if [ "$got" = 200 ]; then
		best[$k]=$2
	else
		lost[$k]=$2
		result "$1" lossy_rate "$2"
		result "$1" lossy_got "$got"
	fi
}

# per_event: the CPU time and the device's requests (from its counters) per
# event of the train edge_train just ran ($got events, busy ticks b0..b1),
# and the event cycle's median and 99th percentile
per_event() {
	local c k
	result edges cpu_us_per_event $(((b1 - b0) * 10000 / got))
	_ctl "$dev" counters
	c=$_CTL_REPLY
	for k in get_value set_irq_type evbufs; do
		result edges "${k}_per_100_events" $(($(field $k "$c") * 100 / got))
	done
	# how long the line's eventq buffer stayed with the driver per event
	# (the device's clock): a second edge in that time is merged
	for k in cycle_p50_us cycle_p99_us; do
		result edges "$k" "$(field $k "$c")"
	done
}

# probe_one DEVICE LINES: bind DEVICE to $DRIVER; sets probe_us to the time
# the bind took (bash's own clock: a date process would add its start-up, a
# good part of a second under TCG) and probe_slab to the slab growth per
# line once the chip is there; then unbinds it
probe_one() {
	local before after t0 t1
	before=$(slab_kb)
	t0=${EPOCHREALTIME/./}
	bind "$1" "$DRIVER"
	t1=${EPOCHREALTIME/./}
	wait_chip "$1"
	after=$(slab_kb)
	probe_us=$((t1 - t0))
	probe_slab=$(((after - before) * 1024 / $2))
	unbind "$1"
	wait_no_chip "$1"
}
# median NUMBERS...
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

# assign ROUND: give the Rust driver, the C driver and the floor one each of
# devices 0, 1, 2 (the same shape), rotating every round, so that no
# driver's figures are one device's (each has its own simulator process,
# its own vectors); then put the three devices' interrupts on CPU 0 with
# the one-task workloads: a task whose answer comes on its own CPU is woken
# there, one on the other by an IPI (dear under TCG), and which of the two
# a device gets would otherwise depend on where its vectors land. Where the
# C driver has one irq_chip for all its chips (6.12), it cannot be bound
# again safely: there the devices keep round 1's roles (and after a hang).
assign() {
	local d i irq
	if [ -n "${DEV[c]:-}" ] && [ "${C_SHARED_IRQCHIP:-0}" = 1 ]; then
		return 0
	fi
	# (nor once a device hung: its tasks would be in the way of an unbind)
	[ ${#hung[@]} = 0 ] || return 0
	DEV[rust]=$(($1 % 3)) DEV[c]=$((($1 + 1) % 3)) DEV[floor]=$((($1 + 2) % 3))
	for i in 0 1 2; do unbind $i; done
	for d in rust c floor; do
		bind "${DEV[$d]}" $d
		if ! bound_to "${DEV[$d]}" $d; then
			echo "# device ${DEV[$d]} is not bound to $d"
			exit 1
		fi
	done
	if ! wait_chip "${DEV[rust]}" || ! wait_chip "${DEV[c]}"; then
		echo "# chips missing"
		exit 1
	fi
	floor_file=/sys/kernel/debug/vgpio_floor/$(vdev_of "${DEV[floor]}")
	wait_for eval '[ -e "$floor_file" ]'
	for i in 0 1 2; do
		for irq in $(irqs_of "$i"); do
			echo 0 >/proc/irq/"$irq"/smp_affinity_list ||
				echo "# device $i: its interrupt $irq stays where it is"
		done
	done
	echo "# round $1: Rust on device ${DEV[rust]}, C on ${DEV[c]}, the floor on ${DEV[floor]}"
}

# All three modules loaded; the Rust driver's insmod binds every device
insmod "${KO[rust]}" || exit 1
insmod "${KO[c]}" || exit 1
insmod "$FLOOR_KO" || exit 1
for i in 0 1 2 3 4 5; do
	wait_chip $i || { echo "# device $i has no chip"; exit 1; }
done
for i in 3 4 5; do unbind $i; done
taskset -p -c 0 $$ >/dev/null

for round in $(seq "$ROUNDS"); do
	set_order
	assign "$round"
	pair set 2000 2
	pair get 2000 3
	pair mset8 500 8
	pair mget8 500 8
	pair mset32 500 32
	pair mget32 500 32
	pair loop 500 0 1
	# one task writing its own line through the tasks workload (the
	# baseline of 4 and 16 tasks, which come last)
	abba par1 'bench par1 "$chip" 8 1 2000'

	# The highest edge rate delivered with no loss (200 edges each) and
	# the first rate that lost some (how many got through there): both
	# drivers at each rate before the next
	# Twice: both edges (gpiolib's character device then reads the line in
	# its irq thread for each event, a round trip), and rising edges only
	# (no read: the interrupt cycle alone).
	declare -A best=() lost=()
	for w in edges rising; do
		for rate in 100 150 200 300 400 500 700 1000 1500 2000 3000 5000 7000 \
			10000 15000 20000 30000 50000; do
			each $w "ladder_step $w $rate"
			n=0
			for k in "${!lost[@]}"; do [[ $k == *:$w ]] && n=$((n + 1)); done
			[ $((n + ${#hung[@]})) -ge 2 ] && break
		done
		each $w "result $w lossless_per_s \${best[\$DRIVER:$w]:-0}"
	done

	# CPU time per event: busy ticks (1/100 s) over a 400-edge train at
	# 200/s (both drivers lose none there), system-wide; and what each
	# event cost in device requests (the device's counters, per 100
	# events): the round trips that bound the edge rate
	abba edges 'ctl "$dev" reset-counters >/dev/null
		edge_train 400 200 && [ "$got" -gt 0 ] && per_event'
done

# Probe time and memory per line: each probe device (3, 4, 5) bound to one driver,
# then the other (bind to return; slab growth once the chip is there). The
# small device, whose probe takes milliseconds, five times each per round,
# alternating, and the median of them recorded.
for round in $(seq "$ROUNDS"); do
	set_order
	for i in 3 5 4; do
		lines=$(field ngpio "$(ctl $i info)")
		reps=1
		[ "$lines" -gt 32 ] || reps=5
		declare -A times=() slab=()
		for _ in $(seq $reps); do
			for DRIVER in $order; do
				probe_one $i "$lines"
				times[$DRIVER]+=" $probe_us"
				slab[$DRIVER]=$probe_slab
			done
		done
		for DRIVER in $order; do
			# shellcheck disable=SC2086 # (a list of numbers)
			result "probe$lines" us "$(median ${times[$DRIVER]})"
			result "probe$lines" slab_bytes_per_line "${slab[$DRIVER]}"
		done
	done
done

# Where a single-line request's time goes, for each driver and the floor
# (a kernel with tracing: the production kernel, as distributions ship it;
# the debug kernel has none, and this is skipped): the gets of `pair` (both
# drivers and the floor in alternating batches, in one process, so that
# all three are traced through the same moments), the task and the
# devices' interrupts on CPU 0 as above, traced with the task's system
# calls, its wakeups and switches, and two functions of the virtio core
# (the function tracer, a call from the function's patched entry: a kprobe's
# trap costs more, under TCG enough to reorder the drivers): the notify (the
# kick's VM exit) and the interrupt's per-queue handler.
# bench/trace.py tells the three apart by the file each request used
# (opened in the order written to trace-pair-REP.order) and splits each
# request at those events. Four times, the first driver alternating.
TRACE_OPS=1000
tracefs=/sys/kernel/tracing
trace_phase() {
	local t=$tracefs rep k chips
	mountpoint -q $t || mount -t tracefs none $t 2>/dev/null
	if [ ! -w $t/set_ftrace_filter ] || [ ! -d $t/events/raw_syscalls ]; then
		echo "# no function tracer or syscall tracepoints in this kernel: no trace"
		return 0
	fi
	if [ -n "${hung[rust]:-}${hung[c]:-}" ]; then
		echo "# a device hung: no trace"
		return 0
	fi
	echo 0 >$t/tracing_on
	echo global >$t/trace_clock
	echo 8192 >$t/buffer_size_kb
	# (the notify of a modern virtio-pci device, and of one that takes
	# notification data: whichever exists)
	echo >$t/set_ftrace_filter
	for k in vp_notify vp_notify_with_data vring_interrupt; do
		echo "$k" >>$t/set_ftrace_filter 2>/dev/null
	done
	# (an empty filter would trace every function of the kernel)
	if ! grep -q '^vp_notify' $t/set_ftrace_filter ||
		! grep -q '^vring_interrupt' $t/set_ftrace_filter; then
		echo "# the virtio core's functions cannot be traced: no trace"
		return 0
	fi
	local round r0=$round o0=$order rc
	for rep in 1 2 3 4; do
		round=$rep
		set_order
		chips=
		for k in $order; do chips+=" $(chip_of "${DEV[$k]}")"; done
		echo "$order floor" >"$VGPIO_OUT/trace-pair-$rep.order"
		echo >$t/trace
		# the task's own events only (its pid is that of the shell,
		# which execs the benchmark); the traced functions run for every
		# device, but only the three in use are busy
		rc=0
		bounded /tmp/trace.out sh -c "
			for e in raw_syscalls/sys_enter raw_syscalls/sys_exit; do
				echo \"common_pid == \$\$\" >$t/events/\$e/filter
			done
			echo \"prev_pid == \$\$ || next_pid == \$\$\" >$t/events/sched/sched_switch/filter
			echo \"pid == \$\$\" >$t/events/sched/sched_wakeup/filter
			for e in raw_syscalls/sys_enter raw_syscalls/sys_exit sched/sched_switch sched/sched_wakeup; do
				echo 1 >$t/events/\$e/enable
			done
			echo function >$t/current_tracer
			echo 1 >$t/tracing_on
			exec $BENCH pair get $TRACE_OPS $PAIR_BATCH$chips 3 floor=$floor_file 2>/tmp/trace.err" || rc=$?
		echo 0 >$t/tracing_on
		# (copied before the tracer is reset: that empties the buffer)
		cp $t/trace "$VGPIO_OUT/trace-pair-$rep.txt"
		echo nop >$t/current_tracer
		echo "# trace $rep ($order floor): $(grep target= /tmp/trace.out | tr '\n' ' ')"
		if [ $rc != 0 ]; then
			# (a trace of requests that failed or never ended: none)
			rm -f "$VGPIO_OUT/trace-pair-$rep.txt"
			# shellcheck disable=SC2086 # (the two drivers, A first)
			[ $rc != 2 ] || hung_in_batch trace /tmp/trace.err $order
			break
		fi
	done
	round=$r0 order=$o0
	echo 0 >$t/events/enable
	echo >$t/set_ftrace_filter
	echo local >$t/trace_clock
	echo 1408 >$t/buffer_size_kb
}
trace_phase

# 4 and 16 tasks at once, each writing its own line (8, 9, ...): total
# ops/s. Last: the C driver's requestq ring breaks under that much
# concurrency (see bench), and its device is of no more use after that;
# every round's 4 tasks first, so that a hang with 16 costs none of them.
taskset -p -c "0-$(($(nproc) - 1))" $$ >/dev/null
for round in $(seq "$ROUNDS"); do
	set_order
	abba par4 'bench par4 "$chip" 8 4 1000'
done
for round in $(seq "$ROUNDS"); do
	set_order
	abba par16 'bench par16 "$chip" 8 16 250'
done

dmesg >"$VGPIO_OUT/dmesg.txt"
