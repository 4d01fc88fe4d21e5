/* run: one load-client run from parsed options to exit status, and `merge`. */
#ifndef TEARDOWN_RUN_H
#define TEARDOWN_RUN_H

#include "options.h"

/* Exit status: 0 ok, 1 runtime failure or violated expectation, 2 usage (a check
 * before starting failed), 3 an expectation could not be checked. */
int run_main(const struct client_opts *o);
/* `load-client merge A.json B.json ... [--json] [--expect KEY=VALUE ...]`. */
int run_merge(int argc, char **argv);

#endif
