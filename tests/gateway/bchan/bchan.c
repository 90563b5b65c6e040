/*
 * bchan: plays a known pattern into a DAHDI B-channel and reads what comes back, for the gateway
 * VM test and bench (the far end's B-channel, behind sba-gateway and an RTP echo).
 *
 *   bchan CHANNO SECONDS
 *
 * Writes one 160-octet frame of a numbered pseudo-random pattern per block read, for SECONDS, then
 * reads one second more. Prints two lines:
 *   intervals n=N p50_us=X p99_us=Y max_us=Z   (|time between block reads - 20 ms|: DAHDI's own jitter)
 *   audio frames=F matched=M in_order=B longest=L gaps=G idle=I foreign=X reordered=R delay_ms=D
 * F frames were sent (after the first SKIP_FRAMES), M of them came back whole, byte for byte. Every
 * octet that came back is accounted for: I idle octets (the µ-law silence a channel plays when
 * nothing was written in time: 0xFF, 0x7F, which the pattern never holds), B octets of the sent
 * stream in the order sent, with G gaps (octets lost) between them and the longest unbroken run L
 * octets long; X octets that are neither (altered audio), R octets of the sent stream out of order
 * (repeated or reordered). D is the round trip of the first frame found.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* From dahdi/user.h (see shared/conformance/dahdi-ioctls.md); Debian installs no DAHDI headers. */
#define DAHDI_CODE 0xDA
#define DAHDI_SET_BLOCKSIZE _IOW(DAHDI_CODE, 1, int)
#define DAHDI_GETEVENT _IOR(DAHDI_CODE, 8, int)
#define DAHDI_SPECIFY _IOW(DAHDI_CODE, 38, int)
#define DAHDI_ELAST 500

#define BLOCK 160
#define SKIP_FRAMES 5 /* the first frames may be lost while RTP starts */
#define WINDOW 8      /* octets that place a piece of what came back in the sent stream */

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Frame k of the pattern: xorshift from k, never the idle octets 0xFF and 0x7F. */
static void pattern(uint32_t k, unsigned char *out)
{
	uint32_t x = k * 2654435761u + 12345;
	for (int i = 0; i < BLOCK; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		unsigned char b = (unsigned char)(x >> 8);
		out[i] = (b == 0xFF || b == 0x7F) ? 0x55 : b;
	}
}

static int is_idle(unsigned char b)
{
	return b == 0xFF || b == 0x7F;
}

static uint32_t window_hash(const unsigned char *w)
{
	uint64_t v;
	memcpy(&v, w, sizeof v);
	return (uint32_t)((v * 0x9E3779B97F4A7C15ull) >> 32);
}

/* Positions of the sent stream by their first WINDOW octets: open addressing, 0 = empty, else pos + 1. */
struct index {
	uint32_t *slot;
	uint32_t mask;
};

static int index_build(struct index *ix, const unsigned char *tx, size_t len)
{
	size_t size = 1;
	while (size < 2 * len + 2)
		size <<= 1;
	ix->slot = calloc(size, sizeof *ix->slot);
	ix->mask = (uint32_t)(size - 1);
	if (!ix->slot)
		return -1;
	for (size_t p = 0; p + WINDOW <= len; p++) {
		uint32_t h = window_hash(tx + p) & ix->mask;
		while (ix->slot[h])
			h = (h + 1) & ix->mask;
		ix->slot[h] = (uint32_t)p + 1;
	}
	return 0;
}

/* Where the sent stream holds `w` (WINDOW octets), preferring the first place at or after `from`; -1 if nowhere. */
static long index_find(const struct index *ix, const unsigned char *tx, const unsigned char *w, size_t from)
{
	long before = -1;
	for (uint32_t h = window_hash(w) & ix->mask; ix->slot[h]; h = (h + 1) & ix->mask) {
		size_t p = ix->slot[h] - 1;
		if (memcmp(tx + p, w, WINDOW))
			continue;
		if (p >= from)
			return (long)p;
		before = (long)p;
	}
	return before;
}

struct accounting {
	size_t idle, in_order, longest, gaps, foreign, reordered;
};

/*
 * Accounts for every octet of what came back (rx) against what was sent (tx): idle, or a piece of
 * the sent stream (in order after the previous piece, or not), or foreign. A piece is placed by
 * its first WINDOW octets (pseudo-random: one place in the stream) and runs while the octets agree.
 */
