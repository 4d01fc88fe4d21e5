/* lab: what the tests/lab programs share.
 *
 * Each program checks one claim of shared/reference/tcp-teardown-notes.zh.txt against the
 * running kernel and prints one or more rows on stdout:
 *
 *     row|ID|claim|what Linux did|verdict
 *
 * The verdict is computed by the program from what it observed (agrees, differs, nuance);
 * run.sh turns the rows into the truth table. Exit status: 0 ran (whatever the verdict),
 * LAB_SKIP when it could not run (the row says why), anything else a failure of the
 * program itself.
 *
 * Every program works in a fresh, anonymous network namespace (unshare(CLONE_NEWNET)):
 * the kernel frees it when the last process, socket or fd referring to it is gone, so no
 * namespace outlives the program even when it crashes or is killed by `timeout`, and the
 * host's sysctls and firewall are never touched. Helpers return -1 with errno kept and the
 * failing call recorded; the program reports it once with lab_err(). */
#ifndef LAB_H
#define LAB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LAB_SKIP 77

enum lab_verdict { LAB_AGREES, LAB_DIFFERS, LAB_NUANCE };

struct lab_pair;

/* --- program, rows, errors ------------------------------------------------------------ */

/* Parses --quick, ignores SIGPIPE (cases that study it re-enable it), records the netns we
 * started in. Without root prints a "skipped: needs root" row for id and exits LAB_SKIP. */
void lab_init(int argc, char **argv, const char *id, const char *claim);
int lab_quick(void);

