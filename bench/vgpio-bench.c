// SPDX-License-Identifier: GPL-2.0
/*
 * vgpio-bench: GPIO workloads measured from user space through the GPIO
 * character device (v2 uAPI), for comparing drivers on the same device.
 *
 *   vgpio-bench set   CHIP LINE N          N single-line writes
 *   vgpio-bench get   CHIP LINE N          N single-line reads
 *   vgpio-bench mset  CHIP NLINES N        N writes of lines 0..NLINES-1 at once
 *   vgpio-bench mget  CHIP NLINES N        N reads of lines 0..NLINES-1 at once
 *   vgpio-bench par   CHIP FIRST TASKS N   TASKS threads, each doing N
 *                                          single-line writes of its own
 *                                          line (FIRST, FIRST+1, ...) at once
 *   vgpio-bench floor FILE N               N reads (at offset 0) of
 *                                          vgpio_floor's debugfs FILE: one
 *                                          virtio round trip each, with no
 *                                          GPIO driver in it
 *   vgpio-bench loop  CHIP OUT IN N        set OUT, wait for IN's edge event
 *   vgpio-bench pair WORKLOAD N BATCH CHIP_A CHIP_B ARGS...
 *                                          WORKLOAD (set, get, mset, mget,
 *                                          loop; ARGS its arguments after
 *                                          CHIP, without N) N times on each
 *                                          chip, alternating batches of
 *                                          BATCH operations between them:
 *                                          two drivers measured through the
 *                                          same moments (one result line
 *                                          each, target=A, target=B; -o
 *                                          FILE_A,FILE_B). A last argument
 *                                          floor=FILE adds the floor (see
 *                                          floor) as a third, target=C
 *                                          (-o FILE_A,FILE_B,FILE_C)
 *   vgpio-bench count CHIP LINE SECONDS [N] [rising]
 *                                          count IN's edge events (until
 *                                          N): both edges, or rising ones;
 *                                          a line "gone" first if the chip
 *                                          went meanwhile
 *   vgpio-bench hammer CHIP LINE SECONDS   write pseudo-random values to an
 *                                          output, read each back; fails
 *                                          on any value not the one written
 *
 * Prints key=value results on one line; with -o FILE, writes every
 * latency sample (microseconds, one per line) to FILE.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int request(const char *chip, unsigned int first, unsigned int n,
		   const unsigned int *offsets, uint64_t flags)
{
	struct gpio_v2_line_request req;
	char path[64];
	unsigned int i;
	int fd, ret;

	snprintf(path, sizeof(path), "/dev/%s", chip);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		perror(path);
		exit(2);
	}
	memset(&req, 0, sizeof(req));
	for (i = 0; i < n; i++)
		req.offsets[i] = offsets ? offsets[i] : first + i;
	req.num_lines = n;
	req.config.flags = flags;
	snprintf(req.consumer, sizeof(req.consumer), "vgpio-bench");
	ret = ioctl(fd, GPIO_V2_GET_LINE_IOCTL, &req);
	close(fd);
	if (ret < 0) {
		perror("GPIO_V2_GET_LINE_IOCTL");
		exit(2);
	}
	return req.fd;
}

static void report(const char *what, double *lat, unsigned int n, double total_us,
		   const char *out)
{
	FILE *f;
	unsigned int i;

	if (out) {
		f = fopen(out, "w");
		for (i = 0; f && i < n; i++)
			fprintf(f, "%.3f\n", lat[i]);
		if (f)
			fclose(f);
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	/* nearest rank: the sample at or below which 50% (99%) of them are */
	printf("workload=%s n=%u ops_per_s=%.1f p50_us=%.1f p99_us=%.1f\n", what, n,
	       n / (total_us / 1e6), lat[(n + 1) / 2 - 1], lat[(n * 99 + 99) / 100 - 1]);
}

struct task {
	pthread_t thread;
	const char *chip;
	unsigned int line, n;
	double *lat;
	double start, end;
	pthread_barrier_t *ready;
	int failed;
};

