/*
 * pri-peer: the independent far end of Holdfast's PRI tests, on libpri (Debian libpri-dev, the
 * Q.931 stack Asterisk uses). It runs one D-channel and is driven line by line on stdin; it
 * reports what happens on stdout, one line per event.
 *
 *   pri-peer (--dahdi CHANNO | --fd N) [--network | --cpe] [--t1 | --e1] [--answer]
 *
 * --dahdi opens DAHDI channel CHANNO (an HDLC-FCS D-channel) through /dev/dahdi/channel;
 * --fd uses an inherited datagram socket carrying frames plus two FCS octets, as DAHDI does.
 *
 * Commands:  call CHAN NUMBER | alert ID | answer ID | hangup ID CAUSE | quit
 *            | overlap CHAN DIGITS | info ID DIGITS
 *            | seize N NUMBER HOLD_MS | bench N CONCURRENT NUMBER | report | deaf MS
 * Events:    up | down | placed ID | ring ID chan=N called=NUM calling=NUM | refused chan=N cause=N
 *            | proceeding ID chan=N | setup_ack ID chan=N
 *            | ringing ID | answer ID | connect_ack ID | hangup_req ID cause=N | hangup ID cause=N
 *            | error TEXT
 *            | seized n=N failed=F proceeding_ms=X answered_ms=Y | released n=N ms=X
 *            | bench n=N failed=F ms=X cps=Y | report started=N answered=N done=N failed=N
 * overlap places a call without sending complete (overlap dialling: the far end collects the
 * number); info sends more DIGITS in INFORMATION messages, one digit each.
 * A ring is answered with CALL PROCEEDING at once (and CONNECT with --answer); a DISCONNECT
 * (hangup_req) with RELEASE.
 * seize places N calls at once on free B-channels, reports when all are answered, holds them for
 * HOLD_MS and clears them all; bench sets up N calls, CONCURRENT at a time, each cleared (cause 16)
 * as soon as it is answered. Their calls report no per-call events.
 * deaf stops reading the D-channel for MS milliseconds (deaf 0: reads again at once): the far end's
 * frames wait in the kernel while ours still go out, so a SETUP placed meanwhile crosses one the
 * far end sent (glare).
 * B-channels are managed as Asterisk does on the network side: a SETUP for a channel in use gets
 * another free one if the channel was only preferred, else RELEASE COMPLETE with cause 44.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpri.h>

/* From dahdi/user.h (see shared/conformance/dahdi-ioctls.md); Debian installs no DAHDI headers. */
struct dahdi_bufferinfo {
	int txbufpolicy, rxbufpolicy, numbufs, bufsize, readbufs, writebufs;
};
#define DAHDI_CODE 0xDA
#define DAHDI_GETEVENT _IOR(DAHDI_CODE, 8, int)
#define DAHDI_SPECIFY _IOW(DAHDI_CODE, 38, int)
#define DAHDI_GET_BUFINFO _IOR(DAHDI_CODE, 27, struct dahdi_bufferinfo)
#define DAHDI_SET_BUFINFO _IOW(DAHDI_CODE, 27, struct dahdi_bufferinfo)

/* libpri channel values: B-channel in bits 0-7, logical span in 8-15, explicit flag above; -1 none. */
#define CHANNEL_OF(c) ((c) < 0 ? -1 : ((c) & 0xFF))

#define MAX_CALLS 64

struct call {
	q931_call *call;
	int channel;
	int bench;
	int answered;
};

/* The seize or bench run in progress. */
static struct {
	int active, hold, total, concurrent, started, proceeding, answered, done, failed, seized;
	long long t0_us, proceeding_us, answered_us, hold_ms, release_at_us, release_us;
	char number[64];
} bench;
static int auto_answer;
/* Until then the D-channel is not read (the deaf command). */
static long long deaf_until_us;

static struct call calls[MAX_CALLS];
static struct pri *pri;
static int law = PRI_LAYER_1_ULAW;
static int bchannels = 23;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void pri_message_cb(struct pri *p, char *s)
{
	(void)p;
	fputs(s, stderr);
}

static int slot_of(q931_call *c)
{
	for (int i = 0; i < MAX_CALLS; i++)
		if (calls[i].call == c)
			return i;
	return -1;
}

