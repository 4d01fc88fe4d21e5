#include "census.h"
#include "clock.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* The dump arrives in skbs of up to 32 KiB (netlink sizes them after the reader's last
 * buffer); a bigger buffer means fewer recvmsg() calls for a large census. */
#define CENSUS_BUF (64 * 1024)

/* Every state bit from ESTABLISHED (1) to NEW_SYN_RECV (12). Not BOUND_INACTIVE (13,
 * Linux >= 6.5: sockets bound by bind() but neither listening nor connected): asking for
 * it adds a walk of the whole bind table to every census, for sockets that are not
 * connections (an accepted socket reset by its peer is not among them). */
#define CENSUS_ALL_STATES 0x1ffeU

struct census_sock {
	int fd;
	int no_compat; /* the kernel refused TCPDIAG_GETSOCK: one v2 request per family */
	uint32_t seq;
	char *buf;
};

static const char *const state_names[CENSUS_NSTATES] = {
    "?",     "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",	 "TIME_WAIT",
    "CLOSE", "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",	 "NEW_SYN_RECV", "BOUND_INACTIVE",
};

static const char *const state_keys[CENSUS_NSTATES] = {
    "unknown", "established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2",	   "time_wait",
    "close",   "close_wait",  "last_ack", "listen",   "closing",   "new_syn_recv", "bound_inactive",
};

static const char *const timer_names[CENSUS_NTIMERS] = {"retrans", "keepalive", "time_wait",
							"probe"};

const char *census_state_name(int state)
{
	return state > 0 && state < CENSUS_NSTATES ? state_names[state] : "?";
}

const char *census_state_key(int state)
{
	return state > 0 && state < CENSUS_NSTATES ? state_keys[state] : "unknown";
}

int census_state_parse(const char *s)
{
	for (int i = 1; i < CENSUS_NSTATES; i++) {
		if (strcasecmp(s, state_keys[i]) == 0 || strcasecmp(s, state_names[i]) == 0)
			return i;
	}
	return -1;
}

const char *census_timer_name(enum census_timer t)
{
	return (unsigned)t < CENSUS_NTIMERS ? timer_names[t] : "?";
}

int census_listening(const struct census_counts *c)
{
	return c->state[CENSUS_LISTEN] > 0;
}

struct census_sock *census_open(void)
{
	struct sockaddr_nl local = {.nl_family = AF_NETLINK};
	struct census_sock *cs;
	int saved;

	cs = calloc(1, sizeof(*cs));
	if (cs == NULL)
		return NULL;
	cs->buf = malloc(CENSUS_BUF);
	if (cs->buf == NULL)
		goto fail_buf;
	cs->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (cs->fd < 0)
		goto fail_sock;
	/* Bound so replies can be matched on our port id as well as the sequence. */
	if (bind(cs->fd, (struct sockaddr *)&local, sizeof(local)) < 0)
		goto fail_bind;
	return cs;
fail_bind:
	saved = errno;
	close(cs->fd);
	errno = saved;
fail_sock:
	free(cs->buf);
fail_buf:
	saved = errno;
	free(cs);
	errno = saved;
	return NULL;
}

void census_set_per_family(struct census_sock *cs, int on)
{
	cs->no_compat = on;
}

void census_close(struct census_sock *cs)
{
	if (cs == NULL)
		return;
	close(cs->fd);
	free(cs->buf);
	free(cs);
}

/* The request: a header plus a bytecode of one port comparison. The kernel runs the
 * bytecode per socket: an op's `yes` is the jump on a match, `no` on a mismatch; the
 * socket is accepted when the program ends exactly at its length, and rejected by a jump
 * past the end (len + 4). INET_DIAG_BC_S_EQ / D_EQ exist since Linux 4.16.
 *
 * The header is preferably the old TCPDIAG_GETSOCK one (struct inet_diag_req): the kernel
 * answers it with the family AF_UNSPEC, i.e. both IPv4 and IPv6 sockets in one walk of its
 * socket tables. SOCK_DIAG_BY_FAMILY (inet_diag_req_v2) needs one request, and one whole
 * walk, per family: twice the time when the namespace holds many sockets. The walk costs
 * in proportion to every TCP socket of the host, not to those of the port. */
