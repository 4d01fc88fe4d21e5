/* census: exact count of TCP sockets by state for one port, from NETLINK_SOCK_DIAG.
 *
 * One dump request with an INET_DIAG_REQ_BYTECODE port filter, so the kernel only sends
 * the sockets of that port: the TCPDIAG_GETSOCK request, which covers IPv4 and IPv6 in one
 * walk of the kernel's socket tables (IPv4-mapped sockets of an AF_INET6 listener are
 * AF_INET6 sockets and are counted once); on a kernel that refuses it, one
 * SOCK_DIAG_BY_FAMILY (inet_diag_req_v2) request per family. The state mask asks for
 * every state: request sockets (a SYN received, not yet accepted by the handshake's last
 * ACK) come back as SYN_RECV; TIME_WAIT sockets and orphaned FIN_WAIT_2 sockets (held by
 * the kernel after close(), reported with their sub-state) are included. Sockets that are
 * only bound (BOUND_INACTIVE, Linux >= 6.5) are not asked for.
 *
 * Cost: the kernel walks every TCP socket of the host (the tables are shared by all
 * network namespaces) and sends those of the port (make bench's census section measures
 * it: 200,000 sockets took 270 ms here, ss 463 ms).
 *
 * Unlike `ss -s`, which folds CLOSE_WAIT into "estab", every state is its own counter.
 *
 * Blind spot: a socket in CLOSE whose fd is still open (the peer sent RST, or the kernel
 * gave up on it with ETIMEDOUT, and the application has not called close() yet) has left
 * the kernel's connection hash tables, so neither sock_diag nor `ss` can see it. Such a
 * leak only shows as an open fd: compare a process's open fds (/proc/PID/fd) with its own
 * connection table (the server does this). The census also sees only the network
 * namespace of the calling process.
 *
 * The netlink socket is opened once by census_open() and kept, so a census still works
 * when the process is at its fd limit (which is exactly when one wants it).
 */
#ifndef TEARDOWN_CENSUS_H
#define TEARDOWN_CENSUS_H

#include <stdint.h>

/* The kernel's TCP states (include/net/tcp_states.h). NEW_SYN_RECV is never reported
 * (request sockets are reported as SYN_RECV), nor BOUND_INACTIVE (those come back as
 * CLOSE). */
enum census_state {
	CENSUS_ESTABLISHED = 1,
	CENSUS_SYN_SENT,
	CENSUS_SYN_RECV,
	CENSUS_FIN_WAIT1,
	CENSUS_FIN_WAIT2,
	CENSUS_TIME_WAIT,
	CENSUS_CLOSE,
	CENSUS_CLOSE_WAIT,
	CENSUS_LAST_ACK,
	CENSUS_LISTEN,
	CENSUS_CLOSING,
	CENSUS_NEW_SYN_RECV,
	CENSUS_BOUND_INACTIVE,
	CENSUS_NSTATES
};

enum census_side {
	CENSUS_LOCAL,  /* sockets whose local port is P: a server's listener and accepted sockets */
	CENSUS_REMOTE, /* sockets whose remote port is P: clients connected to a server on P */
};

/* idiag_timer: which timer is pending on a socket. */
enum census_timer {
	CENSUS_TIMER_RETRANS = 0, /* idiag_timer 1: retransmission (also SYN-ACK of requests) */
	CENSUS_TIMER_KEEPALIVE,	  /* 2: keepalive (also FIN_WAIT_2 and SYN_SENT timers) */
	CENSUS_TIMER_TIME_WAIT,	  /* 3: TIME_WAIT or orphaned FIN_WAIT_2 expiry */
	CENSUS_TIMER_PROBE,	  /* 4: zero-window probe */
	CENSUS_NTIMERS
};

struct census_timer_sum {
	uint64_t count;		/* sockets of that state with that timer pending */
	uint64_t max_expiry_ms; /* the latest of their expiries, from the census time */
	uint64_t max_retrans;	/* highest idiag_retrans among them (retransmissions so far) */
};

struct census_counts {
	uint64_t total;
	uint64_t state[CENSUS_NSTATES];
	struct census_timer_sum timer[CENSUS_NSTATES][CENSUS_NTIMERS];
	/* LISTEN sockets: their accept queue now (idiag_rqueue) and its limit (idiag_wqueue),
	 * summed over all listeners of the port (SO_REUSEPORT gives several). */
	uint64_t accept_queue;
	uint64_t accept_backlog;
	/* Bytes queued in the non-listening sockets: unread (rqueue) and unacknowledged or
	 * unsent (wqueue). */
	uint64_t recv_q;
	uint64_t send_q;
	int64_t elapsed_us; /* how long the census took */
};

struct census_sock;

/* Opens the NETLINK_SOCK_DIAG socket. NULL with errno on failure. */
struct census_sock *census_open(void);
void census_close(struct census_sock *cs);

