/* portfile: the file through which a process tells who started it which port it bound
 * (--port-file, --metrics-port-file): tests and scripts start a server on port 0 and read
 * the port from there. */
#ifndef TEARDOWN_PORTFILE_H
#define TEARDOWN_PORTFILE_H

/* Writes "PORT\n" to PATH.tmp, then renames it to PATH (rename(2) replaces atomically), so
 * a reader never sees a partial number. 0, or -1 with errno. */
int portfile_write(const char *path, int port);

#endif
