#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# logcheck.sh KERNEL-LOG [KMEMLEAK-REPORT]
# Fails (exit 1) if the guest's kernel log holds a splat: WARNING, BUG, Oops,
# KASAN, lockdep, RCU or hung-task reports, a panic, or if kmemleak found a
# leak. Quotes each splat it finds.
set -u
log=$1
leaks=${2:-}
pattern='WARNING:|BUG:|Oops|KASAN|UBSAN|general protection fault|Kernel panic|kernel BUG|'
pattern+='possible circular locking|possible recursive locking|inconsistent lock state|'
pattern+='suspicious RCU usage|lock held when returning|blocked for more than|'
pattern+='unreferenced object|suspected memory leak|Call Trace:'
bad=0
if [ ! -s "$log" ]; then
	echo "logcheck: no kernel log at $log (the guest did not finish?)"
	exit 1
fi
# Report each splat once: from its first matching line, 30 lines of context.
mapfile -t hits < <(grep -nE "$pattern" "$log" | cut -d: -f1)
last=-100
for n in "${hits[@]}"; do
	if [ "$n" -gt $((last + 30)) ]; then
		echo "logcheck: splat in the guest kernel log ($log line $n):"
		sed -n "${n},$((n + 29))p" "$log" | sed 's/^/  | /'
		last=$n
		bad=1
	fi
done
if [ -n "$leaks" ] && [ -s "$leaks" ]; then
	echo "logcheck: kmemleak reports leaks:"
	head -n 40 "$leaks" | sed 's/^/  | /'
	bad=1
fi
[ "$bad" = 0 ] && echo "logcheck: guest kernel log clean ($(wc -l <"$log") lines checked)"
exit $bad