/* Counts every TCP socket (IPv4 and IPv6) whose local (CENSUS_LOCAL) or remote
 * (CENSUS_REMOTE) port is `port`. 0, or -1 with errno (the netlink error, or EPROTO for a
 * malformed reply); *out is zeroed first. */
int census_port(struct census_sock *cs, int port, enum census_side side, struct census_counts *out);

/* One socket of a census, as sock_diag reports it. */
struct census_sock_info {
	int family;	     /* AF_INET or AF_INET6 */
	int state;	     /* enum census_state */
	uint64_t cookie;     /* idiag_cookie: unique per socket for the namespace's lifetime */
	uint32_t inode;	     /* idiag_inode: st_ino of the socket's fd (fstat); 0 for sockets
				no fd refers to (TIME_WAIT, request sockets, orphans) */
	uint16_t sport;	     /* local port, host byte order */
	uint16_t dport;	     /* remote port, host byte order */
	uint32_t src[4];     /* local address, network byte order (IPv4: src[0]) */
	uint32_t dst[4];     /* remote address */
	uint32_t rqueue;     /* LISTEN: accept queue; others: unread bytes */
	uint32_t wqueue;     /* LISTEN: backlog; others: unacknowledged or unsent bytes */
	int timer;	     /* idiag_timer: 0 none, 1 + enum census_timer */
	uint32_t expires_ms; /* when that timer fires, from now */
	int retrans;	     /* idiag_retrans */
};

typedef void (*census_each_fn)(const struct census_sock_info *s, void *arg);

/* The bit of one state in census_each's `states` mask. */
#define CENSUS_STATE_BIT(st) (1U << (st))

/* Like census_port, but calls cb for every socket (in the kernel's order), of the states in
 * the mask only (0 = every state), and counts them into *out when out is not NULL (so one
 * dump gives both). The callback must not call the census. 0, or -1 with errno (cb may
 * have been called for part of the sockets). */
int census_each(struct census_sock *cs, int port, enum census_side side, unsigned states,
		struct census_counts *out, census_each_fn cb, void *arg);

/* Whether census_port_keep counts a socket: nonzero = count it. */
typedef int (*census_keep_fn)(const struct census_sock_info *s, void *arg);

/* Like census_port, but counts only the sockets keep() accepts (e.g. a client's own
 * sockets among every socket of the port). 0, or -1 with errno. */
int census_port_keep(struct census_sock *cs, int port, enum census_side side, census_keep_fn keep,
		     void *arg, struct census_counts *out);

/* Both sides of the port in one walk of the kernel's tables (each census walks every
 * socket of the namespace, whatever its filter, so two censuses cost two walks): the
 * sockets whose local port is `port` that keep_local accepts are counted into *local,
 * those whose remote port is that keep_remote accepts into *remote (a keep function NULL:
 * every socket; both get arg). Both counts are zeroed first and get the same elapsed_us.
 * 0, or -1 with errno. */
int census_port_both(struct census_sock *cs, int port, census_keep_fn keep_local,
		     census_keep_fn keep_remote, void *arg, struct census_counts *local,
		     struct census_counts *remote);

/* A census may take at most 1 / CENSUS_SHARE of a CPU: the kernel walks every socket of
 * the namespace for each one (about a second of CPU for 2,000,000 sockets here), and both
 * programs take it in their event loop or beside a progress tick. Its CPU time counts,
 * not its wall time: on a busy machine a census waits for a CPU too, and pacing by the
 * wall clock then left a timeline without a census for 90 s. Not a setting: the period
 * one asks for stays the rule; this only applies when the namespace is too big for it. */
#define CENSUS_SHARE 10

/* After a census that started at start_us and cost took_us of CPU (clock_thread_cpu_us),
 * for a caller that wants one every interval_us: the time before which the next one
 * should not start (start_us + CENSUS_SHARE x took_us), or 0 when the census fits in its
 * share of the interval. */
int64_t census_next_due(int64_t start_us, int64_t took_us, int64_t interval_us);

/* Uses one SOCK_DIAG_BY_FAMILY request per family instead of the one-walk request (what
 * a kernel without the latter gets; for tests and comparisons). */
void census_set_per_family(struct census_sock *cs, int on);

/* 1 when at least one socket of the port is listening. */
int census_listening(const struct census_counts *c);

/* "ESTABLISHED", "SYN_SENT", ... "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE"; "?" when
 * unknown. census_state_key() gives the lower-case key used in JSON and --expect
 * ("established", "fin_wait2", "close_wait", ...). */
const char *census_state_name(int state);
const char *census_state_key(int state);
/* State number for a census_state_key() or census_state_name() string, or -1. */
int census_state_parse(const char *s);
/* "retrans", "keepalive", "time_wait", "probe". */
const char *census_timer_name(enum census_timer t);

/* Adds b into a (for merging several censuses: sums, maxima of the timer expiries). */
void census_add(struct census_counts *a, const struct census_counts *b);

#endif
