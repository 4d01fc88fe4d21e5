/* bin/load-client: drives teardown scenarios against a TCP echo server and counts socket
 * states on both ends. Subcommands: (none) a run, `states` a census, `merge` of --json
 * results. Exit status: 0 ok, 1 runtime failure or violated --expect, 2 usage (or vanish
 * refused in the initial network namespace), 3 an expectation that could not be checked
 * or a scenario that could not run (crash, vanish without CAP_NET_ADMIN). */
#include "census.h"
#include "expect.h"
#include "log.h"
#include "options.h"
#include "report.h"
#include "run.h"
#include "version.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- states --port P [--json] ---- */

static int states_usage(const char *why, const char *arg)
{
	log_plain("load-client states: %s%s\nusage: load-client states --port PORT [--json]\n", why,
		  arg);
	return 2;
}

static int states_print(int port, const struct census_view *local, const struct census_view *remote,
			int json)
{
	if (json) {
		struct jw w;
		const char *text;
		jw_init(&w);
		jw_obj(&w, NULL);
		jw_u64(&w, "port", (uint64_t)port);
		report_census_json(&w, "local", local);
		report_census_json(&w, "remote", remote);
		jw_obj_end(&w);
		text = jw_finish(&w);
		if (text == NULL) {
			jw_free(&w);
			log_error("states: out of memory");
			return 1;
		}
		printf("%s\n", text);
		jw_free(&w);
	} else {
		char title[128];
		snprintf(title, sizeof(title), "port %d, local side (listeners, accepted sockets)",
			 port);
		report_census_table(stdout, title, local, "nothing listens on the port");
		snprintf(title, sizeof(title), "port %d, remote side (clients of the port)", port);
		report_census_table(stdout, title, remote, NULL);
		printf("census took %.2f ms\n",
		       (double)(local->c.elapsed_us + remote->c.elapsed_us) / 1000.0);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_states(int argc, char **argv)
{
	struct census_view local = {.visible = 1}, remote = {.visible = 1};
	struct census_sock *cs;
	int port = -1, json = 0, rc;

	for (int i = 2; i < argc; i++) {
		const char *val = NULL;
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			val = argv[++i];
		else if (strncmp(argv[i], "--port=", 7) == 0)
			val = argv[i] + 7;
		else
			return states_usage("unexpected argument ", argv[i]);
		if (val != NULL && (port = options_parse_port(val)) < 0)
			return states_usage("--port: " OPTIONS_PORT_RULE ", not ", val);
	}
	if (port < 0)
		return states_usage("--port PORT is required", "");
	cs = census_open();
	if (cs == NULL) {
		log_error("census: netlink socket: %s", strerror(errno));
		return 1;
	}
	rc = census_port(cs, port, CENSUS_LOCAL, &local.c);
	if (rc == 0)
		rc = census_port(cs, port, CENSUS_REMOTE, &remote.c);
	if (rc < 0) {
		log_error("census of port %d: sock_diag: %s", port, strerror(errno));
		census_close(cs);
		return 1;
	}
	census_close(cs);
	return states_print(port, &local, &remote, json);
}

int main(int argc, char **argv)
{
	struct client_opts *o;
	int rc;

	/* Before any open: with fd 2 closed, the first socket would become fd 2 and receive
	 * every log line. Nothing can be said if this fails. */
	if (log_std_fds() < 0)
		return 1;
	log_init("load-client", LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && strcmp(argv[1], "states") == 0)
		return cmd_states(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "merge") == 0)
		return run_merge(argc, argv);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			options_usage(); /* anywhere on the line, as one adds it to a failed one */
			return fflush(stdout) == 0 ? 0 : 1;
		}
	}
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		log_plain("load-client %s\n", TEARDOWN_VERSION);
		return 0;
	}
	o = malloc(sizeof(*o));
	if (o == NULL) {
		log_error("out of memory");
		return 1;
	}
	if (options_parse(o, argc, argv) < 0) {
		free(o);
		return 2;
	}
	rc = run_main(o);
	free(o);
	return rc;
}
