/* Claim 6: "the peer closing, or a network failure, puts our side in CLOSE_WAIT".
 *
 * The states one socket goes through (tcpi_state, polled every 5 ms) when: the peer
 * close()s (FIN); the peer resets (SO_LINGER 0); the network fails (an nftables rule in
 * this namespace drops every packet) while the connection is idle without keepalive,
 * idle with keepalive (1 s idle, 1 s interval, 2 probes), or sending with
 * TCP_USER_TIMEOUT=1500 ms. Linux enters CLOSE_WAIT only in tcp_fin() (a FIN arrived in
 * ESTABLISHED); a reset or a timeout goes straight to CLOSE (tcp_done()). */
#include "lab.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID	 "6"
#define CLAIM	 "A network failure (not only the peer's close) puts our side in CLOSE_WAIT"
#define WATCH_MS 5000

#define CUT_ALL                                                                                    \
	"table inet lab_cut {\n"                                                                   \
	"  chain out { type filter hook output priority 0; policy drop; }\n}\n"

enum how { PEER_FIN, PEER_RST, CUT_IDLE, CUT_KEEPALIVE, CUT_SENDING, NHOW };
static const char *how_name[] = {
    "peer close() (FIN)", "peer reset (RST)", "network cut, idle, no keepalive",
    "network cut, idle, keepalive 1s/1s/2", "network cut while sending, TCP_USER_TIMEOUT 1.5 s"};

struct watch {
	struct lab_pair p;
	int order[8], n; /* distinct states in order */
	int64_t t0, t_end;
	int so_error;
};

static int look(struct watch *w)
{
	int st = lab_tcp_state(w->p.a);

	if (st < 0)
		return -1;
	if (w->n == 0 || (w->n < 8 && w->order[w->n - 1] != st)) {
		w->order[w->n++] = st;
		w->t_end = lab_now_us();
	}
	return 0;
}

static int prepare(struct watch *w, enum how h)
{
	if (lab_pair_open(&w->p, "127.0.0.1", 0, 0) < 0)
		return -1;
	if (h == CUT_KEEPALIVE &&
	    (lab_set_int(w->p.a, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE") < 0 ||
	     lab_set_int(w->p.a, IPPROTO_TCP, TCP_KEEPIDLE, 1, "TCP_KEEPIDLE") < 0 ||
	     lab_set_int(w->p.a, IPPROTO_TCP, TCP_KEEPINTVL, 1, "TCP_KEEPINTVL") < 0 ||
	     lab_set_int(w->p.a, IPPROTO_TCP, TCP_KEEPCNT, 2, "TCP_KEEPCNT") < 0))
		return -1;
	if (h == CUT_SENDING &&
	    lab_set_int(w->p.a, IPPROTO_TCP, TCP_USER_TIMEOUT, 1500, "TCP_USER_TIMEOUT") < 0)
		return -1;
	if (h == PEER_RST && lab_set_linger(w->p.b, 1, 0) < 0)
		return -1;
	return look(w);
}

/* What happens to side a: the peer's action, or (after the cut) data to send. */
static int act(struct watch *w, enum how h)
{
	w->t0 = lab_now_us();
	if (h == PEER_FIN || h == PEER_RST) {
		lab_close(&w->p.b);
		return 0;
	}
	if (h == CUT_SENDING && send(w->p.a, "data", 4, MSG_NOSIGNAL) != 4)
		return lab_sysfail("send");
	return 0;
}

static int watch_all(struct watch *w, int from, int to)
{
	int64_t end = lab_now_us() + WATCH_MS * 1000LL;
	socklen_t len = sizeof(int);

	while (lab_now_us() < end) {
		for (int i = from; i < to; i++)
			if (look(&w[i]) < 0)
				return -1;
		lab_sleep_ms(5);
	}
	for (int i = from; i < to; i++)
		if (getsockopt(w[i].p.a, SOL_SOCKET, SO_ERROR, &w[i].so_error, &len) < 0)
			return lab_sysfail("getsockopt(SO_ERROR)");
	return 0;
}

static void describe(struct lab_str *s, enum how h, const struct watch *w)
{
	lab_add(s, "%s: ", how_name[h]);
	for (int i = 0; i < w->n; i++)
		lab_add(s, "%s%s", i ? " -> " : "", lab_state_name(w->order[i]));
	if (w->n > 1)
		lab_add(s, " after %.1f s", (w->t_end - w->t0) / 1e6);
	else
		lab_add(s, " for %.0f s", WATCH_MS / 1e3);
	lab_add(s, ", SO_ERROR %s. ", w->so_error ? lab_errname(w->so_error) : "0");
}

int main(int argc, char **argv)
{
	struct watch w[NHOW] = {0};
	struct lab_str s = {0};
	int cw_fin, cw_other = 0;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0)
		return lab_err("setup");
	for (int h = 0; h < NHOW; h++)
		if (prepare(&w[h], h) < 0)
			return lab_err(how_name[h]);
	if (act(&w[PEER_FIN], PEER_FIN) < 0 || act(&w[PEER_RST], PEER_RST) < 0 ||
	    lab_nft(CUT_ALL) < 0)
		return lab_err("peer close / network cut");
	for (int h = CUT_IDLE; h < NHOW; h++)
		if (act(&w[h], h) < 0)
			return lab_err(how_name[h]);
	if (watch_all(w, 0, NHOW) < 0)
		return lab_err("watching states");
	for (int h = 0; h < NHOW; h++) {
		describe(&s, h, &w[h]);
		for (int i = 0; h != PEER_FIN && i < w[h].n; i++)
			cw_other |= w[h].order[i] == LAB_CLOSE_WAIT;
	}
	cw_fin = w[PEER_FIN].order[w[PEER_FIN].n - 1] == LAB_CLOSE_WAIT;
	lab_row(ID, CLAIM,
		cw_other ? LAB_AGREES
		: cw_fin ? LAB_DIFFERS
			 : LAB_NUANCE,
		!cw_other && cw_fin ? "only the peer's FIN leads to CLOSE_WAIT; failures and "
				      "resets end in CLOSE, or in nothing at all when idle"
				    : NULL,
		s.s);
	for (int h = 0; h < NHOW; h++)
		lab_pair_close(&w[h].p);
	return 0;
}
