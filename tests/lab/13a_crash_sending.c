/* Claim 13a: when the peer's host crashes while we send, TCP retransmits (Berkeley: 8
 * times) and after about 15 minutes send() fails with ETIMEDOUT or EHOSTUNREACH; a
 * send() after that fails with EPIPE. The 15 minutes come from tcp_retries2.
 *
 * Two namespaces joined by a veth pair; the peer's namespace then drops every packet
 * (nftables, inet family: the host stops answering IP but ARP still works, like a dead
 * host behind a router), and we send 1000 bytes. Measured with tcp_retries2=1 and 2 in
 * our namespace, and with TCP_USER_TIMEOUT=2000 ms; last the peer stops answering ARP as
 * well (neighbour probes shortened in our namespace). Linux turns tcp_retries2 into a
 * time budget (tcp_model_timeout(): RTO doubling from TCP_RTO_MIN=200 ms, capped at
 * tcp_rto_max_ms) counted from the first RTO retransmission (retrans_stamp) and checked
 * when the retransmission timer fires; tcp_write_err() then reports sk_err_soft
 * (EHOSTUNREACH from a failed neighbour) or ETIMEDOUT. Retransmissions are counted with
 * AF_PACKET on our veth end. Waiting out the default (about 15 minutes) is out of the
 * question: a model of the timeline is checked against the measured runs and only then
 * applied to the default sysctls. */
#include "lab.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID "13a"
#define CLAIM                                                                                      \
	"A crashed peer while sending: 8 retransmissions, ETIMEDOUT or EHOSTUNREACH after ~15 "    \
	"min (tcp_retries2), then EPIPE"
#define DEAD_IP                                                                                    \
	"table inet lab_dead {\n"                                                                  \
	"  chain in { type filter hook input priority 0; policy drop; }\n"                         \
	"  chain out { type filter hook output priority 0; policy drop; }\n}\n"
#define DEAD_ARP                                                                                   \
	"table arp lab_dead {\n"                                                                   \
	"  chain in { type filter hook input priority 0; policy drop; }\n"                         \
	"  chain out { type filter hook output priority 0; policy drop; }\n}\n"

/* tcp_retries2 1 and 2 are far from the model's boundaries (budget vs. RTO doublings). */
enum sub { RETRIES1, RETRIES2, USER_TIMEOUT, NO_ARP, NSUB };
static const char *sub_name[] = {"tcp_retries2=1", "tcp_retries2=2", "TCP_USER_TIMEOUT=2000 ms",
				 "tcp_retries2=2, ARP unanswered too"};
static const long sub_retries[] = {1, 2, 15, 2};

struct result {
	double secs;   /* send() to the error */
	int nretrans;  /* data segments sent again */
	double at[16]; /* when, from the first send */
	ssize_t rc[2]; /* the two send() calls after the error */
	int err[2];
	double rto;	 /* effective RTO: the first RTO retransmission comes at 2 RTO */
	double model_at; /* the model's error time, and its retransmission count */
	int model_n;
};

/* tcp_model_timeout() of net/ipv4/tcp_timer.c, in seconds. */
static double model_timeout(long retries, long rto_max_ms)
{
	const double rto_base = 0.2; /* TCP_RTO_MIN, the base used for established sockets */
	long thresh = 0;

	while ((2L << thresh) * 200 <= rto_max_ms)
		thresh++; /* ilog2(rto_max / rto_base) */
	if (retries <= thresh)
		return ((2L << retries) - 1) * rto_base;
	return ((2L << thresh) - 1) * rto_base + (retries - thresh) * rto_max_ms / 1e3;
}

/* The timeline seen on the wire, as a model (not a measurement): a tail loss probe about
 * one RTO after the send, RTO retransmissions from 2 RTO on, doubling up to rto_max; the
 * budget counts from the first RTO retransmission and is checked when the timer fires. */
static void model(double rto, long retries, long rto_max_ms, double *err_at, int *nretrans)
{
	double budget = model_timeout(retries, rto_max_ms), t = 2 * rto, stamp = t, iv = 2 * rto;
	int n = 2; /* the probe and the first RTO retransmission */

	for (;;) {
		t += iv;
		if (t - stamp >= budget)
			break;
		n++;
		iv = iv * 2 > rto_max_ms / 1e3 ? rto_max_ms / 1e3 : iv * 2;
	}
	*err_at = t;
	*nretrans = n;
}

static int model_matches(const struct result *r)
{
	double d = r->secs - r->model_at;

	return r->nretrans == r->model_n && d > -0.3 && d < 0.3 + 0.1 * r->model_at;
}

static void count_retrans(const struct lab_cap *c, uint16_t port, int64_t t0, struct result *r)
{
	const struct lab_pkt *first = lab_cap_first(c, port, 0, LAB_DATA);

	for (size_t i = 0; first && i < c->n; i++) {
		const struct lab_pkt *k = &c->pkt[i];

		if (k != first && k->sport == port && (k->flags & LAB_DATA) &&
		    k->seq == first->seq) {
			if (r->nretrans < 16)
				r->at[r->nretrans] = (k->t_us - t0) / 1e6;
			r->nretrans++;
		}
	}
}

