#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Instructions per operation, Rust driver against C driver, from a
`make profile` run (scripts/profile.sh): the tbprof plugin's counts per
block (OUTDIR/tb-K.txt, K the phase), the guest's /proc/kallsyms
(OUTDIR/kallsyms.txt) and the phases (OUTDIR/phases.txt: "K DRIVER WORKLOAD
N"). Per workload: instructions and blocks per operation for each driver,
split into the driver's module, the rest of the kernel and user space, and
the functions where the two drivers differ most.

usage: profile.py OUTDIR [TOP]   (TOP functions per workload, default 12)
"""
import bisect
import collections
import sys
from pathlib import Path

MODULES = ('gpio_virtio_rs', 'gpio_virtio')


def demangle(names):
    """Rust symbols demangled by binutils' c++filt (which reads Rust's v0
    scheme), the crates' hashes dropped; names as they are without it."""
    import re
    import subprocess
    try:
        out = subprocess.run(['c++filt'], input='\n'.join(names), capture_output=True,
                             text=True, check=True).stdout.split('\n')
    except (OSError, subprocess.CalledProcessError):
        return {n: n for n in names}
    return {n: re.sub(r'\[[0-9a-f]{16}\]', '', d) for n, d in zip(names, out)}


def symbols(path):
    syms = []
    for line in open(path):
        f = line.split()
        if len(f) < 3 or f[1] not in 'tTwW':
            continue
        addr = int(f[0], 16)
        if addr:
            syms.append((addr, f[2], f[3].strip('[]') if len(f) > 3 else ''))
    syms.sort()
    names = demangle([s[1] for s in syms if s[1].startswith('_R')])
    return [(a, names.get(n, n), m) for a, n, m in syms]


def block_end(mnemonic):
    """How a block ended, from its last instruction: a return or an
    indirect jump or call (both look the next block up), an instruction
    that changes the interrupt flag (which ends translation), a direct
    call, anything else (a direct jump, a branch, a full block)."""
    m = mnemonic.lower()
    if m.startswith('ret'):
        return 'ret'
    if m.endswith('*'):
        return 'indirect'
    if m in ('cli', 'sti', 'popf', 'popfq', 'iretq', 'sysretq', 'hlt'):
        return 'irqflag'
    if m.startswith('call'):
        return 'call'
    return 'other'


def main():
    out = Path(sys.argv[1])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    syms = symbols(out / 'kallsyms.txt')
    addrs = [s[0] for s in syms]

    def where(addr):
        if addr < 1 << 63:
            return ('[user]', 'user')
        i = bisect.bisect_right(addrs, addr) - 1
        if i < 0:
            return ('?', 'kernel')
        _, name, mod = syms[i]
        return (f'{name} [{mod}]' if mod else name, 'module' if mod in MODULES else 'kernel')

    # workload -> driver -> (operations, insns per symbol, blocks per part, insns per part)
    runs = collections.defaultdict(dict)
    # workload -> driver -> memory instructions and block ends, all parts
    ends = collections.defaultdict(dict)
    for line in open(out / 'phases.txt'):
        k, drv, work, n = line.split()
        per_sym = collections.Counter()
        blocks = collections.Counter()
        parts = collections.Counter()
        # (plugin builds of before 2026-12-01 write three columns)
        kinds = collections.Counter()
        for row in open(out / f'tb-{k}.txt'):
            va, insns, execs, *more = row.split()
            name, part = where(int(va, 16))
            per_sym[name] += int(insns) * int(execs)
            parts[part] += int(insns) * int(execs)
            blocks[part] += int(execs)
            if len(more) == 2:
                kinds['memory'] += int(more[0]) * int(execs)
                kinds[block_end(more[1])] += int(execs)
        ops, s, b, p = runs[work].get(drv, (0, collections.Counter(), collections.Counter(),
                                            collections.Counter()))
        runs[work][drv] = (ops + int(n), s + per_sym, b + blocks, p + parts)
        ends[work][drv] = ends[work].get(drv, collections.Counter()) + kinds

    print('Instructions the guest executed per operation (QEMU tbprof plugin, bench/profile.py):')
    print(f'{"workload":9s} {"part":8s} {"rust insns":>11s} {"c insns":>9s} {"rust/c":>7s}'
          f' {"rust blocks":>12s} {"c blocks":>9s}')
    for work, d in runs.items():
        if 'rust' not in d or 'c' not in d:
            continue
        (nr, sr, br, pr), (nc, sc, bc, pc) = d['rust'], d['c']
        for part in ('module', 'kernel', 'user', 'all'):
            ir = sum(pr.values()) if part == 'all' else pr[part]
            ic = sum(pc.values()) if part == 'all' else pc[part]
            kr = sum(br.values()) if part == 'all' else br[part]
            kc = sum(bc.values()) if part == 'all' else bc[part]
            ratio = f'{(ir / nr) / (ic / nc):7.2f}' if ic else '      -'
            print(f'{work:9s} {part:8s} {ir / nr:11.0f} {ic / nc:9.0f} {ratio} {kr / nr:12.0f} {kc / nc:9.0f}')
    if any(ends[w] for w in ends):
        print('\nWhat the instructions were (all parts, per operation): memory operands,'
              ' and how blocks ended')
        kinds = ('memory', 'ret', 'indirect', 'irqflag', 'call', 'other')
        print(f'{"workload":9s} {"driver":6s} ' + ' '.join(f'{k:>9s}' for k in kinds))
        for work, d in runs.items():
            for drv in ('rust', 'c'):
                if drv in d and ends[work].get(drv):
                    n = d[drv][0]
                    print(f'{work:9s} {drv:6s} ' +
                          ' '.join(f'{ends[work][drv][k] / n:9.0f}' for k in kinds))
    for work, d in runs.items():
        if 'rust' not in d or 'c' not in d:
            continue
        (nr, sr, _, _), (nc, sc, _, _) = d['rust'], d['c']
        print(f'\n{work}: the functions where the drivers differ most (instructions per operation)')
        print(f'{"rust":>9s} {"c":>9s} {"rust-c":>9s}  function')
        names = set(sr) | set(sc)
        for name in sorted(names, key=lambda s: -abs(sr[s] / nr - sc[s] / nc))[:top]:
            print(f'{sr[name] / nr:9.0f} {sc[name] / nc:9.0f} {sr[name] / nr - sc[name] / nc:+9.0f}  {name}')


if __name__ == '__main__':
    main()