static int new_slot(q931_call *c, int channel)
{
	for (int i = 0; i < MAX_CALLS; i++)
		if (!calls[i].call) {
			calls[i] = (struct call){ .call = c, .channel = channel };
			return i;
		}
	return -1;
}

static int channel_busy(int channel)
{
	for (int i = 0; i < MAX_CALLS; i++)
		if (calls[i].call && calls[i].channel == channel)
			return 1;
	return 0;
}

static int is_bchannel(int channel)
{
	/* E1: timeslots 1-31 without 16; T1: 1-23. */
	if (bchannels == 30)
		return channel >= 1 && channel <= 31 && channel != 16;
	return channel >= 1 && channel <= 23;
}

/* The network side hunts from the top. */
static int free_channel(void)
{
	for (int c = bchannels == 30 ? 31 : 23; c >= 1; c--)
		if (is_bchannel(c) && !channel_busy(c))
			return c;
	return -1;
}

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int open_dahdi(int channo)
{
	int fd = open("/dev/dahdi/channel", O_RDWR);
	if (fd < 0) {
		perror("/dev/dahdi/channel");
		return -1;
	}
	if (ioctl(fd, DAHDI_SPECIFY, &channo)) {
		perror("DAHDI_SPECIFY");
		return -1;
	}
	struct dahdi_bufferinfo bi;
	if (ioctl(fd, DAHDI_GET_BUFINFO, &bi)) {
		perror("DAHDI_GET_BUFINFO");
		return -1;
	}
	bi.txbufpolicy = 0;
	bi.rxbufpolicy = 0;
	bi.numbufs = 32;
	bi.bufsize = 1024;
	if (ioctl(fd, DAHDI_SET_BUFINFO, &bi)) {
		perror("DAHDI_SET_BUFINFO");
		return -1;
	}
	return fd;
}

/* SETUP on CHANNEL (exclusive) for NUMBER, complete or to be continued; the slot, or -1. */
static int place_call(int channel, const char *number, int complete)
{
	q931_call *call = pri_new_call(pri);
	struct pri_sr *sr = pri_sr_new();
	if (!call || !sr) {
		say("error cannot make a call");
		return -1;
	}
	pri_sr_set_channel(sr, channel, 1, 0);
	pri_sr_set_bearer(sr, PRI_TRANS_CAP_SPEECH, law);
	pri_sr_set_called(sr, (char *)number, PRI_UNKNOWN, complete);
	pri_sr_set_caller(sr, "5551000", NULL, PRI_UNKNOWN, PRES_ALLOWED_USER_NUMBER_NOT_SCREENED);
	int id = new_slot(call, channel);
	if (id >= 0 && pri_setup(pri, call, sr)) {
		say("error setup failed");
		calls[id].call = NULL;
		id = -1;
	}
	pri_sr_free(sr);
	return id;
}

static void bench_place(void)
{
	while (bench.started < bench.total && bench.started - bench.done < bench.concurrent) {
		int channel = free_channel();
		int id = channel < 0 ? -1 : place_call(channel, bench.number, 1);
		if (id < 0)
			return;
		calls[id].bench = 1;
		bench.started++;
	}
}

static void bench_release_all(void)
{
	bench.release_us = now_us();
	bench.release_at_us = 0;
	for (int i = 0; i < MAX_CALLS; i++)
		if (calls[i].call && calls[i].bench)
			pri_hangup(pri, calls[i].call, PRI_CAUSE_NORMAL_CLEARING);
}

