/* cwboard: the CLOSE_WAIT sockets of a port shared by workers, as the one census of each
 * interval saw them, for every worker to judge its own.
 *
 * A sock_diag census makes the kernel walk every TCP socket of the network namespace,
 * whatever the filter: with each of N workers taking its own census of the shared port,
 * the cost was N walks per census_interval (workers x sockets; at 1,000,000 connections
 * on 60 workers, minutes of CPU per second). So with workers only worker 0 takes the
 * census; it posts here the CLOSE_WAIT sockets it found (cookie, inode, unread bytes, the
 * first census that saw each one), and the other workers read the board at their tick and
 * judge the ones whose inode is one of their connections.
 *
 * Memory shared by the workers' parent and every worker (MAP_SHARED, mapped before the
 * fork; MAP_NORESERVE, so only the pages a post touches are ever allocated). A seqlock:
 * the writer makes seq odd, writes, makes it even; a reader copies while seq is even and
 * unchanged, or tries again. A worker 0 that dies while posting leaves seq odd: its
 * successor's first post makes it even again, and until then readers find nothing new
 * (cwboard_read fails and they keep their last verdicts). */
#ifndef TEARDOWN_SERVER_CWBOARD_H
#define TEARDOWN_SERVER_CWBOARD_H

#include <stddef.h>
#include <stdint.h>

struct cwboard;

/* One CLOSE_WAIT socket as the census saw it. */
struct cwboard_rec {
	uint64_t cookie;  /* idiag_cookie */
	uint32_t inode;	  /* idiag_inode: st_ino of its fd; 0 when no fd refers to it */
	uint32_t rqueue;  /* unread input: echo still owed */
	int64_t first_us; /* CLOCK_MONOTONIC of the first census that saw it in CLOSE_WAIT */
};

/* A board for up to `capacity` sockets, zeroed (empty). NULL with errno. */
struct cwboard *cwboard_map(size_t capacity);
void cwboard_unmap(struct cwboard *b);
size_t cwboard_capacity(const struct cwboard *b);

/* The census taker: replaces the board's contents with v[0..n) (the first `capacity` of
 * them when n is larger; the return value says how many were posted). */
size_t cwboard_post(struct cwboard *b, const struct cwboard_rec *v, size_t n);

/* A reader: copies the board into *v (grown with realloc, *cap its size) and sets *n.
 * *gen holds the number of the post the caller read last (0: none) and becomes the
 * number of the post on the board (0: nothing posted yet); when that is the one read
 * last, nothing is copied. 0, or -1 with errno: EAGAIN when a post kept overlapping the
 * copy (or a dead writer left it half written), ENOMEM. */
int cwboard_read(struct cwboard *b, struct cwboard_rec **v, size_t *cap, size_t *n, uint64_t *gen);

#endif
