/*
 * rtp-sink: receives the RTP sba-gateway sends (any number of streams) on 127.0.0.1:PORT for
 * SECONDS and measures how far each packet's interval from the one before it in the same stream
 * strays from 20 ms, with kernel receive timestamps (SO_TIMESTAMPNS). On loopback that is the
 * spread of the gateway's departure intervals.
 *
 *   rtp-sink PORT SECONDS
 *   -> rtp streams=S packets=P lost=L n=N p50_us=X p99_us=Y max_us=Z
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 64
#define MAX_SAMPLES 200000

struct stream {
	uint16_t port;
	uint16_t seq;
	int64_t last_us;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s PORT SECONDS\n", argv[0]);
		return 2;
	}
	int seconds = atoi(argv[2]);
	if (seconds < 1 || seconds > 600)
		return 2;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), on = 1;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) ||
	    bind(fd, (struct sockaddr *)&addr, sizeof addr)) {
		perror("rtp-sink");
		return 1;
	}
	static struct stream streams[MAX_STREAMS];
	static int64_t jitter[MAX_SAMPLES];
	size_t nstreams = 0, nj = 0;
	long packets = 0, lost = 0;
	int64_t end = now_us() + (int64_t)seconds * 1000000;
	while (now_us() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		unsigned char buf[2048], control[256];
		struct sockaddr_in from;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
		struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = control, .msg_controllen = sizeof control };
		ssize_t n = recvmsg(fd, &msg, 0);
		if (n < 12)
			continue;
		int64_t at = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
				struct timespec ts;
				memcpy(&ts, CMSG_DATA(c), sizeof ts);
				at = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
			}
		if (at < 0)
			continue;
		packets++;
		uint16_t seq = (uint16_t)(buf[2] << 8 | buf[3]), port = ntohs(from.sin_port);
		struct stream *s = NULL;
		for (size_t i = 0; i < nstreams; i++)
			if (streams[i].port == port)
				s = &streams[i];
		if (!s) {
			if (nstreams == MAX_STREAMS)
				continue;
			s = &streams[nstreams++];
			*s = (struct stream){ .port = port, .seq = seq, .last_us = at };
			continue;
		}
		uint16_t step = (uint16_t)(seq - s->seq);
		/* Only consecutive packets measure an interval; a gap counts as loss. */
		if (step == 1 && nj < MAX_SAMPLES)
			jitter[nj++] = llabs(at - s->last_us - 20000);
		else if (step > 1 && step < 1000)
			lost += step - 1;
		s->seq = seq;
		s->last_us = at;
	}
	qsort(jitter, nj, sizeof *jitter, cmp64);
	printf("rtp streams=%zu packets=%ld lost=%ld n=%zu p50_us=%lld p99_us=%lld max_us=%lld\n", nstreams, packets, lost,
	       nj, nj ? (long long)jitter[nj / 2] : -1, nj ? (long long)jitter[nj * 99 / 100] : -1,
	       nj ? (long long)jitter[nj - 1] : -1);
	return 0;
}
