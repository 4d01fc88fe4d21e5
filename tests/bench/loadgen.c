/* loadgen: a minimal echo load generator for `make bench`. Written as a stopgap before
 * bin/load-client existed; kept for the "saturated" echo table, because it costs so little
 * per message that the server's core stays busy (bin/load-client checks and times every
 * message and is the bottleneck on two cores). It drives one shape and nothing else:
 *
 *   loadgen --server HOST:PORT --connections N --size BYTES --pipeline D --seconds S
 *
 * N connections, each keeping D messages of BYTES unanswered: every time a whole message
 * comes back another one is sent. Every echoed byte is checked (the stream is a known
 * pattern). Single-threaded, raw epoll, level-triggered.
 *
 * Output on stdout, one line each, flushed at once so the driver can sample the server's
 * CPU time at the edges of the measured window:
 *   ready N            all N connections are up and have their first window in flight
 *   start              the measured window begins
 *   end {json}         {"messages":M,"seconds":T,"bytes":B,"errors":E,"mismatch":X}
 * Exit status 0, or 1 when a connection failed or an echo differed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchnet.h"

#define PERIOD	251 /* stream byte at offset o is o % PERIOD */
#define RBUF	65536
#define MAX_EVS 256

struct lconn {
	int fd;
	uint64_t sent;	   /* stream bytes handed to the kernel */
	uint64_t want;	   /* stream bytes that should be sent so far (D messages ahead) */
	uint64_t received; /* stream bytes received and checked */
	int out_armed;	   /* EPOLLOUT in the interest set */
};

static unsigned char pattern[RBUF + 2 * PERIOD];
static uint64_t total_messages, total_bytes, errors, mismatch;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_one(const struct sockaddr_in *sa)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* Blocking connect: on loopback it completes at once (or is refused). */
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void set_out(int ep, struct lconn *c, int on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

	if (c->out_armed == on)
		return;
	c->out_armed = on;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends up to `want`. Returns -1 on a connection failure. */
static int pump(int ep, struct lconn *c)
{
	while (c->sent < c->want) {
		size_t n = c->want - c->sent;
		ssize_t w;

		if (n > RBUF)
			n = RBUF;
		w = send(c->fd, pattern + c->sent % PERIOD, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN) {
				set_out(ep, c, 1);
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->sent += (uint64_t)w;
	}
	set_out(ep, c, 0);
	return 0;
}

static int on_readable(int ep, struct lconn *c, unsigned char *buf, uint64_t size)
{
	ssize_t n = recv(c->fd, buf, RBUF, 0);
	uint64_t before;

	if (n <= 0)
		return (n < 0 && (errno == EAGAIN || errno == EINTR)) ? 0 : -1;
	if (memcmp(buf, pattern + c->received % PERIOD, (size_t)n) != 0)
		mismatch++;
	before = c->received / size;
	c->received += (uint64_t)n;
	total_bytes += (uint64_t)n;
	total_messages += c->received / size - before;
	c->want += (c->received / size - before) * size;
	return pump(ep, c);
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen --server HOST:PORT --connections N --size BYTES "
			"--pipeline D --seconds S\n");
}

int main(int argc, char **argv)
{
	const char *server = NULL;
	long nconn = 100, size = 64, depth = 1;
	double seconds = 10, t0, t_end;
	struct sockaddr_in sa;
	struct lconn *cs;
	static unsigned char buf[RBUF];
	uint64_t m0, b0;
	int ep;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--server") == 0)
			server = argv[i + 1];
		else if (strcmp(argv[i], "--connections") == 0)
			nconn = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--size") == 0)
			size = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--pipeline") == 0)
			depth = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[i + 1]);
		else {
			usage();
			return 2;
		}
	}
	if (server == NULL || bench_parse_hostport(server, &sa) < 0 || nconn < 1 || size < 1 ||
	    depth < 1 || seconds <= 0 || (argc - 1) % 2 != 0) {
		usage();
		return 2;
	}
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)(i % PERIOD);
	cs = calloc((size_t)nconn, sizeof(*cs));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (cs == NULL || ep < 0)
		return 1;
	for (long i = 0; i < nconn; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};

		cs[i].fd = connect_one(&sa);
		if (cs[i].fd < 0) {
			fprintf(stderr, "loadgen: connect %ld: %s\n", i, strerror(errno));
			return 1;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
		cs[i].want = (uint64_t)(size * depth);
	}
	for (long i = 0; i < nconn; i++)
		if (pump(ep, &cs[i]) < 0)
			errors++;
	printf("ready %ld\n", nconn);
	fflush(stdout);
	/* One second of warm-up, then the measured window. */
	t0 = now_s() + 1.0;
	t_end = t0 + seconds;
	m0 = b0 = 0;
	for (int started = 0;;) {
		struct epoll_event evs[MAX_EVS];
		double t = now_s();
		int n;

		if (!started && t >= t0) {
			started = 1;
			m0 = total_messages;
			b0 = total_bytes;
			t0 = t;
			t_end = t0 + seconds;
			printf("start\n");
			fflush(stdout);
		}
		if (started && t >= t_end)
			break;
		n = epoll_wait(ep, evs, MAX_EVS, 10);
		for (int i = 0; i < n; i++) {
			struct lconn *c = evs[i].data.ptr;
			int r = 0;

			if (evs[i].events & EPOLLOUT)
				r = pump(ep, c);
			if (r == 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				r = on_readable(ep, c, buf, (uint64_t)size);
			if (r < 0) {
				errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			}
		}
	}
	printf("end {\"messages\":%llu,\"seconds\":%.6f,\"bytes\":%llu,\"errors\":%llu,"
	       "\"mismatch\":%llu}\n",
	       (unsigned long long)(total_messages - m0), now_s() - t0,
	       (unsigned long long)(total_bytes - b0), (unsigned long long)errors,
	       (unsigned long long)mismatch);
	fflush(stdout);
	for (long i = 0; i < nconn; i++)
		close(cs[i].fd);
	free(cs);
	close(ep);
	return (errors || mismatch) ? 1 : 0;
}
