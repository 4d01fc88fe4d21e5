/* params: what one server process starts with besides its config (server_init). */
#ifndef TEARDOWN_SERVER_PARAMS_H
#define TEARDOWN_SERVER_PARAMS_H

#include "kstat.h"

struct slots;

/* What one server process starts with besides its config, given to server_init: by main.c
 * for a lone server, by workers.c for each worker (the parent fills the shared part before
 * forking). Nothing about a process's start is set beforehand in a file-scope variable. */
struct server_params {
	const char *port_file;	       /* --port-file: "PORT\n" once listening; NULL: none */
	const char *metrics_port_file; /* --metrics-port-file, likewise for /metrics */
	int reuseport;		       /* several workers share the port */
	int worker;		       /* this worker's index (0 serves /metrics); 0 alone */
	struct slots *slots;	       /* the workers' shared figures; NULL without workers */
	int metrics_fd;		       /* the /metrics listener the workers' parent opened; -1 alone */
	int have_kbase;		       /* kbase holds the kernel counters at the parent's start */
	struct kstat kbase;	       /* (the baseline of /metrics' kernel deltas) */
	/* A worker: the signal the kernel sends it when its supervisor dies (workers.c asks
	 * for it with PR_SET_PDEATHSIG): a drain, never a "second signal"; 0 alone. */
	int parent_death_signal;
};

#endif
