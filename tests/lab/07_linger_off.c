/* Claim 7: "turning the SO_LINGER option off" avoids TIME_WAIT (at some risk).
 *
 * The active closer's TIME_WAIT (counted with sock_diag) and what the peer sees, for: no
 * SO_LINGER call, SO_LINGER {0, 0} (off), {1, 0} and {1, 1}. Linux skips TIME_WAIT only
 * on an abortive close: tcp_close() with SOCK_LINGER and lingertime 0 calls
 * tcp_disconnect(), which sends RST and frees the socket at once. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID    "7"
#define CLAIM "Turning the SO_LINGER option off avoids TIME_WAIT"

struct mode {
	const char *name;
	int set, onoff, secs;
	/* observed */
	int tw;		  /* active closer in TIME_WAIT afterwards */
	const char *wire; /* what the closer sent */
	int peer_err;	  /* how the peer's stream ended: 0 = EOF */
};

static int run(struct lab_cap *cap, struct mode *m)
{
	struct lab_pair p;
	struct lab_diag d;
	size_t got;
	int rc = -1, f;

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	if (m->set && lab_set_linger(p.a, m->onoff, m->secs) < 0)
		goto out;
	lab_close(&p.a);
	if (lab_drain(p.b, 2000, &got, &m->peer_err) < 0)
		goto out;
	lab_close(&p.b);
	/* The closer's state is read once the exchange is over, whatever it ended in. */
	if (lab_wait_closed(p.pa, p.pb, 2000) < 0)
		goto out;
	if ((f = lab_diag_find(p.pa, p.pb, &d)) < 0 || lab_cap_drain(cap) < 0)
		goto out;
	m->tw = f && d.state == LAB_TIME_WAIT;
	m->wire = lab_cap_teardown(cap, p.pa, p.pb);
	rc = 0;
out:
	lab_pair_close(&p);
	return rc;
}

int main(int argc, char **argv)
{
	struct mode m[] = {
	    {"no SO_LINGER call", 0, 0, 0, 0, NULL, 0},
	    {"SO_LINGER {0,0} (off)", 1, 0, 0, 0, NULL, 0},
	    {"SO_LINGER {1,0}", 1, 1, 0, 0, NULL, 0},
	    {"SO_LINGER {1,1}", 1, 1, 1, 0, NULL, 0},
	};
	static struct lab_cap cap;
	struct lab_str s = {0};
	int n = (int)(sizeof(m) / sizeof(m[0])), off_skips, zero_skips;
	char why[200];

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	for (int i = 0; i < n; i++) {
		if (run(&cap, &m[i]) < 0)
			return lab_err(m[i].name);
		lab_add(&s, "%s: closer sent %s, %s, peer's reads ended with %s. ", m[i].name,
			m[i].wire, m[i].tw ? "closer in TIME_WAIT" : "no TIME_WAIT",
			m[i].peer_err ? lab_errname(m[i].peer_err) : "EOF");
	}
	off_skips = !m[1].tw;
	zero_skips = !m[2].tw;
	snprintf(why, sizeof(why),
		 "off is the default and keeps TIME_WAIT; only {1,0} skips it, by sending %s "
		 "(the peer gets %s instead of EOF)",
		 m[2].wire, m[2].peer_err ? lab_errname(m[2].peer_err) : "EOF");
	lab_row(ID, CLAIM,
		off_skips    ? LAB_AGREES
		: zero_skips ? LAB_DIFFERS
			     : LAB_NUANCE,
		!off_skips && zero_skips ? why : NULL, s.s);
	lab_cap_close(&cap);
	return 0;
}
