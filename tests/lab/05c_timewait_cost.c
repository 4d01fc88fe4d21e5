/* Claim 5c: a TIME_WAIT socket holds resources the kernel does not release (so a server
 * should avoid closing first).
 *
 * What a TIME_WAIT socket is on Linux: a small inet_timewait_sock (slab tw_sock_TCP)
 * that replaces the full socket (slab TCP) when the state is entered (tcp_time_wait()),
 * with no file descriptor and no buffers. Their number per namespace is capped by
 * net.ipv4.tcp_max_tw_buckets: above it tcp_time_wait() skips TIME_WAIT and destroys the
 * socket (TCPTimeWaitOverflow). The cap is set in this namespace only and the count is
 * taken with sock_diag. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID "5c"
#define CLAIM                                                                                      \
	"TIME_WAIT sockets hold resources the kernel does not release, so a server should avoid "  \
	"closing first"
#define BATCH 8
#define CAP   10

/* One active close that ends in TIME_WAIT (unless the cap says otherwise); returns once
 * the close has finished, so the closer is then in TIME_WAIT or gone. */
static int one_time_wait(uint16_t *sport, uint16_t *dport)
{
	struct lab_pair p;
	int rc = -1;

	if (lab_pair_open(&p, "127.0.0.1", 0, 0) < 0)
		return -1;
	*sport = p.pa;
	*dport = p.pb;
	lab_close(&p.a);
	if (lab_wait_eof(p.b, 2000) < 0)
		goto out;
	rc = 0;
out:
	lab_pair_close(&p);
	return rc < 0 ? -1 : lab_wait_closed(*sport, *dport, 2000);
}

/* A field of /proc/net/netstat (this namespace's: /proc/thread-self/net). */
static long netstat(const char *key)
{
	char names[4096], values[4096], *n, *v, *sn, *sv;
	FILE *f = fopen("/proc/thread-self/net/netstat", "r");
	long r = -1;

	if (!f)
		return lab_sysfail("fopen(/proc/thread-self/net/netstat)");
	while (fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f)) {
		n = strtok_r(names, " \n", &sn);
		v = strtok_r(values, " \n", &sv);
		for (; n && v; n = strtok_r(NULL, " \n", &sn), v = strtok_r(NULL, " \n", &sv))
			if (strcmp(n, key) == 0)
				r = strtol(v, NULL, 10);
	}
	fclose(f);
	return r;
}

/* objsize column of /proc/slabinfo for one cache; 0 when absent (merged caches). */
static long slab_objsize(const char *cache)
{
	char line[512], name[64];
	long active, num, objsize, r = 0;
	FILE *f = fopen("/proc/slabinfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld %ld %ld", name, &active, &num, &objsize) == 4 &&
		    strcmp(name, cache) == 0)
			r = objsize;
	fclose(f);
	return r;
}

static int batch(int n, int *tw, long *overflow, struct lab_diag *first)
{
	long before = netstat("TCPTimeWaitOverflow");
	uint16_t sport, dport;

	for (int i = 0; i < n; i++) {
		if (one_time_wait(&sport, &dport) < 0)
			return -1;
		if (i == 0 && lab_diag_find(sport, dport, first) < 0)
			return -1;
	}
	*tw = lab_diag_count(LAB_TIME_WAIT);
	*overflow = netstat("TCPTimeWaitOverflow") - before;
	return *tw < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct lab_str s = {0};
	struct lab_diag d1, d2;
	int tw1, tw2, capped;
	long of1, of2, def, tw_size, tcp_size;

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_sysctl_get("net/ipv4/tcp_max_tw_buckets", &def) < 0)
		return lab_err("setup");
	if (batch(BATCH, &tw1, &of1, &d1) < 0)
		return lab_err("first batch");
	if (lab_sysctl_set("net/ipv4/tcp_max_tw_buckets", CAP) < 0 ||
	    batch(BATCH, &tw2, &of2, &d2) < 0)
		return lab_err("second batch");
	tw_size = slab_objsize("tw_sock_TCP");
	tcp_size = slab_objsize("TCP");
	lab_add(&s,
		"%d active closes with tcp_max_tw_buckets=%ld: %d TIME_WAIT sockets "
		"(overflow counter +%ld); %d more with the cap set to %d: %d in TIME_WAIT "
		"(TCPTimeWaitOverflow +%ld: the rest were destroyed at once). ",
		BATCH, def, tw1, of1, BATCH, CAP, tw2, of2);
	lab_add(&s,
		"Each is a %ld-byte tw_sock_TCP object (a full TCP socket: %ld bytes); "
		"sock_diag shows %s, inode %u (%s), timer %.0f s left.",
		tw_size, tcp_size, lab_state_name(d1.state), d1.inode,
		d1.inode ? "a file refers to it" : "no file descriptor", d1.expires_ms / 1e3);
	capped = tw1 == BATCH && tw2 == CAP && of2 == 2 * BATCH - CAP;
	lab_row(ID, CLAIM, capped ? LAB_NUANCE : LAB_AGREES,
		capped ? "a small fd-less struct until its timer fires, capped by "
			 "tcp_max_tw_buckets; the real cost is the 4-tuple it reserves (see 5d)"
		       : NULL,
		s.s);
	return 0;
}
