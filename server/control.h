/* control: what the workers' parent tells a worker, one message per datagram on a
 * SOCK_SEQPACKET socketpair (the worker's end is params.control_fd). Workers never read the
 * config file: the parent sends the parsed config after a reload. */
#ifndef TEARDOWN_SERVER_CONTROL_H
#define TEARDOWN_SERVER_CONTROL_H

#include "config.h"

#include <stdint.h>

enum control_type {
	CONTROL_CONFIG = 'C',	/* a reload: apply cfg (its live keys) and the reload's result */
	CONTROL_HANDOVER = 'H', /* a new generation serves the listeners: stop accepting */
	CONTROL_RESUME = 'R',	/* the new generation is gone: accept again if not draining */
};

struct control_msg {
	int type;
	int reload_ok;		  /* the last reload's result (1 also when none was tried yet) */
	int64_t reload_time_ms;	  /* its wall-clock time, ms since the epoch; 0: none yet */
	struct server_config cfg; /* CONTROL_CONFIG */
};

#endif