static struct accounting account(const unsigned char *rx, size_t rx_len, const unsigned char *tx, size_t tx_len,
				 const struct index *ix)
{
	struct accounting a = { 0 };
	/* Where the sent stream goes on, and how much of it came back unbroken up to there (idle
	 * octets inside are a late block, not a break; a lost, altered or repeated octet is). */
	size_t cursor = 0, run = 0;
	size_t i = 0;
	while (i < rx_len) {
		if (is_idle(rx[i])) {
			a.idle++;
			i++;
			continue;
		}
		size_t len = 0;
		long p = -1;
		if (cursor < tx_len && rx[i] == tx[cursor]) {
			p = (long)cursor; /* the piece goes on where the last one stopped (after idle octets) */
		} else if (i + WINDOW <= rx_len) {
			p = index_find(ix, tx, rx + i, cursor);
		}
		if (p >= 0)
			while (i + len < rx_len && (size_t)p + len < tx_len && rx[i + len] == tx[p + len])
				len++;
		if (p < 0) {
			a.foreign++;
			run = 0;
			i++;
			continue;
		}
		if ((size_t)p >= cursor) {
			if ((size_t)p > cursor && a.in_order > 0)
				a.gaps++;
			run = (size_t)p == cursor ? run + len : len;
			if (run > a.longest)
				a.longest = run;
			a.in_order += len;
			cursor = (size_t)p + len;
		} else {
			/* A piece sent before what already came back: it ends where that began. */
			if (len > cursor - (size_t)p)
				len = cursor - (size_t)p;
			a.reordered += len;
			run = 0;
		}
		i += len;
	}
	return a;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Reads a block, fetching a pending DAHDI event when read fails with ELAST. */
static ssize_t read_block(int fd, unsigned char *buf)
{
	for (;;) {
		ssize_t n = read(fd, buf, BLOCK);
		if (n >= 0 || (errno != DAHDI_ELAST && errno != EINTR))
			return n;
		int event;
		if (errno == DAHDI_ELAST)
			ioctl(fd, DAHDI_GETEVENT, &event);
	}
}

static void write_block(int fd, const unsigned char *buf)
{
	/* A write takes at most one block and may take less. */
	for (int done = 0, tries = 0; done < BLOCK && tries < 10; tries++) {
		ssize_t n = write(fd, buf + done, BLOCK - done);
		if (n > 0) {
			done += n;
		} else if (n < 0 && errno == DAHDI_ELAST) {
			int event;
			ioctl(fd, DAHDI_GETEVENT, &event);
		} else if (n < 0 && errno != EINTR) {
			return;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s CHANNO SECONDS\n", argv[0]);
		return 2;
	}
	int channo = atoi(argv[1]), seconds = atoi(argv[2]);
	if (seconds < 1 || seconds > 600) {
		fprintf(stderr, "bchan: SECONDS from 1 to 600\n");
		return 2;
	}
	int fd = open("/dev/dahdi/channel", O_RDWR);
	int size = BLOCK;
	if (fd < 0 || ioctl(fd, DAHDI_SPECIFY, &channo) || ioctl(fd, DAHDI_SET_BLOCKSIZE, &size)) {
		perror("bchan: opening the channel");
		return 1;
	}
	size_t frames = (size_t)seconds * 50, total = frames + 50;
	unsigned char *rx = calloc(total, BLOCK);
	int64_t *sent_at = calloc(frames, sizeof *sent_at), *read_at = calloc(total, sizeof *read_at);
	int64_t *jitter = calloc(total, sizeof *jitter);
	if (!rx || !sent_at || !read_at || !jitter)
		return 1;

	unsigned char tx[BLOCK];
	size_t reads = 0, written = 0;
	int64_t deadline = now_us() + (int64_t)(seconds + 2) * 1000000;
	while (reads < total && now_us() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLPRI };
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t n = read_block(fd, rx + reads * BLOCK);
		if (n != BLOCK)
			continue;
		read_at[reads++] = now_us();
		if (written < frames) {
			pattern((uint32_t)written, tx);
			write_block(fd, tx);
			sent_at[written++] = now_us();
		}
	}

	size_t nj = 0;
	for (size_t i = 1; i < reads; i++)
		jitter[nj++] = llabs(read_at[i] - read_at[i - 1] - 20000);
	qsort(jitter, nj, sizeof *jitter, cmp64);
	printf("intervals n=%zu p50_us=%lld p99_us=%lld max_us=%lld\n", nj, nj ? (long long)jitter[nj / 2] : -1,
	       nj ? (long long)jitter[nj * 99 / 100] : -1, nj ? (long long)jitter[nj - 1] : -1);

	size_t tx_len = written * BLOCK;
	unsigned char *sent = malloc(tx_len ? tx_len : 1);
	struct index ix;
	if (!sent)
		return 1;
	for (size_t k = 0; k < written; k++)
		pattern((uint32_t)k, sent + k * BLOCK);
	if (index_build(&ix, sent, tx_len))
		return 1;
	struct accounting a = account(rx, reads * BLOCK, sent, tx_len, &ix);

	size_t matched = 0;
	long long delay_ms = -1;
	for (size_t k = SKIP_FRAMES; k < written; k++) {
		unsigned char *hit = memmem(rx, reads * BLOCK, sent + k * BLOCK, BLOCK);
		if (!hit)
			continue;
		matched++;
		if (delay_ms < 0) {
			size_t block = (size_t)(hit - rx) / BLOCK;
			delay_ms = (read_at[block] - sent_at[k]) / 1000;
		}
	}
	printf("audio frames=%zu matched=%zu in_order=%zu longest=%zu gaps=%zu idle=%zu foreign=%zu reordered=%zu "
	       "delay_ms=%lld\n",
	       written > SKIP_FRAMES ? written - SKIP_FRAMES : 0, matched, a.in_order, a.longest, a.gaps, a.idle,
	       a.foreign, a.reordered, delay_ms);
	return 0;
}