/* A bench call's progress; returns 1 when the event was a bench call's. */
static int bench_event(pri_event *e)
{
	int id;
	switch (e->e) {
	case PRI_EVENT_PROCEEDING:
		id = slot_of(e->proceeding.call);
		if (id < 0 || !calls[id].bench)
			return 0;
		if (++bench.proceeding == bench.total)
			bench.proceeding_us = now_us();
		return 1;
	case PRI_EVENT_RINGING:
		id = slot_of(e->ringing.call);
		return id >= 0 && calls[id].bench;
	case PRI_EVENT_ANSWER:
		id = slot_of(e->answer.call);
		if (id < 0 || !calls[id].bench)
			return 0;
		calls[id].answered = 1;
		if (++bench.answered == bench.total)
			bench.answered_us = now_us();
		if (!bench.hold)
			pri_hangup(pri, calls[id].call, PRI_CAUSE_NORMAL_CLEARING);
		break;
	case PRI_EVENT_HANGUP_REQ:
	case PRI_EVENT_HANGUP:
	case PRI_EVENT_HANGUP_ACK:
		id = slot_of(e->hangup.call);
		if (id < 0 || !calls[id].bench)
			return 0;
		if (e->e != PRI_EVENT_HANGUP_ACK)
			pri_hangup(pri, e->hangup.call, e->hangup.cause);
		if (!calls[id].answered)
			bench.failed++;
		calls[id].call = NULL;
		bench.done++;
		break;
	default:
		return 0;
	}
	long long t = now_us();
	if (bench.hold && !bench.seized && bench.answered + bench.failed >= bench.total) {
		bench.seized = 1;
		say("seized n=%d failed=%d proceeding_ms=%.1f answered_ms=%.1f", bench.total, bench.failed,
		    bench.proceeding_us ? (bench.proceeding_us - bench.t0_us) / 1000.0 : -1.0,
		    bench.answered_us ? (bench.answered_us - bench.t0_us) / 1000.0 : -1.0);
		bench.release_at_us = t + bench.hold_ms * 1000;
	}
	if (bench.done == bench.total) {
		if (bench.hold)
			say("released n=%d ms=%.1f", bench.total, (t - bench.release_us) / 1000.0);
		else
			say("bench n=%d failed=%d ms=%.1f cps=%.1f", bench.total, bench.failed, (t - bench.t0_us) / 1000.0,
			    (bench.total - bench.failed) * 1e6 / (double)(t - bench.t0_us));
		bench.active = 0;
	} else if (!bench.hold) {
		bench_place();
	}
	return 1;
}

static void bench_start(int total, int concurrent, int hold, long long hold_ms, const char *number)
{
	if (bench.active) {
		say("error a bench is running");
		return;
	}
	memset(&bench, 0, sizeof bench);
	bench.active = 1;
	bench.total = total;
	bench.concurrent = concurrent;
	bench.hold = hold;
	bench.hold_ms = hold_ms;
	snprintf(bench.number, sizeof bench.number, "%s", number);
	bench.t0_us = now_us();
	bench_place();
}

static void handle_event(pri_event *e)
{
	if (bench.active && bench_event(e))
		return;
	int id;
	switch (e->e) {
	case PRI_EVENT_DCHAN_UP:
		say("up");
		break;
	case PRI_EVENT_DCHAN_DOWN:
		say("down");
		break;
	case PRI_EVENT_RING: {
		int channel = CHANNEL_OF(e->ring.channel);
		if (channel < 1 || channel_busy(channel)) {
			if (channel >= 1 && !e->ring.flexible) {
				say("refused chan=%d cause=%d", channel, PRI_CAUSE_REQUESTED_CHAN_UNAVAIL);
				pri_hangup(pri, e->ring.call, PRI_CAUSE_REQUESTED_CHAN_UNAVAIL);
				break;
			}
			channel = free_channel();
		}
		if (channel < 1) {
			say("refused chan=none cause=%d", PRI_CAUSE_NORMAL_CIRCUIT_CONGESTION);
			pri_hangup(pri, e->ring.call, PRI_CAUSE_NORMAL_CIRCUIT_CONGESTION);
			break;
		}
		id = new_slot(e->ring.call, channel);
		if (id < 0) {
			pri_hangup(pri, e->ring.call, PRI_CAUSE_SWITCH_CONGESTION);
			say("error too many calls");
			break;
		}
		pri_proceeding(pri, e->ring.call, channel, 0);
		if (auto_answer)
			pri_answer(pri, e->ring.call, channel, 0);
		say("ring %d chan=%d called=%s calling=%s", id, channel, e->ring.callednum, e->ring.callingnum);
		break;
	}
	case PRI_EVENT_PROCEEDING:
		id = slot_of(e->proceeding.call);
		if (id >= 0 && e->proceeding.channel > 0)
			calls[id].channel = CHANNEL_OF(e->proceeding.channel);
		say("proceeding %d chan=%d", id, CHANNEL_OF(e->proceeding.channel));
		break;
	case PRI_EVENT_RINGING:
		say("ringing %d", slot_of(e->ringing.call));
		break;
	case PRI_EVENT_SETUP_ACK:
		say("setup_ack %d chan=%d", slot_of(e->setup_ack.call), CHANNEL_OF(e->setup_ack.channel));
		break;
	case PRI_EVENT_ANSWER:
		say("answer %d", slot_of(e->answer.call));
		break;
	case PRI_EVENT_CONNECT_ACK:
		say("connect_ack %d", slot_of(e->connect_ack.call));
		break;
	case PRI_EVENT_HANGUP_REQ:
		say("hangup_req %d cause=%d", slot_of(e->hangup.call), e->hangup.cause);
		pri_hangup(pri, e->hangup.call, e->hangup.cause);
		break;
	case PRI_EVENT_HANGUP:
		id = slot_of(e->hangup.call);
		say("hangup %d cause=%d", id, e->hangup.cause);
		/* Frees libpri's record of the call, which is in the null state now. */
		pri_hangup(pri, e->hangup.call, e->hangup.cause);
		if (id >= 0)
			calls[id].call = NULL;
		break;
	case PRI_EVENT_HANGUP_ACK:
		id = slot_of(e->hangup.call);
		say("hangup_ack %d", id);
		if (id >= 0)
			calls[id].call = NULL;
		break;
	default:
		say("event %d", e->e);
		break;
	}
}

