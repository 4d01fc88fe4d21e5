/* Claim 13b: when the peer's host crashes while the connection is idle, nothing happens
 * until an application heartbeat or TCP keepalive finds out.
 *
 * Two namespaces joined by a veth pair; the peer's namespace drops every packet
 * (nftables). Three idle connections are watched for WATCH_MS: no keepalive; keepalive
 * with 1 s idle, 1 s interval, 2 probes; TCP_USER_TIMEOUT=2000 ms alone (it bounds
 * unacknowledged data, of which an idle connection has none: tcp_retransmit_timer() never
 * runs). Packets are counted with AF_PACKET on our veth end; keepalive probes come from
 * tcp_keepalive_timer() and end in tcp_write_err() (ETIMEDOUT). The default keepalive
 * settings are read from this namespace's sysctls. */
#include "lab.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID "13b"
#define CLAIM                                                                                      \
	"A crashed peer while idle: nothing happens unless a heartbeat or TCP keepalive detects "  \
	"it"
#define WATCH_MS 4000
#define DEAD_IP                                                                                    \
	"table inet lab_dead {\n"                                                                  \
	"  chain in { type filter hook input priority 0; policy drop; }\n"                         \
	"  chain out { type filter hook output priority 0; policy drop; }\n}\n"

enum sub { PLAIN, KEEPALIVE, USER_TIMEOUT, NSUB };
static const char *sub_name[] = {"no keepalive", "keepalive 1 s/1 s/2 probes",
				 "TCP_USER_TIMEOUT=2000 ms only"};

struct conn {
	struct lab_pair p;
	int last;	  /* tcpi_state at the end */
	double closed_at; /* when it left ESTABLISHED, 0 = never */
	int so_error, packets, rsts;
};

static int setup(struct conn *c, enum sub s)
{
	if (s == KEEPALIVE &&
	    (lab_set_int(c->p.a, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE") < 0 ||
	     lab_set_int(c->p.a, IPPROTO_TCP, TCP_KEEPIDLE, 1, "TCP_KEEPIDLE") < 0 ||
	     lab_set_int(c->p.a, IPPROTO_TCP, TCP_KEEPINTVL, 1, "TCP_KEEPINTVL") < 0 ||
	     lab_set_int(c->p.a, IPPROTO_TCP, TCP_KEEPCNT, 2, "TCP_KEEPCNT") < 0))
		return -1;
	if (s == USER_TIMEOUT &&
	    lab_set_int(c->p.a, IPPROTO_TCP, TCP_USER_TIMEOUT, 2000, "TCP_USER_TIMEOUT") < 0)
		return -1;
	return 0;
}

static int watch(struct conn *c, int64_t t0)
{
	socklen_t len = sizeof(int);

	while (lab_now_us() - t0 < WATCH_MS * 1000LL) {
		for (int s = 0; s < NSUB; s++) {
			if ((c[s].last = lab_tcp_state(c[s].p.a)) < 0)
				return -1;
			if (c[s].last != LAB_ESTABLISHED && !c[s].closed_at)
				c[s].closed_at = (lab_now_us() - t0) / 1e6;
		}
		lab_sleep_ms(10);
	}
	for (int s = 0; s < NSUB; s++)
		if (getsockopt(c[s].p.a, SOL_SOCKET, SO_ERROR, &c[s].so_error, &len) < 0)
			return lab_sysfail("getsockopt(SO_ERROR)");
	return 0;
}

static int kill_peer(struct lab_veth *v)
{
	int rc;

	if (lab_netns_enter(v->ns_b) < 0)
		return -1;
	rc = lab_nft(DEAD_IP);
	if (lab_netns_enter(v->ns_a) < 0)
		return -1;
	return rc;
}

static int run(struct conn *c, struct lab_cap *cap)
{
	struct lab_veth v;
	int64_t t0;

	if (lab_veth_open(&v) < 0 || lab_cap_open(cap, "va", 1) < 0)
		return -1;
	for (int s = 0; s < NSUB; s++)
		if (lab_veth_pair(&v, &c[s].p) < 0 || setup(&c[s], s) < 0)
			return -1;
	if (kill_peer(&v) < 0 || lab_cap_drain(cap) < 0)
		return -1;
	cap->n = 0; /* count only what is sent once the peer is dead */
	t0 = lab_now_us();
	if (watch(c, t0) < 0 || lab_cap_drain(cap) < 0)
		return -1;
	for (int s = 0; s < NSUB; s++) {
		c[s].packets = lab_cap_count(cap, c[s].p.pa, 0, 0x1ff);
		c[s].rsts = lab_cap_count(cap, c[s].p.pa, 0, LAB_RST);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct conn c[NSUB] = {0};
	static struct lab_cap cap;
	struct lab_str s = {0};
	long ktime, kintvl, kprobes;
	int dflt = -1, quiet, found;
	socklen_t len = sizeof(dflt);
	char why[200];

	lab_init(argc, argv, ID, CLAIM);
	if (run(c, &cap) < 0)
		return lab_err("dead idle peer");
	for (int i = 0; i < NSUB; i++) {
		if (c[i].closed_at)
			lab_add(&s, "%s: %s after %.1f s", sub_name[i], lab_state_name(c[i].last),
				c[i].closed_at);
		else
			lab_add(&s, "%s: still %s after %.0f s", sub_name[i],
				lab_state_name(c[i].last), WATCH_MS / 1e3);
		lab_add(&s, ", %d packets sent (%d RST), SO_ERROR %s. ", c[i].packets, c[i].rsts,
			c[i].so_error ? lab_errname(c[i].so_error) : "0");
	}
	if (lab_sysctl_get("net/ipv4/tcp_keepalive_time", &ktime) < 0 ||
	    lab_sysctl_get("net/ipv4/tcp_keepalive_intvl", &kintvl) < 0 ||
	    lab_sysctl_get("net/ipv4/tcp_keepalive_probes", &kprobes) < 0 ||
	    getsockopt(c[PLAIN].p.a, SOL_SOCKET, SO_KEEPALIVE, &dflt, &len) < 0)
		return lab_err("keepalive defaults");
	lab_add(&s,
		"A new socket has SO_KEEPALIVE=%d; the default keepalive sysctls (%ld s + "
		"%ld x %ld s) would take %ld s.",
		dflt, ktime, kprobes, kintvl, ktime + kprobes * kintvl);
	quiet = !c[PLAIN].closed_at && c[PLAIN].packets == 0 && !c[USER_TIMEOUT].closed_at;
	found = c[KEEPALIVE].closed_at && c[KEEPALIVE].so_error == ETIMEDOUT;
	snprintf(why, sizeof(why),
		 "keepalive is off by default and would take %ld s; TCP_USER_TIMEOUT alone does "
		 "not fire on an idle connection",
		 ktime + kprobes * kintvl);
	lab_row(ID, CLAIM, quiet && found ? LAB_AGREES : LAB_DIFFERS,
		quiet && found && dflt == 0 ? why : NULL, s.s);
	for (int i = 0; i < NSUB; i++)
		lab_pair_close(&c[i].p);
	return 0;
}
