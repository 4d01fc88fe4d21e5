/* Claim 14: the application learns that the peer closed when recv() returns 0.
 *
 * What epoll reports (level-triggered, EPOLLIN|EPOLLOUT|EPOLLRDHUP registered) before any
 * read, then what recv() returns, when the peer: shuts down its sending side; sends 5
 * bytes and closes; resets. Then both sides shut down. Linux's tcp_poll() sets EPOLLRDHUP
 * (and EPOLLIN) once RCV_SHUTDOWN is set by the FIN, EPOLLHUP only when both directions
 * are shut down (or on reset), and EPOLLERR while sk_err is pending. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID    "14"
#define CLAIM "The application learns that the peer closed when recv() returns 0"

enum peer { SHUT_WR_ONLY, DATA_THEN_CLOSE, RESET, BOTH_SHUT, NPEER };
static const char *peer_name[] = {"peer shutdown(SHUT_WR)", "peer sent 5 bytes then close()",
				  "peer reset (SO_LINGER 0)",
				  "peer shutdown(SHUT_WR), then we shutdown(SHUT_WR)"};

struct outcome {
	uint32_t before, after; /* epoll events before and after the peer acted */
	ssize_t rc[2];
	int err[2];
};

static void events(struct lab_str *s, uint32_t ev)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} bits[] = {{EPOLLIN, "IN"},
		    {EPOLLOUT, "OUT"},
		    {EPOLLRDHUP, "RDHUP"},
		    {EPOLLHUP, "HUP"},
		    {EPOLLERR, "ERR"}};
	const char *sep = "";

	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (ev & bits[i].bit) {
			lab_add(s, "%s%s", sep, bits[i].name);
			sep = "+";
		}
	if (!*sep)
		lab_add(s, "none");
}

/* Level-triggered, and EPOLLOUT is always ready: polls (timeout 0) until events other
 * than OUT show up or wait_ms passes. */
static int wait_events(int ep, int wait_ms, uint32_t *got)
{
	int64_t end = lab_now_us() + (int64_t)wait_ms * 1000;
	struct epoll_event e;
	int n;

	for (;;) {
		n = epoll_wait(ep, &e, 1, 0);
		if (n < 0)
			return lab_sysfail("epoll_wait");
		*got = n ? e.events : 0;
		if ((*got & ~(uint32_t)EPOLLOUT) || lab_now_us() >= end)
			return 0;
		lab_sleep_ms(5);
	}
}

static int peer_acts(struct lab_pair *p, enum peer who)
{
	if (who == SHUT_WR_ONLY || who == BOTH_SHUT)
		return shutdown(p->b, SHUT_WR) < 0 ? lab_sysfail("shutdown(SHUT_WR)") : 0;
	if (who == DATA_THEN_CLOSE && send(p->b, "hello", 5, 0) != 5)
		return lab_sysfail("send");
	if (who == RESET && lab_set_linger(p->b, 1, 0) < 0)
		return -1;
	lab_close(&p->b);
	return 0;
}

/* Our side's state once what the peer did has arrived: its FIN (CLOSE_WAIT), its RST
 * (CLOSE), or its FIN then the ACK of ours (CLOSE). */
static const int settled[NPEER] = {
    [SHUT_WR_ONLY] = LAB_CLOSE_WAIT,
    [DATA_THEN_CLOSE] = LAB_CLOSE_WAIT,
    [RESET] = LAB_CLOSE,
    [BOTH_SHUT] = LAB_CLOSE,
};

static int observe(int ep, struct lab_pair *p, enum peer who, struct outcome *o)
{
	char buf[16];

	if (wait_events(ep, 0, &o->before) < 0 || peer_acts(p, who) < 0)
		return -1;
	if (who == BOTH_SHUT) {
		if (lab_wait_state(p->a, LAB_CLOSE_WAIT, 2000) < 0)
			return -1;
		if (shutdown(p->a, SHUT_WR) < 0)
			return lab_sysfail("shutdown(SHUT_WR) of our side");
	}
	if (lab_wait_state(p->a, settled[who], 2000) < 0 || wait_events(ep, 1000, &o->after) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		o->rc[i] = recv(p->a, buf, sizeof(buf), MSG_DONTWAIT);
		o->err[i] = errno;
	}
	return 0;
}

static int run(enum peer who, struct outcome *o)
{
	struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP};
	struct lab_pair p;
	int ep, rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		lab_sysfail("epoll_create1");
		goto out;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p.a, &e) < 0)
		lab_sysfail("epoll_ctl");
	else
		rc = observe(ep, &p, who, o);
	close(ep);
out:
	lab_pair_close(&p);
	return rc;
}

int main(int argc, char **argv)
{
	struct outcome o[NPEER] = {0};
	struct lab_str s = {0};
	char r0[32], r1[32];
	int rdhup_first, rst_not_zero, data_first;
	char why[400] = "";

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0)
		return lab_err("setup");
	for (int w = 0; w < NPEER; w++) {
		if (run(w, &o[w]) < 0)
			return lab_err(peer_name[w]);
		lab_add(&s, "%s: epoll ", peer_name[w]);
		events(&s, o[w].before);
		lab_add(&s, " -> ");
		events(&s, o[w].after);
		lab_add(&s, ", then recv()=%s, %s. ", lab_ret(r0, 32, o[w].rc[0], o[w].err[0]),
			lab_ret(r1, 32, o[w].rc[1], o[w].err[1]));
	}
	rdhup_first = (o[SHUT_WR_ONLY].after & EPOLLRDHUP) && !(o[SHUT_WR_ONLY].after & EPOLLHUP);
	data_first = o[DATA_THEN_CLOSE].rc[0] == 5 && o[DATA_THEN_CLOSE].rc[1] == 0;
	rst_not_zero = o[RESET].rc[0] < 0 && o[RESET].err[0] == ECONNRESET;
	if (rdhup_first)
		snprintf(why, sizeof(why), "epoll reports EPOLLRDHUP before any read%s; ",
			 o[BOTH_SHUT].after & EPOLLHUP ? " (EPOLLHUP once both sides shut down)"
						       : "");
	if (data_first)
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
			 "data sent before the FIN is read before the 0; ");
	if (rst_not_zero)
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
			 "a reset shows as %s and recv() gives ECONNRESET, not 0",
			 (o[RESET].after & (EPOLLERR | EPOLLHUP)) == (EPOLLERR | EPOLLHUP)
			     ? "EPOLLERR+EPOLLHUP"
			     : "an event");
	lab_row(ID, CLAIM, rdhup_first || rst_not_zero ? LAB_NUANCE : LAB_AGREES,
		rdhup_first || rst_not_zero ? why : NULL, s.s);
	return 0;
}
