/* workers: `workers` N > 1 runs N server processes on one port (SO_REUSEPORT), each with
 * its own listener and event_base created after fork; the parent holds no listener. */
#ifndef TEARDOWN_SERVER_WORKERS_H
#define TEARDOWN_SERVER_WORKERS_H

#include "config.h"

/* Runs until every worker has exited; returns the exit status. */
int workers_run(const struct server_config *cfg, const char *port_file);

#endif
