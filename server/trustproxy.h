/*
 * trustproxy: which peers may speak for the client (--trusted-proxy), and
 * what a request's client address and scheme are.
 *
 * A TLS-terminating proxy in front of ferryd sends X-Forwarded-For (the
 * client's address, then each proxy's) and X-Forwarded-Proto (the scheme
 * the client used). Those headers are believed only from a peer inside one
 * of the configured CIDRs; from anyone else they are ignored, so a client
 * cannot claim another address or claim HTTPS over plain HTTP.
 *
 * Memory: trustproxy_parse() returns a list the caller frees with
 * trustproxy_free(). Thread-safety: a parsed list is read-only and may be
 * shared by any number of threads.
 */
#ifndef FERRY_TRUSTPROXY_H
#define FERRY_TRUSTPROXY_H

#include <stddef.h>
#include <sys/socket.h>

struct trustproxy;

/* "10.0.0.0/8,fd00::/8,192.0.2.7" (a bare address is one host). NULL list
 * or "" = trust nobody (returns an empty list). NULL + reason in err for a
 * malformed entry. */
struct trustproxy *trustproxy_parse(const char *list, char *err, size_t errlen);
void trustproxy_free(struct trustproxy *tp);
/* Number of CIDRs in the list. */
int trustproxy_count(const struct trustproxy *tp);
/* 1 if the textual or socket address is inside the list (IPv4-mapped IPv6
 * addresses count as IPv4). */
int trustproxy_contains_text(const struct trustproxy *tp, const char *ip);
int trustproxy_contains(const struct trustproxy *tp, const struct sockaddr *sa);

/* The request's client address (text, into ip[46]) and whether the client
 * used HTTPS (*secure): tls = ferryd itself terminated TLS. From a trusted
 * peer, the client is the right-most X-Forwarded-For entry that is not a
 * trusted proxy, and X-Forwarded-Proto's last value decides the scheme;
 * otherwise the peer is the client and only tls counts. xff, proto may be
 * NULL; peer NULL gives "" and the tls flag. */
void trustproxy_client(const struct trustproxy *tp, const struct sockaddr *peer,
		       const char *xff, const char *proto, int tls, char ip[46], int *secure);

#endif
