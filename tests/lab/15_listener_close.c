/* Claim 15 (not in the note; the restart question behind it): closing a listening socket
 * loses the connections that wait in its queue, so a restart that closes the listener
 * resets clients.
 *
 * N connections wait in the leaving listener's accept queue (handshake done, not accepted)
 * and N in SYN_RECV (nftables drops the client's final ACK, so only a request socket
 * exists). Then the leaving listener is closed, the drop rule removed, every SYN_RECV
 * client sends one byte, and the remaining listener accepts what it can. Three set-ups:
 * - reuseport, tcp_migrate_req=0 and =1: two SO_REUSEPORT listeners, a classic BPF program
 *   (SO_ATTACH_REUSEPORT_CBPF returning 0) steers every new connection to the first,
 *   which then closes. Linux's inet_csk_listen_stop() resets each child still queued
 *   (inet_child_forget), unless tcp_migrate_req (5.14+, per netns) moves it to another
 *   listener of the group; a request socket whose listener is gone is dropped when its
 *   next segment arrives (the client's data then meets no socket: RST) unless it migrates.
 * - inherited: one listening socket held by two processes, as when a master creates the
 *   listener and workers inherit it; the leaving process closes its descriptor (here a
 *   dup(), the same file reference a worker's exit drops). The socket itself never closes;
 *   tcp_migrate_req=0 here, since this set-up must not depend on it.
 * The figures are printed on stderr as "case=... queued=N synrecv=N reset=R accepted=A"
 * for tests/integration/test_lab_listener_close.py. */
#include "lab.h"

#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID    "15"
#define CLAIM "Closing a listening socket (a restart) resets the connections waiting in its queue"
#define N     8

enum setup { MIGRATE_OFF, MIGRATE_ON, INHERITED, NSETUP };
static const char *setup_name[] = {"reuseport-migrate0", "reuseport-migrate1",
				   "inherited-migrate0"};

struct outcome {
	int ran;
	int queued, synrecv; /* waiting when the listener closed */
	int reset, accepted; /* of the 2N clients */
};

