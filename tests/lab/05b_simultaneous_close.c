/* Claim 5b: the side that closes first (HOST1) ends in TIME_WAIT; the other side just
 * closes.
 *
 * Observed for a sequential close and for a simultaneous one. On loopback a FIN arrives
 * before the other side can close, so to make the closes cross both FINs are held back by
 * nftables rules in this namespace (output hook, one per source port: drop FIN), both
 * sides call close(), then side 1's FIN is released, later side 2's: the retransmitted
 * FINs find the other side in FIN_WAIT_1. RFC 793 (and tcp_fin() in Linux: FIN_WAIT_1 +
 * FIN -> CLOSING) sends such a side through CLOSING. States come from sock_diag, which
 * sees the orphaned sockets. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID    "5b"
#define CLAIM "The side that calls close() first ends in TIME_WAIT and the other side does not"

/* Table lab_hold_PORT drops the FINs sent from PORT. */
static int hold_fin(uint16_t port)
{
	char rules[256];

	snprintf(rules, sizeof(rules),
		 "table inet lab_hold_%u {\n"
		 "  chain out { type filter hook output priority 0; policy accept;\n"
		 "    tcp sport %u tcp flags & fin == fin drop\n  }\n}\n",
		 port, port);
	return lab_nft(rules);
}

static int release_fin(uint16_t port)
{
	return lab_sh("nft delete table inet lab_hold_%u", port);
}

struct side {
	uint16_t sport, dport;
	unsigned seen; /* bit per TCP state seen by sock_diag */
	int order[8];  /* the distinct states, in the order seen */
	int n;
	int last; /* last state, 0 = gone */
};

static int look(struct side *x)
{
	struct lab_diag d;
	int f = lab_diag_find(x->sport, x->dport, &d);

	if (f < 0)
		return -1;
	x->last = f ? d.state : 0;
	if (!f)
		return 0;
	x->seen |= 1u << d.state;
	if (x->n < 8 && (x->n == 0 || x->order[x->n - 1] != d.state))
		x->order[x->n++] = d.state;
	return 0;
}

static void seen_list(struct lab_str *s, const struct side *x)
{
	const char *sep = "";

	for (int i = 0; i < x->n; i++) {
		lab_add(s, "%s%s", sep, lab_state_name(x->order[i]));
		sep = " -> ";
	}
	if (!x->last)
		lab_add(s, "%s(gone)", sep);
}

/* Watches both sides until neither is in FIN_WAIT_1/2 or CLOSING, or 4 s pass. */
static int watch(struct side *x, struct side *y)
{
	int64_t end = lab_now_us() + 4000000;

	for (;;) {
		if (look(x) < 0 || look(y) < 0)
			return -1;
		if (x->last != LAB_FIN_WAIT1 && x->last != LAB_FIN_WAIT2 &&
		    x->last != LAB_CLOSING && y->last != LAB_FIN_WAIT1 &&
		    y->last != LAB_FIN_WAIT2 && y->last != LAB_CLOSING)
			return 0;
		if (lab_now_us() > end)
			return 0;
		lab_sleep_ms(2);
	}
}

static int sequential(struct side *x, struct side *y)
{
	struct lab_pair p;
	int rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	*x = (struct side){.sport = p.pa, .dport = p.pb};
	*y = (struct side){.sport = p.pb, .dport = p.pa};
	lab_close(&p.a);
	if (lab_wait_eof(p.b, 2000) < 0)
		goto out;
	lab_close(&p.b);
	rc = watch(x, y);
out:
	lab_pair_close(&p);
	return rc;
}

/* Waits until sock_diag shows x in `state`: 0 reached, -1 error or 3 s passed. */
static int wait_for(struct side *x, int state)
{
	int64_t end = lab_now_us() + 3000000;

	while (lab_now_us() < end) {
		if (look(x) < 0)
			return -1;
		if (x->last == state)
			return 0;
		lab_sleep_ms(2);
	}
	errno = ETIMEDOUT;
	return lab_sysfail(lab_state_name(state));
}

static int simultaneous(struct side *x, struct side *y)
{
	struct lab_pair p;
	int rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	*x = (struct side){.sport = p.pa, .dport = p.pb};
	*y = (struct side){.sport = p.pb, .dport = p.pa};
	if (hold_fin(p.pa) < 0 || hold_fin(p.pb) < 0)
		goto out;
	lab_close(&p.a);
	lab_close(&p.b);
	if (wait_for(x, LAB_FIN_WAIT1) < 0 || wait_for(y, LAB_FIN_WAIT1) < 0)
		goto out;
	/* Side 1's FIN reaches side 2 while side 2 is in FIN_WAIT_1 with its own FIN unacked. */
	if (release_fin(p.pa) < 0 || wait_for(y, LAB_CLOSING) < 0 || look(x) < 0)
		goto out;
	if (release_fin(p.pb) < 0)
		goto out;
	rc = watch(x, y);
out:
	lab_pair_close(&p);
	return rc;
}

int main(int argc, char **argv)
{
	struct side a1, b1, a2, b2;
	static struct lab_cap cap;
	struct lab_str s = {0};
	int seq_ok, sim_both;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	if (sequential(&a1, &b1) < 0 || simultaneous(&a2, &b2) < 0)
		return lab_err("closing");
	if (lab_cap_drain(&cap) < 0)
		return lab_err("capture");
	lab_add(&s, "sequential close: first closer ");
	seen_list(&s, &a1);
	lab_add(&s, ", other side ");
	seen_list(&s, &b1);
	lab_add(&s, ". FINs held, both close(), side 1's FIN released, then side 2's: side 1 ");
	seen_list(&s, &a2);
	lab_add(&s, ", side 2 ");
	seen_list(&s, &b2);
	lab_add(&s, "; FINs that reached the wire: %d and %d.",
		lab_cap_count(&cap, a2.sport, a2.dport, LAB_FIN),
		lab_cap_count(&cap, b2.sport, b2.dport, LAB_FIN));
	seq_ok = a1.last == LAB_TIME_WAIT && b1.last == 0;
	sim_both = a2.last == LAB_TIME_WAIT && b2.last == LAB_TIME_WAIT;
	lab_row(ID, CLAIM,
		!seq_ok	   ? LAB_DIFFERS
		: sim_both ? LAB_NUANCE
			   : LAB_AGREES,
		!seq_ok || !sim_both ? NULL
		: b2.seen & (1u << LAB_CLOSING)
		    ? "in a simultaneous close both sides end in TIME_WAIT (via CLOSING)"
		    : "in a simultaneous close both sides end in TIME_WAIT",
		s.s);
	lab_cap_close(&cap);
	return 0;
}