static struct call *lookup(int id)
{
	if (id < 0 || id >= MAX_CALLS || !calls[id].call) {
		say("error no call %d", id);
		return NULL;
	}
	return &calls[id];
}

/* Returns 0 to stop. */
static int handle_command(char *line)
{
	int a, b;
	char number[64];
	struct call *c;

	if (sscanf(line, "call %d %63s", &a, number) == 2) {
		if (!is_bchannel(a) || channel_busy(a)) {
			say("error channel %d not free", a);
			return 1;
		}
		int id = place_call(a, number, 1);
		if (id >= 0)
			say("placed %d", id);
	} else if (sscanf(line, "overlap %d %63s", &a, number) == 2) {
		if (!is_bchannel(a) || channel_busy(a)) {
			say("error channel %d not free", a);
			return 1;
		}
		pri_set_overlapdial(pri, 1);
		int id = place_call(a, number, 0);
		if (id >= 0)
			say("placed %d", id);
	} else if (sscanf(line, "info %d %63s", &a, number) == 2) {
		if ((c = lookup(a)))
			for (const char *d = number; *d; d++)
				pri_information(pri, c->call, *d);
	} else if (sscanf(line, "seize %d %63s %d", &a, number, &b) == 3) {
		if (a >= 1 && a <= MAX_CALLS && b >= 0)
			bench_start(a, a, 1, b, number);
		else
			say("error seize: 1 to %d calls", MAX_CALLS);
	} else if (sscanf(line, "bench %d %d %63s", &a, &b, number) == 3) {
		if (a >= 1 && b >= 1 && b <= MAX_CALLS)
			bench_start(a, b, 0, 0, number);
		else
			say("error bench: 1 to %d at a time", MAX_CALLS);
	} else if (sscanf(line, "deaf %d", &a) == 1) {
		deaf_until_us = now_us() + (long long)a * 1000;
	} else if (strncmp(line, "report", 6) == 0) {
		say("report started=%d answered=%d done=%d failed=%d", bench.started, bench.answered, bench.done,
		    bench.failed);
	} else if (sscanf(line, "alert %d", &a) == 1) {
		if ((c = lookup(a)))
			pri_acknowledge(pri, c->call, c->channel, 0);
	} else if (sscanf(line, "answer %d", &a) == 1) {
		if ((c = lookup(a)))
			pri_answer(pri, c->call, c->channel, 0);
	} else if (sscanf(line, "hangup %d %d", &a, &b) == 2) {
		if ((c = lookup(a)))
			pri_hangup(pri, c->call, b);
	} else if (strncmp(line, "quit", 4) == 0) {
		return 0;
	} else {
		say("error unknown command: %s", line);
	}
	return 1;
}

