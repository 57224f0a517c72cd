/*
 * kubesim_proc: start and stop a kubesim child process from a test.
 *
 * kubesim_proc_start() makes a temporary directory, runs kubesim there as a
 * child process (binary from $KUBESIM, else $FERRY_BUILD/tests/kubesim/kubesim,
 * else "kubesim" on PATH), waits (up to 20 s) for DIR/kubesim.json and reads
 * the port and admin token from it. kubesim_proc_stop() sends SIGTERM, waits,
 * and removes the directory. The child gets SIGTERM if the test process
 * dies first (PR_SET_PDEATHSIG), so a crash leaves no kubesim behind.
 * Returned strings are owned by the struct unless
 * said otherwise. Not thread-safe: use one kubesim_proc from one thread.
 */
#ifndef KUBESIM_PROC_H
#define KUBESIM_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct kubesim_opts {
	int clusters;              /* c1..cN; 0 means 1 unless named clusters given */
	const char *scenario;      /* default "tke-fresh" */
	const char *named[16];     /* extra "NAME=SCENARIO" entries, NULL-terminated */
	int ready_delay_ms;        /* 0: kubesim's default (200) */
	int tick_ms;               /* 0: default (50) */
	const char *extra_args[8]; /* more command-line arguments, NULL-terminated */
};

struct kubesim_proc {
	pid_t pid;
	int port;
	char dir[256];             /* the temporary directory */
	char admin_token[128];
	char ca_path[300];         /* DIR/ca.crt */
};

/* Start kubesim; NULL on failure with a message in err. */
struct kubesim_proc *kubesim_proc_start(const struct kubesim_opts *opts, char *err, size_t errlen);

/* Path of DIR/<cluster>/kubeconfig (static buffer in the struct-less
 * helper: copy it before the next call). */
const char *kubesim_proc_kubeconfig(struct kubesim_proc *ks, const char *cluster);

/* "https://127.0.0.1:PORT/clusters/<cluster>", malloc'd (caller frees). */
char *kubesim_proc_server_url(const struct kubesim_proc *ks, const char *cluster);

/* Contents of DIR/<cluster>/<file> (e.g. "token"), malloc'd, NULL if missing. */
char *kubesim_proc_read(const struct kubesim_proc *ks, const char *cluster, const char *file);

/* Call the admin API: method, path ("/_sim/…"), optional JSON body. Sets
 * *status and *body (malloc'd, caller frees; may pass NULL). Returns 0 when
 * the HTTP exchange worked, -1 otherwise. */
int kubesim_proc_admin(const struct kubesim_proc *ks, const char *method, const char *path,
		       const char *json_body, long *status, char **body);

/* Stop (SIGTERM, then SIGKILL after 10 s), remove the directory, free ks.
 * Returns kubesim's exit status (0 on a clean stop), -1 if killed. */
int kubesim_proc_stop(struct kubesim_proc *ks);

#endif
