/* params: what one server process starts with besides its config (server_init). */
#ifndef TEARDOWN_SERVER_PARAMS_H
#define TEARDOWN_SERVER_PARAMS_H

#include "kstat.h"

struct slots;
struct config_args;
struct cwboard;

/* What one server process starts with besides its config, given to server_init: by main.c
 * for a lone server, by workers.c for each worker (the parent fills the shared part before
 * forking). Nothing about a process's start is set beforehand in a file-scope variable. */
struct server_params {
	const char *port_file;	       /* --port-file: "PORT\n" once listening; NULL: none */
	const char *metrics_port_file; /* --metrics-port-file, likewise for /metrics */
	int reuseport;		       /* several workers share the port */
	int worker;		       /* this worker's index (0 serves /metrics); 0 alone */
	struct slots *slots;	       /* the workers' shared figures; NULL without workers */
	int metrics_fd;	    /* the /metrics listener the workers' parent opened; -1 alone */
	int have_kbase;	    /* kbase holds the kernel counters at the parent's start */
	struct kstat kbase; /* (the baseline of /metrics' kernel deltas) */
	/* A listening socket for cfg->listen to serve instead of opening one: the workers'
	 * parent's (inherited), or one adopted at start; -1: open one. */
	int listen_fd;
	/* Sockets for cfg->listen adopted at start (LISTEN_FDS: an upgrade or systemd), checked
	 * against the config; the workers' parent gives them to its workers. */
	int adopted[16];
	int nadopted;
	int ready_fd; /* a new generation's ready pipe (upgrade.h); -1 */
	/* What a reload and an upgrade start from: the command line's config part (read
	 * again by a reload), the executable's path resolved at start and the arguments (a
	 * new generation is started with them). */
	const struct config_args *conf_args;
	const char *exe;
	char *const *argv;
	int control_fd;	     /* a worker's end of its parent's control socket (control.h); -1 */
	unsigned generation; /* 1, or one more than the generation that started this one */
	unsigned long long start_time_s; /* this generation's start (Unix seconds) */
	/* A worker: the signal the kernel sends it when its supervisor dies (workers.c asks
	 * for it with PR_SET_PDEATHSIG): a drain, never a "second signal"; 0 alone. */
	int parent_death_signal;
	struct cwboard *cwboard; /* worker 0's census for the others; NULL: each its own */
};

/* Start from this, never from {0}: fd 0 is a descriptor, and a zeroed listen_fd would make
 * the server serve stdin. Every descriptor is "none" (-1), the rest zero. */
#define SERVER_PARAMS_INIT                                                                         \
	{                                                                                          \
		.metrics_fd = -1, .listen_fd = -1, .ready_fd = -1, .control_fd = -1                \
	}

#endif
