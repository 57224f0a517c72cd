/*
 * verify: the pod table of the verify phase, as `kubectl get pod` prints it
 * in the guide (NAME READY STATUS RESTARTS AGE).
 *
 * verify_pod_rows() turns a PodList into rows {name, ready, status,
 * restarts, age, node} sorted by name: ready is "<ready containers>/<all
 * containers>", status follows kubectl (Terminating when a deletion is
 * pending, else the first waiting/terminated container reason such as
 * ErrImagePull or CrashLoopBackOff, else status.reason, else the phase),
 * restarts is the sum of restartCount, age is kubectl's human duration
 * ("45s", "2m30s", "5h", "3d", ...) of now - creationTimestamp.
 *
 * Memory: returned json_t / strings are new and owned by the caller.
 * Thread-safe.
 */
#ifndef FERRY_INSTALL_VERIFY_H
#define FERRY_INSTALL_VERIFY_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

json_t *verify_pod_rows(const json_t *pod_list, time_t now);

/* The label selectors that together find every pod of a Cilium release,
 * NULL-terminated. They use only labels every chart from 1.12 through
 * 1.21 puts on its pod templates: 1.12 sets no app.kubernetes.io/part-of
 * (agent k8s-app=cilium, operator io.cilium/app=operator + name=...,
 * hubble-relay/hubble-ui k8s-app=...); 1.13 and later add part-of and
 * app.kubernetes.io/name but keep k8s-app and io.cilium/app. */
extern const char *const verify_pod_selectors[];

/* Append to out (a JSON array) the items of pod_list that are not being
 * deleted (no metadata.deletionTimestamp: the previous revision's pods
 * after an upgrade) and whose name is not in out yet (one pod may match
 * two selectors). Returns how many terminating pods were left out. */
size_t verify_collect_pods(json_t *out, const json_t *pod_list);

/* Rows whose status is Running (ready or not). */
long verify_running_count(const json_t *rows);

/* The rows as an aligned text table with the kubectl header. */
char *verify_table_text(const json_t *rows);

/* Count rows whose ready column is complete ("n/n" with n > 0) and whose
 * status is Running; *total gets the row count. */
long verify_ready_count(const json_t *rows, long *total);

/* kubectl's HumanDuration for seconds (negative -> "<invalid>"). */
void verify_human_duration(long long seconds, char *buf, size_t len);

/* Parse an RFC 3339 UTC timestamp "YYYY-MM-DDTHH:MM:SS[.frac]Z" (or with
 * an offset) to a time_t; -1 when it does not parse. */
time_t verify_parse_time(const char *s);

#endif
