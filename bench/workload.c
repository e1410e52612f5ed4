/* The benchmark workload: calls work() N times and prints the loop's own time (ns=). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct msg {
	long id;
	const char *name;
	long len;
};

static struct msg msgs[4] = {
	{ 1, "alpha", 10 },
	{ 2, "beta", 20 },
	{ 3, "gamma", 30 },
	{ 4, "delta", 40 },
};

volatile long sink;

/*
 * -DFRAME makes work() set up a frame pointer, so its first instruction is `push %rbp`,
 * which the kernel emulates; without it the first instruction is a rip-relative `mov`,
 * which must be single-stepped out of line. GCC drops the frame of a leaf function
 * even with -fno-omit-frame-pointer, so the frame address is taken explicitly.
 */
#ifdef FRAME
#define KEEP_FRAME() __asm__ volatile("" : : "r"(__builtin_frame_address(0)))
#else
#define KEEP_FRAME() ((void)0)
#endif

/* The probed function: a struct argument with a string member, a varying return value. */
__attribute__((noinline)) long work(struct msg *m, long i)
{
	KEEP_FRAME();
	sink += m->len;
	return m->id * 3 + (i & 7);
}

/* Four more probe sites for the startup benchmark (five probes in all). */
__attribute__((noinline)) long aux1(long x) { sink += x; return x + 1; }
__attribute__((noinline)) long aux2(long x) { sink ^= x; return x + 2; }
__attribute__((noinline)) long aux3(long x) { sink -= x; return x + 3; }
__attribute__((noinline)) long aux4(long x) { sink |= x; return x + 4; }

static long now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	/* Wall-clock time at main, for the startup benchmark (launch → traced command running). */
	long main_at = now_ns(CLOCK_REALTIME);
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	long acc = aux1(1) + aux2(2) + aux3(3) + aux4(4);
	/* Touch the names so their page is mapped: a probe cannot fault it in. */
	for (int k = 0; k < 4; k++)
		acc += msgs[k].name[0];
	long t0 = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < n; i++)
		acc += work(&msgs[i & 3], i);
	long t1 = now_ns(CLOCK_MONOTONIC);
	printf("calls=%ld ns=%ld acc=%ld main_at=%ld\n", n, t1 - t0, acc, main_at);
	return 0;
}
