#include "reload.h"

#include <stdio.h>
#include <string.h>

/* The category is the key table's (config.c, CONF_F_RELOAD_*); of the keys that need new
 * listeners or workers, `workers` alone is applied by the workers' parent in place. */
enum reload_kind reload_kind_of(const char *key)
{
	for (size_t i = 0; i < config_nkeys; i++) {
		unsigned f = config_keys[i].flags;

		if (strcmp(config_keys[i].name, key) != 0)
			continue;
		if (f & CONF_F_RELOAD_RESTART)
			return strcmp(key, "workers") == 0 ? RELOAD_WORKERS : RELOAD_GENERATION;
		return f & CONF_F_RELOAD_NEW_CONNS ? RELOAD_NEW_CONNS : RELOAD_NOW;
	}
	return RELOAD_NOW;
}

unsigned reload_diff(const struct server_config *a, const struct server_config *b, char *buf,
		     size_t len)
{
	char va[CONF_STR_MAX + 8], vb[CONF_STR_MAX + 8];
	size_t used = 0;
	unsigned kinds_changed = 0;

	if (len > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct conf_key *k = &config_keys[i];

		conf_format_value(k, a, va, sizeof(va));
		conf_format_value(k, b, vb, sizeof(vb));
		if (strcmp(va, vb) == 0)
			continue;
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s",
						 kinds_changed ? ", " : "", k->name);
		kinds_changed |= reload_kind_of(k->name);
	}
	return kinds_changed;
}

void reload_copy_live(struct server_config *cur, const struct server_config *next)
{
	struct server_config keep = *cur;

	*cur = *next;
	memcpy(cur->listen, keep.listen, sizeof(cur->listen));
	memcpy(cur->metrics_listen, keep.metrics_listen, sizeof(cur->metrics_listen));
	cur->mode = keep.mode;
	cur->workers = keep.workers;
}

void reload_keep_port(const struct server_config *cur, struct server_config *next)
{
	const char *colon = strrchr(next->listen, ':');
	size_t host = colon ? (size_t)(colon - next->listen) : 0;

	if (colon != NULL && strcmp(colon, ":0") == 0 &&
	    strncmp(cur->listen, next->listen, host + 1) == 0)
		memcpy(next->listen, cur->listen, sizeof(next->listen));
}