struct census_bc {
	struct nlattr attr;
	struct inet_diag_bc_op op[5]; /* one port comparison (2 ops), or two and a jump */
};

struct census_req_v2 {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 r;
	struct census_bc bc;
};

struct census_req_compat {
	struct nlmsghdr nlh;
	struct inet_diag_req r;
	struct census_bc bc;
};

/* CENSUS_BOTH: the local port or the remote port is P, as ss compiles an "or": [S_EQ P]
 * [JMP] [D_EQ P]. A local match falls through to the jump, which always takes its `no`
 * to the end (accept); a mismatch jumps over it to the remote comparison. The kernel's
 * audit (inet_diag_bc_audit) wants every `no` target on the chain of `yes` jumps, which
 * rules out a plain jump from the first comparison to the end. The request carries only
 * the ops used (nla_len). */
#define CENSUS_BOTH 2

static void census_bc_fill(struct census_bc *bc, int port, int side)
{
	const unsigned short op = sizeof(bc->op[0]), cmp = 2 * op;

	if (side == CENSUS_BOTH) {
		bc->attr.nla_len = sizeof(bc->attr) + 2 * cmp + op;
		bc->op[0] = (struct inet_diag_bc_op){INET_DIAG_BC_S_EQ, cmp, cmp + op};
		bc->op[2] = (struct inet_diag_bc_op){INET_DIAG_BC_JMP, op, cmp + op};
		bc->op[3] = (struct inet_diag_bc_op){INET_DIAG_BC_D_EQ, cmp, cmp + 4};
		bc->op[4].no = (unsigned short)port;
	} else {
		bc->attr.nla_len = sizeof(bc->attr) + cmp;
		bc->op[0].code = side == CENSUS_LOCAL ? INET_DIAG_BC_S_EQ : INET_DIAG_BC_D_EQ;
		bc->op[0].yes = cmp;
		bc->op[0].no = cmp + 4;
	}
	bc->attr.nla_type = INET_DIAG_REQ_BYTECODE;
	bc->op[1].no = (unsigned short)port; /* the operand: host byte order */
}

static void census_hdr_fill(struct census_sock *cs, struct nlmsghdr *nlh, size_t len, int type)
{
	nlh->nlmsg_len = (uint32_t)len;
	nlh->nlmsg_type = (uint16_t)type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++cs->seq;
}

