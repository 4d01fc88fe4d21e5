/* workers: `workers` N > 1 runs N server processes on one port: the parent opens the
 * listener and keeps it; each worker inherits it and has its own event_base, created after
 * fork. */
#ifndef TEARDOWN_SERVER_WORKERS_H
#define TEARDOWN_SERVER_WORKERS_H

#include "config.h"

struct server_params;

/* Runs until every worker has exited; returns the exit status. params: the port files
 * (--port-file is written by the parent once every worker listens). */
int workers_run(const struct server_config *cfg, const struct server_params *params);

#endif
