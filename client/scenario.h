/* scenario: what one client connection does, and the bytes it sends.
 *
 * Every connection: connect, then messages of --size bytes (at most --pipeline of them
 * unanswered), each echo checked byte for byte; the first complete echo makes it
 * "established". Then, by scenario:
 *   echo        long-lived: sends messages until the run ends (--duration), or --messages
 *               of them without --duration; then close(). Measures round-trip time.
 *   close       churn: --messages echoes, then close(); replaced while the run lasts. The
 *               server must answer the FIN: at the end no client socket is in FIN_WAIT_2.
 *   half-close  --messages echoes; right after the last one is written, shutdown(SHUT_WR);
 *               then every echo must still arrive, then the server's FIN (FIN-to-FIN
 *               latency), then close(). Churn.
 *   reset       --messages echoes, then close() with SO_LINGER {1, 0}: an RST. Churn.
 *   idle        after the first echo, one message every --heartbeat; held until the run
 *               ends (--duration, or --hold without it), then close(). A server that
 *               closes it is a failure.
 *   silent      after the first echo, nothing; held like idle. A server that closes it
 *               (heartbeat) is counted as closed_by_server with the time it took.
 *   mixed       each connection takes one of the above by weight (--mix echo=50,...),
 *               interleaved deterministically by connection id. In a mix every scenario
 *               ends on its own (echo after --messages, idle and silent after --hold), so
 *               with --duration the mix of open connections stays what was asked.
 *   crash       --messages echoes, then the connection crashes: a delayed ACK is flushed
 *               (TCP_QUICKACK), TCP_REPAIR is switched on and the socket closed, which
 *               sends nothing, neither FIN nor RST. The host is alive but the socket is
 *               gone, so the server's next segment (keepalive probe, heartbeat close,
 *               retransmission) is answered by RST. Churn. Crash connections bind a
 *               source address of their own (--crash-source, or the last of --sources in
 *               a mix), so no other connection of the run can reuse a crashed 4-tuple,
 *               whose SYN would reset the server's stale socket early; and each binds
 *               a source port no earlier crash of the run used (client/crashport.h).
 *               Needs CAP_NET_ADMIN.
 *   vanish      the first echo, then the peer stops answering: the connection's packets
 *               are dropped both ways by nftables in the client's own network namespace
 *               (client/fault.c; never the initial one). The socket stays open, sending
 *               nothing, held like silent; then it is closed with RST (dropped too) and
 *               its drop rule removed. The client cannot see the server's close through
 *               the drop: the report says when each connection vanished, the server's
 *               side (its close reasons, or the census when it is visible) says when it
 *               noticed. The client's own --keepalive / --user-timeout still run:
 *               if they give up first, a failure (echo/ETIMEDOUT). Needs
 *               CAP_NET_ADMIN and nft.
 */
#ifndef TEARDOWN_SCENARIO_H
#define TEARDOWN_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

enum scenario {
	SCEN_ECHO,
	SCEN_CLOSE,
	SCEN_HALF_CLOSE,
	SCEN_RESET,
	SCEN_IDLE,
	SCEN_SILENT,
	SCEN_CRASH,
	SCEN_VANISH,
	SCEN_N, /* the scenarios a single connection can run */
	SCEN_MIXED = SCEN_N,
	SCEN_ALL
};

/* The largest total weight of a --mix (weights are whole numbers, e.g. percentages). */
#define MIX_MAX 1000

struct mix {
	int weight[SCEN_N];
	int total;
	uint8_t table[MIX_MAX]; /* connection id % total -> scenario */
};

const char *scenario_name(int s);
/* Scenario number for a name ("half-close"), or -1. */
int scenario_parse(const char *name);
/* idle, silent, vanish: held open until the run ends. */
int scenario_holds(int s);
/* close, half-close, reset, crash: a finished connection is replaced while --duration lasts. */
int scenario_churns(int s);
/* crash, vanish: the peer dies (needs CAP_NET_ADMIN). */
int scenario_kills(int s);

/* "echo=50,close=30,reset=20" (only connection scenarios, not mixed). 0, or -1 and a reason. */
int mix_parse(const char *spec, struct mix *m, char *err, size_t errlen);
/* Whether the mix holds scenario s (a weight above 0). */
int mix_runs(const struct mix *m, int s);
/* A mix of one scenario. */
void mix_single(struct mix *m, int s);
/* The scenario of connection `id`: a smooth weighted round robin, so any run of `total`
 * consecutive ids has exactly the weights, spread out rather than in blocks. */
int mix_pick(const struct mix *m, uint64_t id);
/* "echo=50,close=30,reset=20" back (weights > 0 only). */
void mix_format(const struct mix *m, char *buf, size_t len);

/* The bytes of message `seq` of connection `id`, from offset `off`: pseudo-random, a
 * function of (id, seq, off) alone, so a reply can be checked without keeping what was
 * sent, and bytes of another connection or message never match. */
void pattern_fill(uint64_t id, uint64_t seq, size_t off, unsigned char *buf, size_t n);
/* Number of leading bytes of buf that match; n when all do. */
size_t pattern_check(uint64_t id, uint64_t seq, size_t off, const unsigned char *buf, size_t n);

#endif