static int send_until_error(struct lab_cap *cap, struct lab_pair *p, struct result *r)
{
	struct pollfd pf = {.fd = p->a, .events = 0}; /* POLLERR is always reported */
	char buf[1000] = {0};
	int64_t t0 = lab_now_us();

	if (send(p->a, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf))
		return lab_sysfail("send (to the dead peer)");
	if (poll(&pf, 1, 20000) != 1) {
		errno = ETIMEDOUT;
		return lab_sysfail("poll (no error within 20 s)");
	}
	r->secs = (lab_now_us() - t0) / 1e6;
	for (int i = 0; i < 2; i++) {
		r->rc[i] = send(p->a, buf, sizeof(buf), MSG_NOSIGNAL);
		r->err[i] = errno;
	}
	if (lab_cap_drain(cap) < 0)
		return -1;
	count_retrans(cap, p->pa, t0, r);
	/* Timer slack makes the RTO a little above tcpi_rto: take it from the wire. */
	r->rto = r->nretrans >= 2 ? r->at[1] / 2 : 0.2;
	return 0;
}

/* Makes the peer's host stop answering: IP only, or IP and ARP. */
static int kill_peer(struct lab_veth *v, const char *rules)
{
	if (lab_netns_enter(v->ns_b) < 0)
		return -1;
	if (lab_nft(rules) < 0) {
		lab_netns_enter(v->ns_a);
		return -1;
	}
	return lab_netns_enter(v->ns_a);
}

/* Runs one sub-case on its (already connected) pair, with its settings. */
static int sub_case(struct lab_veth *v, struct lab_cap *cap, struct lab_pair *p, enum sub s,
		    struct result *r, long rto_max)
{
	if (lab_sysctl_set("net/ipv4/tcp_retries2", sub_retries[s]) < 0)
		return -1;
	if (s == USER_TIMEOUT &&
	    lab_set_int(p->a, IPPROTO_TCP, TCP_USER_TIMEOUT, 2000, "TCP_USER_TIMEOUT") < 0)
		return -1;
	/* A dead neighbour is noticed only once the cached entry is gone (flush it), after
	 * mcast_solicit probes retrans_time_ms apart (shortened here, namespace only). */
	if (s == NO_ARP && (kill_peer(v, DEAD_ARP) < 0 ||
			    lab_sysctl_set("net/ipv4/neigh/va/mcast_solicit", 1) < 0 ||
			    lab_sysctl_set("net/ipv4/neigh/va/retrans_time_ms", 100) < 0 ||
			    lab_sh("ip neigh flush dev va") < 0))
		return -1;
	if (send_until_error(cap, p, r) < 0)
		return -1;
	model(r->rto, sub_retries[s], rto_max, &r->model_at, &r->model_n);
	return 0;
}

static void describe(struct lab_str *o, enum sub s, const struct result *r)
{
	char r0[32], r1[32];

	lab_add(o, "%s: %d retransmissions", sub_name[s], r->nretrans);
	for (int i = 0; i < r->nretrans && i < 16; i++)
		lab_add(o, "%s%.2f", i ? " " : " (at ", r->at[i]);
	lab_add(o, "%s, error after %.2f s", r->nretrans ? " s)" : "", r->secs);
	if (s == RETRIES2 || s == RETRIES1)
		lab_add(o, " (model: %d, %.2f s)", r->model_n, r->model_at);
	lab_add(o, "; send()=%s, then %s. ", lab_ret(r0, 32, r->rc[0], r->err[0]),
		lab_ret(r1, 32, r->rc[1], r->err[1]));
}

static int run(struct result *r, long *retries_default, long *rto_max)
{
	static struct lab_cap cap;
	struct lab_pair p[NSUB];
	struct lab_veth v;

	if (lab_veth_open(&v) < 0 || lab_cap_open(&cap, "va", 1) < 0)
		return -1;
	if (lab_sysctl_get("net/ipv4/tcp_retries2", retries_default) < 0 ||
	    lab_sysctl_get("net/ipv4/tcp_rto_max_ms", rto_max) < 0)
		return -1;
	for (int s = 0; s < NSUB; s++)
		if (lab_veth_pair(&v, &p[s]) < 0)
			return -1;
	if (kill_peer(&v, DEAD_IP) < 0)
		return -1;
	for (int s = 0; s < NSUB; s++)
		if (sub_case(&v, &cap, &p[s], s, &r[s], *rto_max) < 0)
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct result r[NSUB] = {{0}};
	struct lab_str s = {0};
	long def, rto_max;
	int model_ok, errors_ok, def_n;
	double def_at;
	char why[256];

	lab_init(argc, argv, ID, CLAIM);
	if (run(r, &def, &rto_max) < 0)
		return lab_err("dead peer");
	for (int i = 0; i < NSUB; i++)
		describe(&s, i, &r[i]);
	model_ok = model_matches(&r[RETRIES2]) && model_matches(&r[RETRIES1]);
	model(r[RETRIES2].rto, def, rto_max, &def_at, &def_n);
	if (model_ok)
		lab_add(
		    &s,
		    "Default tcp_retries2=%ld, tcp_rto_max_ms=%ld: the model, which matched "
		    "both runs, gives the error after %.0f s (%.1f min) and %d retransmissions.",
		    def, rto_max, def_at, def_at / 60, def_n);
	else
		lab_add(&s, "The model did not match the runs: no prediction for the default.");
	errors_ok = r[RETRIES2].err[0] == ETIMEDOUT && r[RETRIES2].err[1] == EPIPE;
	snprintf(why, sizeof(why),
		 "%.1f minutes by default, after %d retransmissions, not 8: tcp_retries2 is turned "
		 "into a time budget; ETIMEDOUT (%s when the neighbour failed), then EPIPE",
		 def_at / 60, def_n, lab_errname(r[NO_ARP].err[0]));
	lab_row(ID, CLAIM,
		!errors_ok		 ? LAB_DIFFERS
		: model_ok && def_n != 8 ? LAB_NUANCE
					 : LAB_AGREES,
		errors_ok && model_ok && def_n != 8 ? why : NULL, s.s);
	return 0;
}
