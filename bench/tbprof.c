// SPDX-License-Identifier: GPL-2.0
/*
 * tbprof: a QEMU TCG plugin that counts the guest's executed instructions
 * per translation block, for `make profile` (scripts/profile.sh).
 *
 * Every block the guest runs gets a counter (keyed by its start address,
 * so a block translated again keeps counting in the same place). The
 * guest marks phases by running the block at trigger=ADDR (the entry of a
 * system call nothing else makes, e.g. syncfs): each time it does, the
 * counters are written to out=PREFIX-N.txt (N = 0, 1, ...: "address
 * instructions-in-block executions memory-instructions last-mnemonic" per
 * line, hex, decimal, decimal, decimal, text) and
 * set to zero; once more when QEMU exits. Instructions per block times
 * executions is what the guest executed there, whatever the timing:
 * unlike a time profile, the count does not depend on how fast the host
 * ran the guest.
 *
 * Built against QEMU's qemu-plugin.h of the QEMU that loads it:
 *   cc -shared -fPIC -O2 -I DIR_OF_HEADER $(pkg-config --cflags glib-2.0) \
 *      -o tbprof.so tbprof.c
 *   qemu-system-x86_64 ... -plugin ./tbprof.so,trigger=ffffffff81560370,out=/tmp/tb
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t execs;
	uint64_t mems;		/* instructions with a memory operand */
	char last[16];		/* the mnemonic of the block's last instruction */
	int described;		/* mems and last are filled in */
};

/* open addressing, never shrinks: a guest run translates far fewer blocks */
#define TABLE_SIZE (1u << 22)
static struct block **table;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t trigger;
static const char *prefix = "tbprof";
static unsigned int phase;

static struct block *block_of(uint64_t vaddr, uint64_t insns)
{
	size_t i = (vaddr * 0x9e3779b97f4a7c15ull) >> 42;

	for (;; i = (i + 1) & (TABLE_SIZE - 1)) {
		if (!table[i]) {
			table[i] = calloc(1, sizeof(*table[i]));
			if (!table[i])
				abort();
			table[i]->vaddr = vaddr;
			table[i]->insns = insns;
			return table[i];
		}
		if (table[i]->vaddr == vaddr)
			return table[i];
	}
}

static void dump(void)
{
	char name[4096];
	FILE *f;

	pthread_mutex_lock(&table_lock);
	snprintf(name, sizeof(name), "%s-%u.txt", prefix, phase++);
	f = fopen(name, "w");
	for (size_t i = 0; i < TABLE_SIZE; i++) {
		struct block *b = table[i];
		uint64_t n;

		if (!b)
			continue;
		n = __atomic_exchange_n(&b->execs, 0, __ATOMIC_RELAXED);
		if (n && f)
			fprintf(f, "%" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n",
				b->vaddr, b->insns, n, b->mems, b->last[0] ? b->last : "-");
	}
	pthread_mutex_unlock(&table_lock);
	if (f)
		fclose(f);
	else
		fprintf(stderr, "tbprof: cannot write %s\n", name);
}

static void on_exec(unsigned int vcpu, void *udata)
{
	struct block *b = udata;

	__atomic_fetch_add(&b->execs, 1, __ATOMIC_RELAXED);
}

static void on_trigger(unsigned int vcpu, void *udata)
{
	dump();
}

/*
 * What the block's disassembly says (at translation, once per block): how
 * many of its instructions touch memory (an operand in parentheses or
 * brackets, but for nop and lea), and its last instruction's mnemonic (how
 * the block ends: a return or an indirect jump needs a look-up of the next
 * block, a change of the interrupt flag ends translation).
 */
static void describe(struct qemu_plugin_tb *tb, struct block *b)
{
	size_t n = qemu_plugin_tb_n_insns(tb);

	for (size_t i = 0; i < n; i++) {
		char *d = qemu_plugin_insn_disas(qemu_plugin_tb_get_insn(tb, i));

		if (!d)
			continue;
		/* (a nop's or lea's operand is not an access) */
		if ((strchr(d, '(') || strchr(d, '[')) && strncmp(d, "nop", 3) &&
		    strncmp(d, "lea", 3))
			b->mems++;
		if (i == n - 1) {
			size_t k = strcspn(d, " \t");

			if (k >= sizeof(b->last))
				k = sizeof(b->last) - 1;
			memcpy(b->last, d, k);
			b->last[k] = '\0';
			/* an indirect call or jump: say so */
			if ((!strncmp(d, "call", 4) || !strncmp(d, "jmp", 3)) && strchr(d, '*') &&
			    k + 1 < sizeof(b->last))
				strcat(b->last, "*");
		}
		g_free(d);
	}
	b->described = 1;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
	struct block *b;

	pthread_mutex_lock(&table_lock);
	b = block_of(vaddr, qemu_plugin_tb_n_insns(tb));
	if (!b->described)
		describe(tb, b);
	pthread_mutex_unlock(&table_lock);
	qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, b);
	if (trigger && vaddr == trigger)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_trigger, QEMU_PLUGIN_CB_NO_REGS, NULL);
}

static void on_qemu_exit(qemu_plugin_id_t id, void *p)
{
	dump();
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
					   int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "trigger=", 8)) {
			trigger = strtoull(argv[i] + 8, NULL, 16);
		} else if (!strncmp(argv[i], "out=", 4)) {
			prefix = strdup(argv[i] + 4);
		} else {
			fprintf(stderr, "tbprof: unknown argument %s\n", argv[i]);
			return -1;
		}
	}
	table = calloc(TABLE_SIZE, sizeof(*table));
	if (!table)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
	return 0;
}
