/* crashport: the source ports of crash connections, never used twice in a run.
 *
 * A crashed socket leaves nothing behind on the client (no TIME_WAIT), so connect()
 * may hand its port to a later connection at once; that connection's SYN then reaches
 * the server's stale socket of the crash (still ESTABLISHED), the server answers with a
 * challenge ACK, our kernel with RST, and the server closes the stale socket as `reset`
 * instead of detecting the dead peer. So crash sockets bind a port chosen here, from
 * net.ipv4.ip_local_port_range, each at most once per source address and run:
 *   - the source address is --crash-source, else the connection's one of --sources, else
 *     the address the kernel routes towards the server (found once, at start);
 *   - with --procs the ports are shared out (port index % workers == worker), so workers
 *     never pick the same one; each worker starts at a random one of its share and goes
 *     round it once (so consecutive runs rarely meet each other's stale sockets);
 *   - a port whose bind() fails with EADDRINUSE (someone else holds it) is skipped;
 *   - when a worker's share of a source is used up, further crash connections from it
 *     fail in phase connect as `crash_ports` (FAIL_CRASH_PORTS) rather than reuse one;
 *   - a one-pass run (no --duration) that needs more ports than a share holds is refused
 *     at start (exit 2).
 * Crash connections of other sources, and connections of other scenarios, cannot meet a
 * crashed 4-tuple: crash in a mix has a source address of its own (options.c). */
#ifndef TEARDOWN_CRASHPORT_H
#define TEARDOWN_CRASHPORT_H

#include "options.h"
#include "plan.h"

#include <stdint.h>
#include <sys/socket.h>

/* What the workers need from the parent's preparation: found once before they start,
 * handed to each (through struct driver_params), read-only after. */
struct crashport_plan {
	uint32_t range_lo, range_n; /* net.ipv4.ip_local_port_range: [lo, lo + n) */
	/* The address the kernel routes from towards the server: the source of crash
	 * connections that have none of their own (no --crash-source, no --sources). */
	struct sockaddr_storage default_src;
	socklen_t default_srclen;
};

struct crashports;

/* In the parent, before the workers start (crash in the mix): reads the port range,
 * finds the default source address, and checks a one-pass run, into *cp. FAULT_READY, or
 * FAULT_REFUSED / FAULT_ERROR with the reason printed. */
int crashport_prepare(const struct client_opts *o, const struct plan *p, struct crashport_plan *cp);
/* Worker w's ports (cp from crashport_prepare). NULL when out of memory. */
struct crashports *crashport_new(const struct client_opts *o, const struct plan *p,
				 const struct crashport_plan *cp, int worker);
void crashport_free(struct crashports *p);
/* Binds crash socket fd (connection id) to its source address and an unused port.
 * 0, an errno value, or FAIL_CRASH_PORTS when this worker's share is used up. */
int crashport_bind(struct crashports *p, int fd, uint64_t id);

/* Pure parts, unit-tested. */
/* Port indices (0 .. nports-1) of worker w of n: w, w+n, w+2n, ... */
uint32_t crashport_share(uint32_t nports, int worker, int nworkers);
/* The port of the k-th use (k < share) of worker w's share of [lo, lo+nports), starting
 * at its `start`-th index. */
uint16_t crashport_port(uint32_t lo, uint32_t nports, int worker, int nworkers, uint32_t start,
			uint32_t k);

#endif