/* Every new connection of the group goes to index 0: the first listener that joined. */
static int steer_to_first(int fd)
{
	struct sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
	struct sock_fprog prog = {.len = 1, .filter = code};

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
		return lab_sysfail("setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
	return 0;
}

/* The leaving listener (*leave) and the one that stays (*stay). */
static int open_listeners(enum setup s, int *leave, int *stay, uint16_t *port)
{
	uint16_t p2;

	if (s == INHERITED) {
		*stay = lab_listen("127.0.0.1", 0, port);
		if (*stay < 0)
			return -1;
		*leave = dup(*stay);
		return *leave < 0 ? lab_sysfail("dup") : 0;
	}
	*leave = lab_listen_opt("127.0.0.1", 0, SO_REUSEPORT, port);
	if (*leave < 0 || steer_to_first(*leave) < 0)
		return -1;
	*stay = lab_listen_opt("127.0.0.1", *port, SO_REUSEPORT, &p2);
	return *stay < 0 ? -1 : 0;
}

struct count_arg {
	int state, want;
};

static int enough_in_state(void *arg)
{
	const struct count_arg *c = arg;
	int n = lab_diag_count(c->state);

	return n < 0 ? -1 : n >= c->want;
}

/* N established and queued, then N left in SYN_RECV behind a rule dropping final ACKs. */
static int fill_queues(uint16_t port, int *cli, struct outcome *o)
{
	char rules[256];
	struct count_arg est = {LAB_ESTABLISHED, 2 * N}, syn = {LAB_SYN_RECV, N};

	for (int i = 0; i < N; i++)
		if ((cli[i] = lab_connect("127.0.0.1", port, NULL, 0, 0)) < 0)
			return -1;
	/* Both ends of each queued connection are ESTABLISHED (2N sockets). */
	if (lab_wait_until(enough_in_state, &est, 2000, "queued connections established") < 0)
		return -1;
	o->queued = N;
	snprintf(rules, sizeof(rules),
		 "table inet lab15 {\n  chain in {\n    type filter hook input priority 0;\n"
		 "    tcp dport %u tcp flags & (syn | ack) == ack drop\n  }\n}\n",
		 port);
	if (lab_nft(rules) < 0)
		return -1;
	for (int i = N; i < 2 * N; i++)
		if ((cli[i] = lab_connect("127.0.0.1", port, NULL, 0, 0)) < 0)
			return -1;
	if (lab_wait_until(enough_in_state, &syn, 2000, "request sockets in SYN_RECV") < 0)
		return -1;
	o->synrecv = N;
	return 0;
}

struct settle_arg {
	int stay, *cli, *acc;
	struct outcome *o;
};

/* Accepts what the remaining listener has; counts reset clients (state CLOSE). Done when
 * every client is either accepted or reset. */
static int settled(void *arg)
{
	struct settle_arg *a = arg;
	int fd;

	while ((fd = accept4(a->stay, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
		a->acc[a->o->accepted++] = fd;
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return lab_sysfail("accept4");
	a->o->reset = 0;
	for (int i = 0; i < 2 * N; i++) {
		int st = lab_tcp_state(a->cli[i]);

		if (st < 0)
			return -1;
		a->o->reset += st == LAB_CLOSE;
	}
	return a->o->accepted + a->o->reset >= 2 * N;
}

static int run_setup(enum setup s, struct outcome *o)
{
	int cli[2 * N], acc[2 * N], leave = -1, stay = -1, rc = -1;
	struct settle_arg a = {.cli = cli, .acc = acc, .o = o};
	uint16_t port;

	memset(o, 0, sizeof(*o));
	for (int i = 0; i < 2 * N; i++)
		cli[i] = acc[i] = -1;
	if (lab_netns_new() < 0)
		return -1;
	/* inherited runs with migration off: it must not need it */
	if (lab_sysctl_set("net/ipv4/tcp_migrate_req", s == MIGRATE_ON) < 0)
		return -1;
	if (open_listeners(s, &leave, &stay, &port) < 0 || fill_queues(port, cli, o) < 0)
		goto out;
	lab_close(&leave);
	if (lab_sh("nft delete table inet lab15") < 0)
		goto out;
	/* The data segment carries the ACK that completes (or meets no) handshake. */
	for (int i = N; i < 2 * N; i++)
		if (send(cli[i], "x", 1, MSG_NOSIGNAL) < 0 && errno != ECONNRESET && errno != EPIPE)
			goto out;
	a.stay = stay;
	if (lab_set_nonblock(stay, 1) < 0) /* settled() accepts until EAGAIN */
		goto out;
	if (lab_wait_until(settled, &a, 3000, "every client accepted or reset") < 0)
		goto out;
	o->ran = 1;
	lab_note("case=%s queued=%d synrecv=%d reset=%d accepted=%d", setup_name[s], o->queued,
		 o->synrecv, o->reset, o->accepted);
	rc = 0;
out:
	for (int i = 0; i < 2 * N; i++) {
		lab_close(&cli[i]);
		lab_close(&acc[i]);
	}
	lab_close(&leave);
	lab_close(&stay);
	return rc;
}

int main(int argc, char **argv)
{
	struct outcome o[NSETUP];
	struct lab_str s = {0};
	long v;
	int lossy, lossless;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_sysctl_get("net/ipv4/tcp_migrate_req", &v) < 0) {
		lab_row(ID, CLAIM, LAB_NUANCE, NULL,
			"skipped: no net.ipv4.tcp_migrate_req on this kernel (Linux 5.14+)");
		return LAB_SKIP;
	}
	for (int i = 0; i < NSETUP; i++)
		if (run_setup((enum setup)i, &o[i]) < 0)
			return lab_err(setup_name[i]);
	for (int i = 0; i < NSETUP; i++)
		lab_add(&s, "%s%s: %d queued + %d SYN_RECV -> %d reset, %d accepted by the other",
			i ? "; " : "", setup_name[i], o[i].queued, o[i].synrecv, o[i].reset,
			o[i].accepted);
	lossy = o[MIGRATE_OFF].reset == 2 * N;
	lossless = o[MIGRATE_ON].reset == 0 && o[INHERITED].reset == 0;
	if (lossy && lossless)
		lab_row(
		    ID, CLAIM, LAB_NUANCE,
		    "true when the socket closes and no other listener of its SO_REUSEPORT group "
		    "takes its queue (tcp_migrate_req=0); lossless with tcp_migrate_req=1, and "
		    "on any setting when the socket stays open in another process (inherited)",
		    s.s);
	else
		lab_row(ID, CLAIM, lossy ? LAB_AGREES : LAB_DIFFERS, "unexpected figures", s.s);
	return 0;
}
