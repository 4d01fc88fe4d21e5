/* deadpeer: the mechanics of the dead-peer scenarios inside a worker's loop (the checks and
 * the nftables table before the run are fault.c's, the crash ports crashport.c's).
 *
 * crash: the socket disappears without a word. The last echo's ACK may still be delayed;
 * left unsent, the server would hold unacknowledged data and its first retransmission,
 * rather than the mechanism under test, would meet the RST: TCP_QUICKACK sends it first.
 * Then close() in repair mode (TCP_REPAIR) sends nothing at all.
 *
 * vanish: a connection vanishes when its element (local address . port) joins the drop
 * set, and leaves the set once its socket is closed. Every request made in one loop
 * iteration goes into one nft transaction (fault_update), made from the next iteration;
 * its outcome is handed to the batch's callback with the requesters' cookies. Requests made
 * while the callback runs go to the next transaction. */
#ifndef TEARDOWN_DEADPEER_H
#define TEARDOWN_DEADPEER_H

#include <event2/event.h>
#include <stddef.h>

/* Makes fd's close() a crash: its delayed ACK sent, then repair mode, in which close()
 * sends nothing. 0, or -1 with errno. */
int deadpeer_crash(int fd);

/* The outcome of one transaction: the cookies of the elements that joined the set and of
 * those that left it, in the order they asked; ok 0 when nft failed (none changed). */
typedef void (*deadpeer_done_fn)(void *arg, void *const *joined, size_t njoined, void *const *left,
				 size_t nleft, int ok);

struct deadpeer_batch;

/* At most max requests pending at once (one per connection slot). NULL when out of memory. */
struct deadpeer_batch *deadpeer_batch_new(struct event_base *base, size_t max,
					  deadpeer_done_fn done, void *arg);
void deadpeer_batch_free(struct deadpeer_batch *b);
/* elem (fault_element's text) must stay valid until the callback has run. */
void deadpeer_join(struct deadpeer_batch *b, char *elem, void *cookie);
void deadpeer_leave(struct deadpeer_batch *b, char *elem, void *cookie);

#endif
