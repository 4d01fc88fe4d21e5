/* Claim 0: closing a connection takes four segments: FIN, its ACK, the other side's FIN
 * (later, when that application closes), and its ACK.
 *
 * The segments from the first FIN on are captured on loopback (one copy each) when the
 * passive side close()s at once after recv()==0 and when it waits 300 ms. Linux enters
 * pingpong (delayed-ACK) mode when a FIN arrives (tcp_fin() -> inet_csk_enter_pingpong_mode),
 * so an application that closes within the delayed-ACK timeout sends its FIN with that
 * ACK. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID    "0"
#define CLAIM "Closing takes four segments: FIN, ACK, then the other side's FIN, ACK"

struct outcome {
	int n;
	struct lab_str seq; /* "A:FIN+ACK B:ACK ..." */
};

static void flags_str(char *buf, size_t len, unsigned f)
{
	snprintf(buf, len, "%s%s%s", f & LAB_FIN ? "FIN" : "",
		 f & LAB_FIN && f & LAB_ACK ? "+" : "", f & LAB_ACK ? "ACK" : "");
}

/* The segments of this connection from its first FIN on. */
static void segments(const struct lab_cap *c, const struct lab_pair *p, struct outcome *o)
{
	const struct lab_pkt *fin = lab_cap_first(c, p->pa, p->pb, LAB_FIN);
	char f[16];

	for (size_t i = fin ? (size_t)(fin - c->pkt) : c->n; i < c->n; i++) {
		const struct lab_pkt *k = &c->pkt[i];

		if ((k->sport != p->pa || k->dport != p->pb) &&
		    (k->sport != p->pb || k->dport != p->pa))
			continue;
		flags_str(f, sizeof(f), k->flags);
		lab_add(&o->seq, "%s%s:%s", o->n ? " " : "", k->sport == p->pa ? "A" : "B", f);
		o->n++;
	}
}

static int run(struct lab_cap *cap, int delay_ms, struct outcome *o)
{
	struct lab_pair p;
	int rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	lab_close(&p.a);
	if (lab_wait_eof(p.b, 2000) < 0)
		goto out;
	lab_sleep_ms(delay_ms);
	lab_close(&p.b);
	/* The capture gets each segment before TCP processes it: once B's socket is gone
	 * (A's last ACK arrived), every segment of the close is in the capture. */
	if (lab_wait_closed(p.pa, p.pb, 2000) < 0 || lab_cap_drain(cap) < 0)
		goto out;
	segments(cap, &p, o);
	rc = 0;
out:
	lab_pair_close(&p);
	return rc;
}

int main(int argc, char **argv)
{
	struct outcome now = {0}, later = {0};
	static struct lab_cap cap;
	struct lab_str s = {0};

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	if (run(&cap, 0, &now) < 0 || run(&cap, 300, &later) < 0)
		return lab_err("close");
	lab_add(&s,
		"B closes right after recv()==0: %d segments (%s). B closes 300 ms later: %d "
		"segments (%s).",
		now.n, now.seq.s, later.n, later.seq.s);
	lab_row(ID, CLAIM, now.n == 4 && later.n == 4 ? LAB_AGREES : LAB_NUANCE,
		now.n == 3 && later.n == 4
		    ? "three when the passive side closes within the delayed-ACK time: its "
		      "FIN rides on the ACK"
		    : NULL,
		s.s);
	lab_cap_close(&cap);
	return 0;
}
