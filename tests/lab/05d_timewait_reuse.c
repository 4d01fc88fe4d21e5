/* Claim 5d: while TIME_WAIT lasts, a new connection with the same 4-tuple cannot be made
 * (that is what keeps old segments out of a new connection).
 *
 * The same client port reconnects to the same server port while a TIME_WAIT for that
 * 4-tuple exists: (1) on the server side (the server closed first), the client port
 * bound explicitly; (2) on the client side, port bound explicitly; (3) on the client side,
 * port chosen by connect() (ip_local_port_range narrowed to one port) with tcp_tw_reuse=0;
 * (4) the same with tcp_tw_reuse at its default (2 = loopback only) once
 * tcp_tw_reuse_delay has passed. Linux lets a SYN take over a server-side TIME_WAIT when
 * its sequence number or timestamp is newer (tcp_timewait_state_process() ->
 * TCP_TW_SYN); tcp_twsk_unique() lets connect() take over a client-side one when
 * timestamps were used and either the port was bound explicitly or tcp_tw_reuse allows.
 * All sysctls are set in this namespace only. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID	       "5d"
#define CLAIM	       "While TIME_WAIT lasts, a new connection cannot reuse the same 4-tuple"
#define REUSE_DELAY_MS 200
#define ONLY_PORT      61000 /* outside the default ephemeral range: free in a new netns */

struct attempt {
	int rc, err;
	int64_t us;
	int tw_before; /* state of the 4-tuple before the attempt (TIME_WAIT expected) */
	uint16_t port; /* the local port the new connection got */
};

/* Closes a pair in order: `first` closes, the other reads EOF and closes; returns once
 * that close has finished (the first closer's socket in TIME_WAIT or gone). */
static int close_in_order(struct lab_pair *p, int server_first)
{
	int *first = server_first ? &p->b : &p->a, *second = server_first ? &p->a : &p->b;

	lab_close(first);
	if (lab_wait_eof(*second, 2000) < 0)
		return -1;
	lab_close(second);
	return server_first ? lab_wait_closed(p->pb, p->pa, 2000)
			    : lab_wait_closed(p->pa, p->pb, 2000);
}

/* One connection, from *cport (bound) or from the port connect() picks (bind = 0); closed
 * in order so that TIME_WAIT is on the server or the client side. */
static int make_time_wait(int lfd, uint16_t sport, uint16_t *cport, int bind, int server_first)
{
	struct lab_pair p = {-1, -1, 0, sport};

	p.a = lab_connect("127.0.0.1", sport, bind ? "127.0.0.1" : NULL, *cport, 1);
	if (p.a < 0)
		return -1;
	p.pa = *cport = lab_local_port(p.a);
	p.b = lab_accept(lfd, 2000);
	if (p.b < 0) {
		lab_pair_close(&p);
		return -1;
	}
	return close_in_order(&p, server_first);
}

static int attempt(int lfd, uint16_t sport, uint16_t cport, int bind, int tw_side_client,
		   struct attempt *a)
{
	struct lab_diag d;
	int64_t t0;
	int fd, afd, f;

	f = tw_side_client ? lab_diag_find(cport, sport, &d) : lab_diag_find(sport, cport, &d);
	if (f < 0)
		return -1;
	a->tw_before = f ? d.state : 0;
	t0 = lab_now_us();
	fd = lab_connect("127.0.0.1", sport, bind ? "127.0.0.1" : NULL, cport, 1);
	a->us = lab_now_us() - t0;
	a->rc = fd < 0 ? -1 : 0;
	a->err = errno;
	if (fd < 0)
		return 0;
	a->port = lab_local_port(fd);
	afd = lab_accept(lfd, 1000);
	lab_close(&afd);
	close(fd);
	return 0;
}

