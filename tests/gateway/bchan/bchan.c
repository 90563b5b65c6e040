/*
 * bchan: plays a known pattern into a DAHDI B-channel and reads what comes back, for the gateway
 * VM test and bench (the far end's B-channel, behind sba-gateway and an RTP echo).
 *
 *   bchan CHANNO SECONDS
 *
 * Writes one 160-octet frame of a numbered pseudo-random pattern per block read, for SECONDS, then
 * reads one second more. Prints two lines:
 *   intervals n=N p50_us=X p99_us=Y max_us=Z   (|time between block reads - 20 ms|: DAHDI's own jitter)
 *   audio frames=F matched=M delay_ms=D        (frames found byte for byte in what came back, and
 *                                               the round trip of the first one found)
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

	size_t matched = 0;
	long long delay_ms = -1;
	for (size_t k = SKIP_FRAMES; k < written; k++) {
		pattern((uint32_t)k, tx);
		unsigned char *hit = memmem(rx, reads * BLOCK, tx, BLOCK);
		if (!hit)
			continue;
		matched++;
		if (delay_ms < 0) {
			size_t block = (size_t)(hit - rx) / BLOCK;
			delay_ms = (read_at[block] - sent_at[k]) / 1000;
		}
	}
	printf("audio frames=%zu matched=%zu delay_ms=%lld\n", written > SKIP_FRAMES ? written - SKIP_FRAMES : 0,
	       matched, delay_ms);
	return 0;
}
