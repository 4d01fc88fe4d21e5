/* version: the one version string of the package, shown by `--version` of both binaries
 * and in their man pages (conf/echo-server.1, conf/load-client.1; a test checks they
 * agree). Bump it here only. */
#ifndef TEARDOWN_VERSION_H
#define TEARDOWN_VERSION_H

#define TEARDOWN_VERSION "0.1.0"

#endif
