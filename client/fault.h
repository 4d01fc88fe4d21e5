/* fault: what the dead-peer scenarios (crash, vanish) need outside their connections.
 *
 * crash needs CAP_NET_ADMIN (TCP_REPAIR). vanish needs CAP_NET_ADMIN, the nft command and
 * a network namespace other than the initial one: the client drops packets only of its
 * own connections, and never in the host's namespace (/proc/self/ns/net must differ from
 * /proc/1/ns/net, or from kthreadd's where pid 1's cannot be read). Before a run, fault_prepare()
 * checks that (fault_check, fault_prepare) and, for vanish, creates one nftables table for the run,
 * load_client_PID (PID of the process that made it):
 *
 *   table inet load_client_PID {
 *     counter from_server {}  counter to_server {}
 *     set dead { type ipv4_addr . inet_service }        (ipv6_addr for an IPv6 server)
 *     chain output { type filter hook output priority filter; policy accept;
 *       ip daddr SERVER tcp dport PORT ip saddr . tcp sport @dead counter name to_server drop }
 *     chain input  { type filter hook input priority filter; policy accept;
 *       ip saddr SERVER tcp sport PORT ip daddr . tcp dport @dead counter name from_server drop }
 *   }
 *
 * A connection vanishes when its local (address . port) joins the set; once its socket
 * is closed it leaves the set, before its slot opens another connection (which could get
 * the same port). Workers of --procs share the table. It is deleted at the end of the run
 * by the process that made it (fault_teardown), also after a second signal; a client
 * killed with SIGKILL leaves it behind: `nft delete table inet load_client_PID`, or delete
 * the namespace. */
#ifndef TEARDOWN_FAULT_H
#define TEARDOWN_FAULT_H

#include "options.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for one set element: "ADDRESS . PORT". */
#define FAULT_ELEM_MAX 64

/* Outcomes of fault_prepare(), which are also the exit status of the run. */
enum { FAULT_READY = 0, FAULT_ERROR = 1, FAULT_REFUSED = 2, FAULT_SKIPPED = 3 };

/* Checks what the run's mix needs first (crash and vanish: CAP_NET_ADMIN). FAULT_READY, or
 * FAULT_SKIPPED with "skipped: needs CAP_NET_ADMIN" printed. Nothing to do without crash
 * or vanish. The crash ports are prepared next (crashport_prepare), then vanish's table. */
int fault_check(const struct client_opts *o);
/* For vanish, checks and sets up the drop table. FAULT_READY, or the reason is printed:
 * FAULT_SKIPPED (no nft), FAULT_REFUSED (the initial network namespace), FAULT_ERROR (nft
 * failed). Nothing to do without vanish. */
int fault_prepare(const struct client_opts *o);
/* Deletes the table, when this process made it; anything else is a no-op. Safe to call
 * more than once, and from a signal callback before _exit(). */
void fault_teardown(void);
/* While the table exists, SIGINT and SIGTERM are blocked wherever the program has no
 * handler of its own for them (before and after the event loops), so that a signal there
 * cannot kill the process between making the table and deleting it: a pending one is
 * taken by the loop's handler once it is installed, or by the default action once the
 * table is gone. fault_signals(0) from a loop that handles them, fault_signals(1) before
 * it stops handling them. No-op without a table. */
void fault_signals(int blocked);

/* The set element of a connected socket (its local address and port), into buf of
 * FAULT_ELEM_MAX. 0, or -1 with errno. */
int fault_element(int fd, char *buf, size_t len);
/* One nft transaction: adds elements (the connections vanish) and deletes others. 0, or
 * -1 (nft's own message went to stderr). */
int fault_update(char *const *add, size_t nadd, char *const *del, size_t ndel);
/* Packets the drop rules discarded so far. 0, or -1. */
int fault_counters(uint64_t *from_server, uint64_t *to_server);

/* Pure parts, unit-tested. */
/* 0 when the network namespace file `self` is not the initial namespace: it differs
 * from the first readable of refs (files of the initial namespace), and it does not have
 * the initial namespace's fixed inode number. -1 with a reason when it is, or when no
 * reference can be read. */
int fault_netns_differs(const char *self, const char *const *refs, size_t nrefs, char *why,
			size_t len);
/* The script that (re)creates table `table` for the server address sa. Its length, or -1
 * when it does not fit or the family is not IPv4/IPv6. */
int fault_table_script(char *buf, size_t len, const char *table, const struct sockaddr *sa);
/* "packets N" of `nft list counter` output. 0, or -1. */
int fault_parse_packets(const char *text, uint64_t *packets);

#endif
