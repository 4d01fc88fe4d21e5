/* reload: what a SIGHUP reload changes. The config is read again exactly as at start (the
 * -c file under common/conf.c's rules, then the command line's --set values on top) and
 * compared key by key with the running one; each key belongs to one category, documented
 * with it in conf/server.conf, conf/echo-server.1 and the README:
 *   now          applied at once, existing connections included (a deadline already armed
 *                rings at its old time once, then runs with the new value: a shorter
 *                timeout takes effect at most one old period late)
 *   new-conns    set on the listener, so only connections accepted afterwards have it
 *   workers      the parent starts or stops workers (no queue closed when growing)
 *   generation   needs new listeners or a new mode: a new generation of the server is
 *                started through the upgrade path (SIGUSR2), which reads the config itself
 */
#ifndef TEARDOWN_SERVER_RELOAD_H
#define TEARDOWN_SERVER_RELOAD_H

#include "config.h"

#include <stddef.h>

enum reload_kind {
	RELOAD_NOW = 1,
	RELOAD_NEW_CONNS = 2,
	RELOAD_WORKERS = 4,
	RELOAD_GENERATION = 8,
};

/* The category of a key by name (RELOAD_NOW for any key not named otherwise). */
enum reload_kind reload_kind_of(const char *key);
/* Lists in buf, as "key1, key2", the keys whose value differs between a and b; returns the
 * OR of their categories (0: nothing changed). */
unsigned reload_diff(const struct server_config *a, const struct server_config *b, char *buf,
		     size_t len);
/* A listen address with port 0 in next ("any free port") names the port cur already
 * has when the hosts are the same: the workers' parent writes the bound port into its
 * config, and a reload must not read that as a new address. */
void reload_keep_port(const struct server_config *cur, struct server_config *next);
/* Copies into cur every value of next that a running process applies in place (the
 * categories now and new-conns): not listen, metrics_listen, mode or workers. */
void reload_copy_live(struct server_config *cur, const struct server_config *next);

#endif
