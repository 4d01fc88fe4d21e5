/* workers: `workers` N > 1 runs N server processes on one port (SO_REUSEPORT), each with
 * its own listener and event_base created after fork; the parent holds no listener. */
#ifndef TEARDOWN_SERVER_WORKERS_H
#define TEARDOWN_SERVER_WORKERS_H

#include "config.h"

struct server_params;

/* Runs until every worker has exited; returns the exit status. params: the port files
 * (--port-file is written by the parent once every worker listens). */
int workers_run(const struct server_config *cfg, const struct server_params *params);

#endif