int main(int argc, char **argv)
{
	int fd = -1, dahdi = 0, node = PRI_NETWORK, switchtype = PRI_SWITCH_NI2;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dahdi") && i + 1 < argc)
			fd = open_dahdi(atoi(argv[++i])), dahdi = 1;
		else if (!strcmp(argv[i], "--fd") && i + 1 < argc)
			fd = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--network"))
			node = PRI_NETWORK;
		else if (!strcmp(argv[i], "--cpe"))
			node = PRI_CPE;
		else if (!strcmp(argv[i], "--t1"))
			switchtype = PRI_SWITCH_NI2, law = PRI_LAYER_1_ULAW, bchannels = 23;
		else if (!strcmp(argv[i], "--answer"))
			auto_answer = 1;
		else if (!strcmp(argv[i], "--e1"))
			switchtype = PRI_SWITCH_EUROISDN_E1, law = PRI_LAYER_1_ALAW, bchannels = 30;
		else {
			fprintf(stderr, "usage: %s (--dahdi CHANNO | --fd N) [--network | --cpe] [--t1 | --e1] [--answer]\n", argv[0]);
			return 2;
		}
	}
	if (fd < 0) {
		fprintf(stderr, "pri-peer: no D-channel\n");
		return 2;
	}
	pri_set_message(pri_message_cb);
	pri_set_error(pri_message_cb);
	pri = pri_new(fd, node, switchtype);
	if (!pri) {
		fprintf(stderr, "pri-peer: pri_new failed\n");
		return 1;
	}
	if (getenv("PRI_PEER_DEBUG"))
		pri_set_debug(pri, PRI_DEBUG_Q921_STATE | PRI_DEBUG_Q931_DUMP | PRI_DEBUG_Q931_STATE);

	char line[256];
	size_t used = 0;
	for (;;) {
		int timeout = -1;
		struct timeval *next = pri_schedule_next(pri);
		if (next) {
			struct timeval now;
			gettimeofday(&now, NULL);
			long ms = (next->tv_sec - now.tv_sec) * 1000 + (next->tv_usec - now.tv_usec) / 1000;
			timeout = ms < 0 ? 0 : (int)ms;
		}
		/* A call the bench could not place (no free channel yet, link busy) is tried again. */
		if (bench.active && !bench.hold) {
			bench_place();
			if (bench.started - bench.done < bench.concurrent && bench.started < bench.total &&
			    (timeout < 0 || timeout > 100))
				timeout = 100;
		}
		if (bench.release_at_us) {
			long long ms = (bench.release_at_us - now_us()) / 1000;
			if (ms <= 0) {
				bench_release_all();
				continue;
			}
			if (timeout < 0 || ms < timeout)
				timeout = (int)ms;
		}
		short dchannel = POLLIN | POLLPRI;
		if (deaf_until_us) {
			long long ms = (deaf_until_us - now_us()) / 1000;
			if (ms <= 0)
				deaf_until_us = 0;
			else {
				dchannel = 0;
				if (timeout < 0 || ms < timeout)
					timeout = (int)ms + 1;
			}
		}
		struct pollfd fds[2] = { { .fd = fd, .events = dchannel }, { .fd = 0, .events = POLLIN } };
		int n = poll(fds, 2, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		if (n == 0) {
			pri_event *e = pri_schedule_run(pri);
			if (e)
				handle_event(e);
			continue;
		}
		/* A queued DAHDI event (an alarm change left by the channel's last user) makes every
		 * read fail with errno 500 until it is fetched; libpri does not fetch it. */
		if (dahdi && (fds[0].revents & POLLPRI)) {
			int event;
			if (!ioctl(fd, DAHDI_GETEVENT, &event))
				fprintf(stderr, "pri-peer: DAHDI event %d\n", event);
		}
		if (fds[0].revents & (POLLIN | POLLPRI)) {
			pri_event *e = pri_check_event(pri);
			if (e)
				handle_event(e);
		}
		if (fds[1].revents & (POLLIN | POLLHUP)) {
			ssize_t r = read(0, line + used, sizeof(line) - 1 - used);
			if (r <= 0)
				return 0;
			used += (size_t)r;
			line[used] = '\0';
			char *nl;
			while ((nl = strchr(line, '\n'))) {
				*nl = '\0';
				if (!handle_command(line))
					return 0;
				used -= (size_t)(nl + 1 - line);
				memmove(line, nl + 1, used + 1);
			}
			if (used == sizeof(line) - 1)
				used = 0; /* an overlong line: dropped */
		}
	}
}