static void describe(struct lab_str *s, const char *label, const struct attempt *a)
{
	char r[32];

	lab_add(s, "%s (%s before): connect() = %s in %.1f ms", label,
		a->tw_before ? lab_state_name(a->tw_before) : "no socket",
		lab_ret(r, sizeof(r), a->rc, a->err), a->us / 1e3);
	if (a->rc == 0)
		lab_add(s, ", same port %u", a->port);
	lab_add(s, ". ");
}

/* Server-side and client-side TIME_WAIT, client port bound explicitly. */
static int bound(int lfd, uint16_t sport, struct attempt *srv, struct attempt *cli)
{
	uint16_t c1 = 0, c2 = 0;

	if (make_time_wait(lfd, sport, &c1, 1, 1) < 0 || attempt(lfd, sport, c1, 1, 0, srv) < 0)
		return -1;
	if (lab_sysctl_set("net/ipv4/tcp_tw_reuse", 0) < 0 ||
	    make_time_wait(lfd, sport, &c2, 1, 0) < 0 || attempt(lfd, sport, c2, 1, 1, cli) < 0)
		return -1;
	return 0;
}

/* Client-side TIME_WAIT on the only ephemeral port, connect() choosing the port. */
static int autobind(int lfd, uint16_t sport, struct attempt *off, struct attempt *on)
{
	char range[32];
	uint16_t c = 0;

	snprintf(range, sizeof(range), "%d %d\n", ONLY_PORT, ONLY_PORT);
	if (lab_sysctl_set_str("net/ipv4/ip_local_port_range", range) < 0 ||
	    lab_sysctl_set("net/ipv4/tcp_tw_reuse", 0) < 0)
		return -1;
	if (make_time_wait(lfd, sport, &c, 0, 0) < 0 || attempt(lfd, sport, c, 0, 1, off) < 0)
		return -1;
	/* tcp_tw_reuse needs the TIME_WAIT older than tcp_tw_reuse_delay. */
	if (lab_sysctl_set("net/ipv4/tcp_tw_reuse", 2) < 0 ||
	    lab_sysctl_set("net/ipv4/tcp_tw_reuse_delay", REUSE_DELAY_MS) < 0)
		return -1;
	lab_sleep_ms(REUSE_DELAY_MS + 100);
	return attempt(lfd, sport, c, 0, 1, on);
}

static int run(struct attempt *a)
{
	uint16_t sport;
	int lfd, rc;

	if ((lfd = lab_listen("127.0.0.1", 0, &sport)) < 0)
		return -1;
	rc = bound(lfd, sport, &a[0], &a[1]) < 0 || autobind(lfd, sport, &a[2], &a[3]) < 0 ? -1 : 0;
	close(lfd);
	return rc;
}

int main(int argc, char **argv)
{
	static const char *label[] = {
	    "server-side TIME_WAIT, client port bound",
	    "client-side TIME_WAIT, port bound, tcp_tw_reuse=0",
	    "client-side TIME_WAIT, port picked by connect(), tcp_tw_reuse=0",
	    "the same with tcp_tw_reuse=2 (default: loopback) after tcp_tw_reuse_delay=200 ms"};
	struct attempt a[4] = {{0}};
	struct lab_str s = {0};
	int blocked = 0;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0)
		return lab_err("setup");
	if (run(a) < 0)
		return lab_err("reconnect");
	for (int i = 0; i < 4; i++) {
		describe(&s, label[i], &a[i]);
		blocked += a[i].rc < 0;
	}
	lab_row(ID, CLAIM,
		blocked == 4 ? LAB_AGREES
		: blocked    ? LAB_NUANCE
			     : LAB_DIFFERS,
		blocked == 1 && a[2].rc < 0
		    ? "only connect()'s automatic port choice refuses a client-side TIME_WAIT "
		      "4-tuple, and only with tcp_tw_reuse=0; an explicit bind() (with "
		      "timestamps) or a SYN to a server-side TIME_WAIT reuses it at once"
		    : NULL,
		s.s);
	return 0;
}