/* family AF_UNSPEC: the one-walk compat request; AF_INET or AF_INET6: a v2 request. */
static int census_send(struct census_sock *cs, int family, int port, int side, unsigned states)
{
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	union {
		struct census_req_v2 v2;
		struct census_req_compat compat;
	} req;
	size_t len;
	ssize_t n;

	memset(&req, 0, sizeof(req));
	if (family == AF_UNSPEC) {
		census_bc_fill(&req.compat.bc, port, side);
		len = offsetof(struct census_req_compat, bc) + req.compat.bc.attr.nla_len;
		census_hdr_fill(cs, &req.compat.nlh, len, TCPDIAG_GETSOCK);
		req.compat.r.idiag_states = states;
	} else {
		census_bc_fill(&req.v2.bc, port, side);
		len = offsetof(struct census_req_v2, bc) + req.v2.bc.attr.nla_len;
		census_hdr_fill(cs, &req.v2.nlh, len, SOCK_DIAG_BY_FAMILY);
		req.v2.r.sdiag_family = (uint8_t)family;
		req.v2.r.sdiag_protocol = IPPROTO_TCP;
		req.v2.r.idiag_states = states;
	}
	do {
		n = sendto(cs->fd, &req, len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	return 0;
}

static void census_count(struct census_counts *out, const struct inet_diag_msg *m)
{
	int st = m->idiag_state < CENSUS_NSTATES ? m->idiag_state : 0;

	out->total++;
	out->state[st]++;
	if (st == CENSUS_LISTEN) {
		out->accept_queue += m->idiag_rqueue;
		out->accept_backlog += m->idiag_wqueue;
	} else {
		out->recv_q += m->idiag_rqueue;
		out->send_q += m->idiag_wqueue;
	}
	if (m->idiag_timer >= 1 && m->idiag_timer <= CENSUS_NTIMERS) {
		struct census_timer_sum *t = &out->timer[st][m->idiag_timer - 1];
		t->count++;
		if (m->idiag_expires > t->max_expiry_ms)
			t->max_expiry_ms = m->idiag_expires;
		if (m->idiag_retrans > t->max_retrans)
			t->max_retrans = m->idiag_retrans;
	}
}

/* What is done with each socket of a dump: counted (census_port), and/or handed to a
 * caller's callback (census_each). */
struct census_sink {
	struct census_counts *out; /* may be NULL */
	census_each_fn cb;	   /* may be NULL */
	void *arg;
	census_keep_fn keep; /* may be NULL: every socket */
	void *keep_arg;
	/* CENSUS_BOTH: the sockets whose local port is `port` go to the above, those whose
	 * remote port is go to out_remote (filtered by keep_remote). */
	int port;
	struct census_counts *out_remote;
	census_keep_fn keep_remote;
};

static void census_info(struct census_sock_info *s, const struct inet_diag_msg *m)
{
	s->family = m->idiag_family;
	s->state = m->idiag_state;
	s->cookie = (uint64_t)m->id.idiag_cookie[1] << 32 | m->id.idiag_cookie[0];
	s->inode = m->idiag_inode;
	s->sport = ntohs(m->id.idiag_sport);
	s->dport = ntohs(m->id.idiag_dport);
	memcpy(s->src, m->id.idiag_src, sizeof(s->src));
	memcpy(s->dst, m->id.idiag_dst, sizeof(s->dst));
	s->rqueue = m->idiag_rqueue;
	s->wqueue = m->idiag_wqueue;
	s->timer = m->idiag_timer;
	s->expires_ms = m->idiag_expires;
	s->retrans = m->idiag_retrans;
}

/* A socket of a census of both sides: counted on each side whose port it has (a socket
 * connected to its own port, on both). */
static void census_sink_both(const struct census_sink *k, const struct inet_diag_msg *m)
{
	struct census_sock_info s;

	census_info(&s, m);
	if (s.sport == k->port && (k->keep == NULL || k->keep(&s, k->keep_arg)))
		census_count(k->out, m);
	if (s.dport == k->port && (k->keep_remote == NULL || k->keep_remote(&s, k->keep_arg)))
		census_count(k->out_remote, m);
}

static void census_sink_put(const struct census_sink *k, const struct inet_diag_msg *m)
{
	struct census_sock_info s;

	if (k->out_remote != NULL)
		return census_sink_both(k, m);
	if (k->keep != NULL || k->cb != NULL)
		census_info(&s, m);
	if (k->keep != NULL && !k->keep(&s, k->keep_arg))
		return;
	if (k->out != NULL)
		census_count(k->out, m);
	if (k->cb != NULL)
		k->cb(&s, k->arg);
}

/* Handles one datagram of the dump. 1 = the dump is complete, 0 = more to come, -1 =
 * error (errno). Messages of an older request (an earlier census that failed half way)
 * carry an older sequence number and are skipped. */
static int census_parse(struct census_sock *cs, size_t len, const struct census_sink *k)
{
	struct nlmsghdr *h = (struct nlmsghdr *)cs->buf;

	for (; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
		if (h->nlmsg_seq != cs->seq)
			continue;
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e))) {
				errno = EPROTO;
				return -1;
			}
			errno = e->error < 0 ? -e->error : EPROTO;
			return -1;
		}
		if ((h->nlmsg_type != SOCK_DIAG_BY_FAMILY && h->nlmsg_type != TCPDIAG_GETSOCK) ||
		    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
			errno = EPROTO;
			return -1;
		}
		census_sink_put(k, NLMSG_DATA(h));
	}
	return 0;
}

static int census_recv(struct census_sock *cs, const struct census_sink *k)
{
	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = {.iov_base = cs->buf, .iov_len = CENSUS_BUF};
		struct msghdr msg = {.msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = &iov,
				     .msg_iovlen = 1};
		ssize_t n = recvmsg(cs->fd, &msg, 0);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0 || (msg.msg_flags & MSG_TRUNC)) {
			errno = EPROTO;
			return -1;
		}
		if (from.nl_pid != 0) /* only the kernel answers */
			continue;
		rc = census_parse(cs, (size_t)n, k);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
	}
}

