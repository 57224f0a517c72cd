/*
 * demo: what `ferryd serve --demo` adds on top of a normal start.
 *
 * demo_setup() makes sure a tenant "demo" exists, creates a new operator
 * token for it and a platform admin token (the secrets are printed once on
 * stdout with the console URL, never logged), and, when the kubesim binary
 * is found ($KUBESIM, or tests/kubesim/kubesim beside the ferryd binary),
 * starts it with one simulated TKE cluster in data_dir/kubesim and
 * registers it as cluster "tke-demo" of the demo tenant (credentials
 * sealed like any other cluster's). demo_stop() stops kubesim.
 *
 * Memory: the struct owns its child process. Main thread only.
 */
#ifndef FERRY_DEMO_H
#define FERRY_DEMO_H

#include <stddef.h>

struct app;
struct demo;

/* console_url: what to print, e.g. "http://127.0.0.1:8080/". NULL with a
 * message in err on failure. */
struct demo *demo_setup(struct app *app, const char *console_url, char *err, size_t errlen);
void demo_stop(struct demo *d);

#endif