static void *par_task(void *arg)
{
	struct task *t = arg;
	struct gpio_v2_line_values v = { .mask = 1 };
	unsigned int i;
	double t0;
	int fd;

	fd = request(t->chip, t->line, 1, NULL, GPIO_V2_LINE_FLAG_OUTPUT);
	/* all lines requested before any task starts its writes */
	pthread_barrier_wait(t->ready);
	t->start = now_us();
	for (i = 0; i < t->n; i++) {
		v.bits = i & 1;
		t0 = now_us();
		if (ioctl(fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0) {
			perror("set");
			t->failed = 1;
			break;
		}
		t->lat[i] = now_us() - t0;
	}
	t->end = now_us();
	close(fd);
	return NULL;
}

/*
 * TASKS threads at once, each writing its own line; latencies of all. The
 * rate counts from the first task's first write to the last task's last
 * (line requests and thread start-up are not in it).
 */
static int par(const char *chip, unsigned int first, unsigned int tasks, unsigned int n,
	       const char *out)
{
	struct task *t = calloc(tasks, sizeof(*t));
	double *lat = calloc((size_t)tasks * n, sizeof(*lat)), start, end;
	pthread_barrier_t ready;
	unsigned int i;
	int failed = 0;
	char what[32];

	if (!t || !lat || !n || !tasks)
		return 2;
	pthread_barrier_init(&ready, NULL, tasks);
	for (i = 0; i < tasks; i++) {
		t[i] = (struct task){ .chip = chip, .line = first + i, .n = n,
				      .lat = lat + (size_t)i * n, .ready = &ready };
		if (pthread_create(&t[i].thread, NULL, par_task, &t[i])) {
			perror("pthread_create");
			return 2;
		}
	}
	start = 1e300;
	end = 0;
	for (i = 0; i < tasks; i++) {
		pthread_join(t[i].thread, NULL);
		failed |= t[i].failed;
		start = t[i].start < start ? t[i].start : start;
		end = t[i].end > end ? t[i].end : end;
	}
	if (failed)
		return 1;
	snprintf(what, sizeof(what), "par%u", tasks);
	report(what, lat, tasks * n, end - start, out);
	return 0;
}

/*
 * One workload on one chip: its line requests and its latency samples.
 * (Or the floor: vgpio_floor's debugfs file, one GET_VALUE per read.)
 */
struct target {
	const char *what;
	int set, fd, fd2, floor, loop, failed;
	unsigned int lines, done;
	double *lat, busy_us;
};

/*
 * Request the lines WHAT needs on CHIP (ARGS: set/get LINE, mset/mget
 * NLINES, loop OUT IN) for N operations.
 */
static int target_open(struct target *t, const char *what, const char *chip, char **args,
		       int nargs, unsigned int n)
{
	memset(t, 0, sizeof(*t));
	t->what = what;
	t->lat = calloc(n ? n : 1, sizeof(*t->lat));
	if (!t->lat)
		return 2;
	if (!strcmp(what, "floor")) {
		t->fd = open(chip, O_RDONLY);
		if (t->fd < 0) {
			perror(chip);
			return 2;
		}
		t->floor = 1;
		return 0;
	}
	if (!strcmp(what, "loop")) {
		if (nargs < 2)
			return 2;
		t->loop = 1;
		t->fd = request(chip, atoi(args[0]), 1, NULL, GPIO_V2_LINE_FLAG_OUTPUT);
		t->fd2 = request(chip, atoi(args[1]), 1, NULL, GPIO_V2_LINE_FLAG_INPUT |
				 GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING);
		return 0;
	}
	if (nargs < 1 || (strcmp(what, "set") && strcmp(what, "get") &&
			  strcmp(what, "mset") && strcmp(what, "mget")))
		return 2;
	t->set = strstr(what, "set") != NULL;
	t->lines = what[0] == 'm' ? atoi(args[0]) : 1;
	if (!t->lines || t->lines > 64)
		return 2;
	t->fd = request(chip, what[0] == 'm' ? 0 : atoi(args[0]), t->lines, NULL,
			t->set ? GPIO_V2_LINE_FLAG_OUTPUT : GPIO_V2_LINE_FLAG_INPUT);
	return 0;
}

/* Operation number t->done, timed; 0, or 1 (reported) on failure */
static int target_op(struct target *t)
{
	unsigned int i = t->done;
	struct gpio_v2_line_values v;
	struct gpio_v2_line_event ev;
	struct pollfd p;
	double t0 = now_us();

	if (t->floor) {
		char buf[2];

		if (pread(t->fd, buf, sizeof(buf), 0) != sizeof(buf)) {
			perror("floor read");
			return 1;
		}
	} else if (t->loop) {
		v = (struct gpio_v2_line_values){ .mask = 1, .bits = !(i & 1) };
		if (ioctl(t->fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0) {
			perror("set");
			return 1;
		}
		p = (struct pollfd){ .fd = t->fd2, .events = POLLIN };
		if (poll(&p, 1, 5000) != 1 || read(t->fd2, &ev, sizeof(ev)) != sizeof(ev)) {
			fprintf(stderr, "loop: no event within 5 s at %u\n", i);
			return 1;
		}
	} else {
		v.mask = t->lines >= 64 ? ~0ULL : (1ULL << t->lines) - 1;
		v.bits = (i & 1) ? 0x5555555555555555ULL : 0xaaaaaaaaaaaaaaaaULL;
		if (ioctl(t->fd, t->set ? GPIO_V2_LINE_SET_VALUES_IOCTL :
				  GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0) {
			perror("values ioctl");
			return 1;
		}
	}
	t->lat[i] = now_us() - t0;
	t->busy_us += t->lat[i];
	t->done++;
	return 0;
}

/*
 * N operations on each of NT targets, BATCH at a time on one before the
 * next, the order of the targets reversed every other cycle (ABBA...), so
 * that none is always first after a switch. Each target's rate is over the
 * time its own operations took (so, in a pair, 1 / its mean latency);
 * alone (NT 1, BATCH N) over the whole run. A target that fails stops;
 * the others go on and are reported (status 1 if any failed). With more
 * than one target, each batch's target is named on standard error before
 * it starts ("batch A"), so that a run that never ends shows whose
 * operation it is stuck in.
 */
static int run_targets(struct target *t, unsigned int nt, unsigned int n, unsigned int batch,
		       char **outs)
{
	unsigned int k, j, b, cycle, left = nt, failed = 0;
	double start = now_us();

	if (!batch || !n)
		return 2;
	for (cycle = 0; left; cycle++) {
		for (j = 0; j < nt; j++) {
			k = cycle & 1 ? nt - 1 - j : j;
			if (t[k].failed || t[k].done == n)
				continue;
			if (nt > 1) {
				fprintf(stderr, "batch %c\n", 'A' + k);
				fflush(stderr);
			}
			for (b = 0; b < batch && t[k].done < n; b++) {
				if (target_op(&t[k])) {
					fprintf(stderr, "target %c failed at operation %u\n",
						'A' + k, t[k].done);
					t[k].failed = 1;
					failed = 1;
					break;
				}
			}
			if (t[k].failed || t[k].done == n)
				left--;
		}
	}
	for (k = 0; k < nt; k++) {
		if (t[k].failed)
			continue;
		if (nt > 1)
			printf("target=%c ", 'A' + k);
		report(t[k].what, t[k].lat, n, nt > 1 ? t[k].busy_us : now_us() - start, outs[k]);
	}
	return failed;
}

/* pair WORKLOAD N BATCH CHIP_A CHIP_B ARGS... [floor=FILE] (see the top) */
static int pair(int argc, char **argv, const char *out)
{
	struct target t[3];
	char *outs[3] = { NULL, NULL, NULL }, *o = out ? strdup(out) : NULL;
	const char *floor = NULL;
	unsigned int n, k, nt = 2;

	if (argc < 7)
		return 2;
	if (!strncmp(argv[argc - 1], "floor=", 6)) {
		floor = argv[argc - 1] + 6;
		argc--;
		nt = 3;
	}
	for (k = 0; o && k < nt; k++) {
		outs[k] = strsep(&o, ",");
		if (!outs[k] || !*outs[k])
			return 2;
	}
	n = atoi(argv[3]);
	for (k = 0; k < nt; k++)
		if (target_open(&t[k], k < 2 ? argv[2] : "floor", k < 2 ? argv[5 + k] : floor,
				argv + 7, argc - 7, n)) {
			fprintf(stderr, "%s: bad workload or arguments\n", argv[1]);
			return 2;
		}
	return run_targets(t, nt, n, atoi(argv[4]), outs);
}

static int usage(void)
{
	fprintf(stderr, "see the comment at the top of vgpio-bench.c for how to use it\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *out = NULL;
	unsigned int n;
	int fd;

	if (argc > 2 && !strcmp(argv[1], "-o")) {
		out = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4)
		return usage();
	if (argc == 6 && !strcmp(argv[1], "par"))
		return par(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), out);
	if (!strcmp(argv[1], "pair"))
		return pair(argc, argv, out);
	if (!strcmp(argv[1], "loop") || !strcmp(argv[1], "set") || !strcmp(argv[1], "get") ||
	    !strcmp(argv[1], "mset") || !strcmp(argv[1], "mget") || !strcmp(argv[1], "floor")) {
		struct target t;
		char *outs[1] = { (char *)out };

		n = atoi(argv[argc - 1]);
		if (target_open(&t, argv[1], argv[2], argv + 3, argc - 4, n))
			return 2;
		return run_targets(&t, 1, n, n, outs);
	}
	if (argc < 5)
		return usage();

	if (!strcmp(argv[1], "count")) {
		struct gpio_v2_line_event ev[16];
		double end;
		unsigned long count = 0, stop = argc > 5 ? strtoul(argv[5], NULL, 0) : 0;
		__u64 edges = GPIO_V2_LINE_FLAG_EDGE_RISING;
		struct pollfd p;
		ssize_t r;

		/* both edges: gpiolib reads the line for each event to tell them apart */
		if (argc <= 6 || strcmp(argv[6], "rising"))
			edges |= GPIO_V2_LINE_FLAG_EDGE_FALLING;
		fd = request(argv[2], atoi(argv[3]), 1, NULL, GPIO_V2_LINE_FLAG_INPUT | edges);
		printf("armed\n");
		fflush(stdout);
		end = now_us() + atof(argv[4]) * 1e6;
		while (now_us() < end && (!stop || count < stop)) {
			p.fd = fd;
			p.events = POLLIN;
			if (poll(&p, 1, 100) == 1) {
				if (p.revents & (POLLERR | POLLHUP)) {
					printf("gone\n");	/* the chip is */
					break;
				}
				r = read(fd, ev, sizeof(ev));
				if (r > 0)
					count += r / sizeof(ev[0]);
			}
		}
		printf("workload=count events=%lu\n", count);
		return 0;
	}
	if (!strcmp(argv[1], "hammer")) {
		struct gpio_v2_line_values v = { .mask = 1 };
		unsigned long ops = 0, bad = 0, errors = 0;
		unsigned int seed = atoi(argv[3]) * 2654435761u + getpid();
		uint64_t want;
		double end;

		fd = request(argv[2], atoi(argv[3]), 1, NULL, GPIO_V2_LINE_FLAG_OUTPUT);
		end = now_us() + atof(argv[4]) * 1e6;
		while (now_us() < end) {
			want = rand_r(&seed) & 1;
			v.bits = want;
			if (ioctl(fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0) {
				errors++;
				if (errno == ENODEV)
					break;	/* the chip is gone */
				continue;
			}
			v.bits = !want;
			if (ioctl(fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0) {
				errors++;
				if (errno == ENODEV)
					break;
			} else if ((v.bits & 1) != want) {
				bad++;
			}
			ops++;
		}
		printf("workload=hammer line=%s ops=%lu mismatches=%lu errors=%lu\n",
		       argv[3], ops, bad, errors);
		return bad || errors || !ops;
	}
	fprintf(stderr, "unknown workload %s\n", argv[1]);
	return 2;
}