/* A growing "what Linux did" text; cut (never overflowed) at its size. */
struct lab_str {
	char s[1536];
	size_t n;
};
void lab_add(struct lab_str *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One row of the truth table; `why` (may be NULL) follows the verdict after a colon. */
void lab_row(const char *id, const char *claim, enum lab_verdict v, const char *why,
	     const char *observed);
/* Detail for the log (stderr), not part of the table. */
void lab_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Records the name of a failed call (errno kept) for lab_err(); returns -1. */
int lab_sysfail(const char *call);
/* Reports the failure once: "lab ID: what: call: strerror". Returns 1 (an exit status). */
int lab_err(const char *what);

/* --- time ----------------------------------------------------------------------------- */

int64_t lab_now_us(void);
void lab_sleep_ms(int ms);
/* close(*fd), timed: *us is the time spent inside close(); *fd becomes -1. 0, or -1 after
 * lab_sysfail("close"). */
int lab_timed_close(int *fd, int64_t *us);

/* --- namespaces, sysctls, commands ------------------------------------------------------ */

/* Moves this thread into a new netns with lo up; returns an fd naming it (for setns). */
int lab_netns_new(void);
int lab_netns_enter(int nsfd);
/* name like "net/ipv4/tcp_fin_timeout". Refuses (EPERM) in the netns we started in. */
int lab_sysctl_set(const char *name, long value);
int lab_sysctl_set_str(const char *name, const char *value);
int lab_sysctl_get(const char *name, long *value);
/* Two namespaces joined by a veth pair: A has va = LAB_IP_A/24, B has vb = LAB_IP_B/24.
 * The calling thread ends in A; enter B with lab_netns_enter(v->ns_b) (sockets keep the
 * netns they were created in, whatever the thread does later). */
#define LAB_IP_A "10.199.0.1"
#define LAB_IP_B "10.199.0.2"
struct lab_veth {
	int ns_a, ns_b;
};
int lab_veth_open(struct lab_veth *v);
/* A connection from A (p->a) to a listener in B (p->b accepted there). */
int lab_veth_pair(struct lab_veth *v, struct lab_pair *p);
/* /bin/sh -c CMD in the current netns; 0 when it exits 0. Its output goes to stderr. */
int lab_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Loads an nftables ruleset into the current netns (nft -f -). */
int lab_nft(const char *ruleset);

/* --- sockets ----------------------------------------------------------------------------- */

/* A connected pair on loopback (or any address): a = connect()ing side, b = accept()ed. */
struct lab_pair {
	int a, b;
	uint16_t pa, pb; /* local ports of a and b */
};
/* Listening socket on ip:port (0 = any); *port gets the bound port. */
int lab_listen(const char *ip, uint16_t port, uint16_t *bound);
/* The same with SO_REUSEADDR or SO_REUSEPORT (reuse_opt) set before bind(). */
int lab_listen_opt(const char *ip, uint16_t port, int reuse_opt, uint16_t *bound);
/* Connect from (bind_ip, bind_port) when bind_ip is not NULL, SO_REUSEADDR if reuse. */
int lab_connect(const char *ip, uint16_t port, const char *bind_ip, uint16_t bind_port, int reuse);
/* accept() with a deadline. */
int lab_accept(int lfd, int timeout_ms);
/* snd/rcv buffer sizes are applied to both ends before connect (0 = kernel default). */
int lab_pair_open(struct lab_pair *p, const char *ip, int sndbuf, int rcvbuf);
void lab_pair_close(struct lab_pair *p);
void lab_close(int *fd);

int lab_set_linger(int fd, int onoff, int secs);
int lab_set_nonblock(int fd, int on);
int lab_set_int(int fd, int level, int opt, int value, const char *name);
uint16_t lab_local_port(int fd);
/* tcpi_state of an open socket, or -1. */
int lab_tcp_state(int fd);
const char *lab_state_name(int state);
/* Sends (MSG_DONTWAIT) until the kernel takes no more; *sent = bytes accepted. */
int lab_fill(int fd, size_t *sent);
/* Reads until EOF, an error or timeout_ms of silence. *got = bytes; *err = 0 on EOF, the
 * errno of the failing recv(), or ETIME when nothing came for timeout_ms. */
int lab_drain(int fd, int timeout_ms, size_t *got, int *err);
/* "-1 EPIPE" or "5" into buf, from a call's result and its errno. */
const char *lab_ret(char *buf, size_t len, ssize_t rc, int err);
const char *lab_errname(int err);
/* Polls cond(arg) every 2 ms until it returns 1 (0 = not yet, -1 = failed, with
 * lab_sysfail() done). 0 when it held; -1 when cond failed, or when timeout_ms passed
 * first: then errno is ETIMEDOUT and `what` is recorded for lab_err(). Waiting for a kernel
 * condition always goes through a deadline like this, never a fixed sleep. */
int lab_wait_until(int (*cond)(void *), void *arg, int timeout_ms, const char *what);
/* Polls tcpi_state until it is `state` or timeout_ms passes; 0 when reached. */
int lab_wait_state(int fd, int state, int timeout_ms);
/* Waits up to timeout_ms for the peer's FIN: 0 when recv() then returns 0 (nothing unread
 * before it). */
int lab_wait_eof(int fd, int timeout_ms);

/* --- packets: AF_PACKET on one interface of the current netns ------------------------------ */

#define LAB_FIN	 0x01
#define LAB_SYN	 0x02
#define LAB_RST	 0x04
#define LAB_PSH	 0x08
#define LAB_ACK	 0x10
#define LAB_DATA 0x100 /* pseudo flag: the segment carries payload */

struct lab_pkt {
	int64_t t_us; /* CLOCK_MONOTONIC, from the kernel's receive timestamp */
	uint16_t sport, dport;
	uint16_t flags;
	uint32_t seq;
	uint32_t len;
};

#define LAB_CAP_MAX 8192
struct lab_cap {
	int fd;
	int keep_outgoing;
	int64_t mono_minus_real_us;
	size_t n;
	unsigned long lost; /* packets the capture itself missed (PACKET_STATISTICS) */
	struct lab_pkt pkt[LAB_CAP_MAX];
};
/* On lo every packet is seen twice (PACKET_OUTGOING, then PACKET_HOST): keep_outgoing=0
 * keeps one copy. On a veth end keep_outgoing=1 keeps what this side sends. */
int lab_cap_open(struct lab_cap *c, const char *ifname, int keep_outgoing);
int lab_cap_drain(struct lab_cap *c);
/* Packets from sport to dport (0 = any) having any flag of `flags`. */
int lab_cap_count(const struct lab_cap *c, uint16_t sport, uint16_t dport, unsigned flags);
const struct lab_pkt *lab_cap_first(const struct lab_cap *c, uint16_t sport, uint16_t dport,
				    unsigned flags);
/* Drains until such a packet is there or timeout_ms passes: 1 seen, 0 not, -1 error. */
int lab_cap_wait(struct lab_cap *c, uint16_t sport, uint16_t dport, unsigned flags, int timeout_ms);
/* "FIN" / "RST" / "FIN+RST" / "none": what sport sent to dport. */
const char *lab_cap_teardown(const struct lab_cap *c, uint16_t sport, uint16_t dport);
void lab_cap_close(struct lab_cap *c);

/* --- sock_diag: every TCP socket of the netns, including orphans and TIME_WAIT ------------ */

struct lab_diag {
	int state;
	uint16_t sport, dport;
	int timer; /* idiag_timer: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 probe */
	uint32_t expires_ms; /* time left on that timer */
	uint32_t inode;	     /* 0 for orphans and TIME_WAIT: no file refers to them */
};
/* The socket whose local port is sport and remote port dport: 1 found, 0 not, -1 error. */
int lab_diag_find(uint16_t sport, uint16_t dport, struct lab_diag *out);
/* How many sockets of the netns are in `state` (-1 = any). */
int lab_diag_count(int state);
/* Waits (lab_wait_until) until a close between two local ports on one address, both fds
 * already closed, has finished: the active closer's socket (closer_port -> peer_port) is
 * in TIME_WAIT or gone, and the other side's (peer_port -> closer_port) is gone. It asks
 * nothing of which of the two the closer ended in. */
int lab_wait_closed(uint16_t closer_port, uint16_t peer_port, int timeout_ms);

/* TCP states as the kernel numbers them (include/net/tcp_states.h). */
enum {
	LAB_ESTABLISHED = 1,
	LAB_SYN_SENT,
	LAB_SYN_RECV,
	LAB_FIN_WAIT1,
	LAB_FIN_WAIT2,
	LAB_TIME_WAIT,
	LAB_CLOSE,
	LAB_CLOSE_WAIT,
	LAB_LAST_ACK,
	LAB_LISTEN,
	LAB_CLOSING,
};

#endif
