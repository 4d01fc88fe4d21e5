/* portfile: "PORT\n", written whole or not at all (see portfile.h). */
#include "portfile.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int portfile_write(const char *path, int port)
{
	char tmp[4096];
	FILE *f;
	int bad;

	/* The lines logged so far reach stderr first (the log writer is a thread): a test or
	 * a script that waits for this file then finds them. Bounded: a stderr that nobody
	 * reads delays the file by LOG_FINISH_MS at most. */
	log_flush(LOG_FINISH_MS);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	bad = fprintf(f, "%d\n", port) < 0;
	if (fclose(f) != 0 || bad) { /* closed either way: no FILE left open */
		int e = errno;

		unlink(tmp);
		errno = e;
		return -1;
	}
	return rename(tmp, path);
}
