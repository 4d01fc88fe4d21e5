/* sdnotify: systemd's readiness protocol (sd_notify(3)), written here rather than linking
 * libsystemd: it is one datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace), and the server must
 * run without systemd too.
 *
 * Without NOTIFY_SOCKET every call does nothing and returns 0. A send never blocks the
 * event loop (MSG_DONTWAIT: a receiver whose queue is full costs this message, reported
 * as -1 with errno EAGAIN, never a stall). */
#ifndef TEARDOWN_SDNOTIFY_H
#define TEARDOWN_SDNOTIFY_H

#include <stdint.h>
#include <sys/types.h>

/* Sends the lines of msg ("READY=1\nSTATUS=..."). 0 (also when not under systemd), or
 * -1 with errno. */
int sdnotify_send(const char *msg);
/* printf-style sdnotify_send. */
int sdnotify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 1 when NOTIFY_SOCKET is set (a reader may want to say it is under systemd). */
int sdnotify_enabled(void);

int sdnotify_ready(void);
/* RELOADING=1 with MONOTONIC_USEC (systemd 253+ checks it; 252 ignores it). */
int sdnotify_reloading(void);
int sdnotify_stopping(void);
/* MAINPID=pid: the process systemd should watch from now on (an upgrade's new master). */
int sdnotify_mainpid(pid_t pid);
/* EXTEND_TIMEOUT_USEC: the stop (or start) may take us longer from now on. */
int sdnotify_extend_timeout(uint64_t usec);

#endif
