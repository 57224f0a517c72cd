/*
 * sdnotify: systemd's readiness notification (sd_notify(3)) without
 * libsystemd.
 *
 * The protocol is one datagram of newline-separated "KEY=value" lines sent
 * to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the
 * Linux abstract namespace). systemd sets the variable for units with
 * Type=notify; elsewhere it is unset and every call is a no-op. Linking
 * libsystemd for one sendto() was not worth a dependency: the datagram
 * format is stable and documented in sd_notify(3).
 *
 * ferryd sends "READY=1" once the HTTP listener is accepting and the
 * workers run, and "STOPPING=1" when shutdown begins.
 *
 * Thread-safe (no shared state); nothing to free.
 */
#ifndef FERRY_SDNOTIFY_H
#define FERRY_SDNOTIFY_H

/* Sends state (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET.
 * Returns 1 sent, 0 no socket configured, -1 on an error (errno set; the
 * caller logs it: a failed notification is not fatal). */
int sd_notify_send(const char *state);

#endif