/* Zeroes the sink's counts (before a census, and before its retry per family). */
static void census_sink_zero(const struct census_sink *k)
{
	if (k->out != NULL)
		memset(k->out, 0, sizeof(*k->out));
	if (k->out_remote != NULL)
		memset(k->out_remote, 0, sizeof(*k->out_remote));
}

static int census_run(struct census_sock *cs, int port, int side, unsigned states,
		      const struct census_sink *k)
{
	static const int families[] = {AF_INET, AF_INET6};
	int64_t t0 = clock_mono_us();

	census_sink_zero(k);
	if (port < 0 || port > 65535) {
		errno = EINVAL;
		return -1;
	}
	if (!cs->no_compat) {
		if (census_send(cs, AF_UNSPEC, port, side, states) == 0 && census_recv(cs, k) == 0)
			goto done;
		/* A kernel without the compat request refuses it before sending anything;
		 * any other error is the census's. */
		if (errno != EINVAL && errno != ENOENT && errno != EOPNOTSUPP)
			return -1;
		cs->no_compat = 1;
		census_sink_zero(k);
	}
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		if (census_send(cs, families[i], port, side, states) < 0)
			return -1;
		if (census_recv(cs, k) < 0)
			return -1;
	}
done:
	if (k->out != NULL)
		k->out->elapsed_us = clock_mono_us() - t0;
	if (k->out_remote != NULL)
		k->out_remote->elapsed_us = k->out->elapsed_us;
	return 0;
}

int census_port(struct census_sock *cs, int port, enum census_side side, struct census_counts *out)
{
	struct census_sink k = {.out = out};

	return census_run(cs, port, side, CENSUS_ALL_STATES, &k);
}

int census_port_keep(struct census_sock *cs, int port, enum census_side side, census_keep_fn keep,
		     void *arg, struct census_counts *out)
{
	struct census_sink k = {.out = out, .keep = keep, .keep_arg = arg};

	return census_run(cs, port, side, CENSUS_ALL_STATES, &k);
}

int census_port_both(struct census_sock *cs, int port, census_keep_fn keep_local,
		     census_keep_fn keep_remote, void *arg, struct census_counts *local,
		     struct census_counts *remote)
{
	struct census_sink k = {.out = local,
				.keep = keep_local,
				.keep_arg = arg,
				.port = port,
				.out_remote = remote,
				.keep_remote = keep_remote};

	return census_run(cs, port, CENSUS_BOTH, CENSUS_ALL_STATES, &k);
}

int census_each(struct census_sock *cs, int port, enum census_side side, unsigned states,
		struct census_counts *out, census_each_fn cb, void *arg)
{
	struct census_sink k = {.out = out, .cb = cb, .arg = arg};

	return census_run(cs, port, side, states != 0 ? states : CENSUS_ALL_STATES, &k);
}

void census_add(struct census_counts *a, const struct census_counts *b)
{
	a->total += b->total;
	for (int s = 0; s < CENSUS_NSTATES; s++) {
		a->state[s] += b->state[s];
		for (int t = 0; t < CENSUS_NTIMERS; t++) {
			struct census_timer_sum *x = &a->timer[s][t];
			const struct census_timer_sum *y = &b->timer[s][t];
			x->count += y->count;
			if (y->max_expiry_ms > x->max_expiry_ms)
				x->max_expiry_ms = y->max_expiry_ms;
			if (y->max_retrans > x->max_retrans)
				x->max_retrans = y->max_retrans;
		}
	}
	a->accept_queue += b->accept_queue;
	a->accept_backlog += b->accept_backlog;
	a->recv_q += b->recv_q;
	a->send_q += b->send_q;
	if (b->elapsed_us > a->elapsed_us)
		a->elapsed_us = b->elapsed_us;
}

int64_t census_next_due(int64_t start_us, int64_t took_us, int64_t interval_us)
{
	return took_us * CENSUS_SHARE > interval_us ? start_us + took_us * CENSUS_SHARE : 0;
}
