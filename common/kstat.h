/* kstat: the kernel's own TCP counters, read from /proc/net: TcpExt lines of
 * /proc/net/netstat (aborts, TIME_WAIT overflow, listen overflows and drops) and the TCP
 * line of /proc/net/sockstat (sockets in use, orphans, TIME_WAIT, allocated, memory).
 *
 * These are per network namespace, not per process: every process of the namespace adds to
 * the TcpExt counters. Of the sockstat line only inuse and tw are the namespace's; orphan,
 * alloc and mem are the kernel's global counts (the whole host), and the limits they are
 * compared with (tcp_max_orphans, tcp_mem) are host-wide sysctls that a namespace other
 * than the initial one cannot read. The server (since it started) and the load client
 * (over a run) report the TcpExt counters as deltas and the sockstat figures as they are.
 *
 * The two files are opened once (kstat_open) and re-read with pread() at offset 0, which
 * makes the kernel generate them afresh (seq_file), so a read still works at the fd limit. */
#ifndef TEARDOWN_KSTAT_H
#define TEARDOWN_KSTAT_H

#include <stddef.h>
#include <stdint.h>

enum kstat_counter {
	KSTAT_ABORT_ON_CLOSE = 0, /* TCPAbortOnClose: closed with unread data, RST sent */
	KSTAT_ABORT_ON_DATA,	  /* TCPAbortOnData: data after close(), RST sent */
	KSTAT_ABORT_ON_TIMEOUT,	  /* TCPAbortOnTimeout: retransmissions or probes gave up */
	KSTAT_ABORT_ON_MEMORY,	  /* TCPAbortOnMemory: orphans over the limit or out of memory */
	KSTAT_TIME_WAIT_OVERFLOW, /* TCPTimeWaitOverflow: tcp_max_tw_buckets reached */
	KSTAT_LISTEN_OVERFLOWS,	  /* ListenOverflows: accept queue full */
	KSTAT_LISTEN_DROPS,	  /* ListenDrops: SYNs dropped at a listener (any reason) */
	KSTAT_NCOUNTERS
};

enum kstat_sockstat {
	KSTAT_TCP_INUSE = 0, /* TCP sockets in use (not TIME_WAIT) */
	KSTAT_TCP_ORPHAN,    /* closed by their process, still held by the kernel */
	KSTAT_TCP_TW,	     /* TIME_WAIT */
	KSTAT_TCP_ALLOC,     /* allocated (including orphans and not yet accepted ones) */
	KSTAT_TCP_MEM,	     /* pages of TCP buffer memory */
	KSTAT_NSOCKSTAT
};

struct kstat {
	unsigned tcpext_found; /* bit i: counter i was present */
	uint64_t tcpext[KSTAT_NCOUNTERS];
	unsigned sockstat_found;
	uint64_t sockstat[KSTAT_NSOCKSTAT];
};

/* The host-wide limits the sockstat figures meet: net.ipv4.tcp_max_orphans (orphans beyond
 * it are reset: TCPAbortOnMemory) and the three pages thresholds of net.ipv4.tcp_mem. */
enum kstat_limit {
	KSTAT_MAX_ORPHANS = 0, /* tcp_max_orphans */
	KSTAT_MEM_LOW,	       /* tcp_mem[0]: below it TCP memory is not regulated */
	KSTAT_MEM_PRESSURE,    /* tcp_mem[1]: memory pressure from here */
	KSTAT_MEM_HIGH,	       /* tcp_mem[2]: no more allocation beyond it */
	KSTAT_NLIMITS
};

struct kstat_limits {
	unsigned found; /* bit i: limit i could be read */
	uint64_t v[KSTAT_NLIMITS];
};

struct kstat_files {
	int netstat_fd; /* -1 when not available */
	int sockstat_fd;
};

/* The kernel's name ("TCPAbortOnClose") and a metric-style name ("tcp_abort_on_close"). */
const char *kstat_counter_name(enum kstat_counter c);
const char *kstat_counter_key(enum kstat_counter c);
/* "inuse", "orphan", "tw", "alloc", "mem". */
const char *kstat_sockstat_name(enum kstat_sockstat s);
/* "tcp_max_orphans", "tcp_mem_low", "tcp_mem_pressure", "tcp_mem_high". */
const char *kstat_limit_name(enum kstat_limit l);
/* The index of a kernel name ("TCPAbortOnClose", exact case), a sockstat name or a limit
 * name; -1 when it is none of them. */
int kstat_counter_parse(const char *name);
int kstat_sockstat_parse(const char *name);
int kstat_limit_parse(const char *name);

/* What happened between two reads: d's TcpExt counters are end - start (found in both; a
 * counter that went back, which a namespace's never do, counts 0), its sockstat figures
 * are those of end. */
void kstat_delta(const struct kstat *start, const struct kstat *end, struct kstat *d);

/* Parse the text of /proc/net/netstat (header line and value line per group) and of
 * /proc/net/sockstat into *k (the other half of *k is left as it is). 0, or -1 when the
 * text has no TcpExt (TCP) line or a malformed one. */
int kstat_parse_netstat(const char *text, struct kstat *k);
int kstat_parse_sockstat(const char *text, struct kstat *k);
/* The text of /proc/sys/net/ipv4/tcp_max_orphans (one number) or of tcp_mem (three,
 * tab-separated) into *l. 0, or -1 when malformed. */
int kstat_parse_max_orphans(const char *text, struct kstat_limits *l);
int kstat_parse_tcp_mem(const char *text, struct kstat_limits *l);

/* Opens both files; a file that cannot be opened is left at -1 and reported once. 0 when at
 * least one could be opened. */
int kstat_open(struct kstat_files *f);
void kstat_close(struct kstat_files *f);
/* Reads both; *k is zeroed first; what could not be read stays not found. */
void kstat_read(const struct kstat_files *f, struct kstat *k);
/* Reads the limits (zeroed first). In a network namespace other than the initial one the
 * files do not exist: nothing is found, and that is not reported. */
void kstat_read_limits(struct kstat_limits *l);

#endif
