/* Claim 3: when the application does not close() after recv() returned 0, its side stays
 * in CLOSE_WAIT and the peer in FIN_WAIT_2.
 *
 * Three connections; on each the passive side reads the EOF and never closes. The active
 * side closes with close() under tcp_fin_timeout=2 and =4 (set in this namespace only), and
 * with shutdown(SHUT_WR) only. Linux bounds an *orphaned* FIN_WAIT_2 by tcp_fin_timeout
 * (tcp_fin_time(): it becomes a timewait socket with substate FIN_WAIT2); a FIN_WAIT_2
 * whose fd is still open and any CLOSE_WAIT have no timer at all. States come from
 * sock_diag, which also sees the orphans. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID "3"
#define CLAIM                                                                                      \
	"If the app does not close() after recv()==0 it stays in CLOSE_WAIT and the peer in "      \
	"FIN_WAIT_2"
#define NCONN	 3
#define WATCH_MS 5000

struct conn {
	struct lab_pair p;
	int fin_timeout; /* sysctl when closed; 0 = shutdown(SHUT_WR) only */
	int64_t t_close;
	int st_a, st_b;	   /* first states seen by sock_diag */
	int64_t a_gone_us; /* when the active side's socket disappeared; 0 = still there */
	int b_last, a_last;
};

/* The sysctl is read when the ACK of our FIN arrives, and Linux delays that ACK (the peer
 * enters pingpong mode at the FIN, hoping to piggyback it on its own FIN): wait for
 * FIN_WAIT_2 before the next connection changes tcp_fin_timeout. */
static int wait_fin_wait2(const struct conn *c)
{
	int64_t end = lab_now_us() + 2000000;
	struct lab_diag d;
	int f;

	while ((f = lab_diag_find(c->p.pa, c->p.pb, &d)) == 1 && d.state != LAB_FIN_WAIT2) {
		if (lab_now_us() > end) {
			errno = ETIMEDOUT;
			return lab_sysfail("waiting for FIN_WAIT_2");
		}
		lab_sleep_ms(5);
	}
	return f < 0 ? -1 : 0;
}

static int open_and_close(struct conn *c)
{
	if (c->fin_timeout && lab_sysctl_set("net/ipv4/tcp_fin_timeout", c->fin_timeout) < 0)
		return -1;
	if (lab_pair_open(&c->p, "127.0.0.1", 0, 0) < 0)
		return -1;
	c->t_close = lab_now_us();
	if (c->fin_timeout) {
		if (close(c->p.a) < 0)
			return lab_sysfail("close");
		c->p.a = -1;
	} else if (shutdown(c->p.a, SHUT_WR) < 0) {
		return lab_sysfail("shutdown(SHUT_WR)");
	}
	if (lab_wait_eof(c->p.b, 2000) < 0)
		return -1;
	return wait_fin_wait2(c);
}

/* One sock_diag look at a connection: records first and last states, and disappearance. */
static int look(struct conn *c)
{
	struct lab_diag d;
	int fa, fb;

	if ((fa = lab_diag_find(c->p.pa, c->p.pb, &d)) < 0)
		return -1;
	c->a_last = fa ? d.state : 0;
	if (fa && !c->st_a && d.state != LAB_FIN_WAIT1)
		c->st_a = d.state;
	if (!fa && !c->a_gone_us)
		c->a_gone_us = lab_now_us() - c->t_close;
	if ((fb = lab_diag_find(c->p.pb, c->p.pa, &d)) < 0)
		return -1;
	c->b_last = fb ? d.state : 0;
	if (fb && !c->st_b)
		c->st_b = d.state;
	return 0;
}

static int watch(struct conn *c, int n)
{
	int64_t end = lab_now_us() + WATCH_MS * 1000LL;

	while (lab_now_us() < end) {
		for (int i = 0; i < n; i++)
			if (look(&c[i]) < 0)
				return -1;
		lab_sleep_ms(20);
	}
	return 0;
}

static void describe(struct lab_str *s, const struct conn *c)
{
	if (c->fin_timeout)
		lab_add(s, "close() with tcp_fin_timeout=%d: ", c->fin_timeout);
	else
		lab_add(s, "shutdown(SHUT_WR) only: ");
	lab_add(s, "%s / peer %s; ", lab_state_name(c->st_a), lab_state_name(c->st_b));
	if (c->a_gone_us)
		lab_add(s, "FIN_WAIT_2 gone after %.1f s, ", c->a_gone_us / 1e6);
	else
		lab_add(s, "still %s after %.1f s, ", lab_state_name(c->a_last), WATCH_MS / 1e3);
	lab_add(s, "peer still %s after %.1f s. ", lab_state_name(c->b_last), WATCH_MS / 1e3);
}

/* What the CLOSE_WAIT side meets when it finally writes to a peer that has gone. */
static void late_write(struct lab_str *s, int fd)
{
	char r1[32], r2[32];
	ssize_t n1, n2;
	int e1, e2;

	n1 = send(fd, "x", 1, MSG_NOSIGNAL);
	e1 = errno;
	lab_sleep_ms(50);
	n2 = send(fd, "x", 1, MSG_NOSIGNAL);
	e2 = errno;
	lab_add(s, "Writing then to the vanished peer: send()=%s, then %s.",
		lab_ret(r1, sizeof(r1), n1, e1), lab_ret(r2, sizeof(r2), n2, e2));
}

int main(int argc, char **argv)
{
	struct conn c[NCONN] = {{.fin_timeout = 2}, {.fin_timeout = 4}, {.fin_timeout = 0}};
	struct lab_str s = {0};
	int states_ok = 1, orphans_timed = 1, rc = 1;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0)
		return lab_err("setup");
	for (int i = 0; i < NCONN; i++)
		if (open_and_close(&c[i]) < 0)
			return lab_err("open and close");
	if (watch(c, NCONN) < 0)
		return lab_err("sock_diag");
	for (int i = 0; i < NCONN; i++) {
		describe(&s, &c[i]);
		states_ok &= c[i].st_a == LAB_FIN_WAIT2 && c[i].st_b == LAB_CLOSE_WAIT;
		orphans_timed &= c[i].fin_timeout ? c[i].a_gone_us > 0 : c[i].a_gone_us == 0;
	}
	late_write(&s, c[0].p.b);
	lab_row(ID, CLAIM,
		!states_ok	? LAB_DIFFERS
		: orphans_timed ? LAB_NUANCE
				: LAB_AGREES,
		states_ok && orphans_timed
		    ? "states right, but a close()d peer leaves FIN_WAIT_2 after "
		      "tcp_fin_timeout; only CLOSE_WAIT and a shutdown()-only peer stay"
		    : NULL,
		s.s);
	rc = 0;
	for (int i = 0; i < NCONN; i++)
		lab_pair_close(&c[i].p);
	return rc;
}
