#!/usr/bin/env bash
# bench/queue_bench.sh [BUILD_DIR] [JOBS] [WORKERS...]: the job queue against
# the raw SQL it needs (issue 14).
#
# In one run, on one PostgreSQL with default durability (fsync and
# synchronous_commit on), for each worker count (default 4 and 16):
#   1. baseline: pgbench with that many clients runs ferry's own claim and
#      complete statements, extracted from db/jobs.c (db_job_claim_fair and
#      db_job_finish), over JOBS (default 2000) queued jobs;
#   2. ferry: the same JOBS queued as preflight jobs with
#      params.connection_only (GET /version + list nodes against a kubesim
#      cluster) and run by `ferryd serve --workers N`;
# both for two shapes of queue (QUEUE_BENCH_SHAPES, default "new repeat"):
# "new", every job for another cluster (a new TLS connection and the
# cluster's CA and credentials decoded per job), and "repeat", the jobs
# cycling over QUEUE_BENCH_REPEAT_CLUSTERS (64) clusters (the per-cluster
# TLS material and keep-alive connections reused; for these runs the
# one-active-job-per-cluster index is dropped in the bench's database).
# QUEUE_BENCH_SKIP_PGBENCH=1 skips the baseline (for profiling only).
# jobs/s = jobs / (last finished_at - first started_at), from the job rows,
# for both. Also printed: commits and NOTIFYs per job, ferryd CPU ms per job
# and the wait events of PostgreSQL's busy backends (sampled every 50 ms).
# Starts its own PostgreSQL unless FERRY_TEST_PG_ADMIN_URL is set (then that
# server's settings are what is measured). Use an optimised build (./dev
# build -> build/).
set -eu
. "$(dirname "$0")/lib.sh"
bench_env "${1:-}"
shift || true
export QUEUE_BENCH_JOBS=${1:-2000}
shift || true
export QUEUE_BENCH_WORKERS=${*:-4 16}
# Default durability: only the connection limit and the socket differ.
bench_postgres queue-bench
python3 "$src/bench/queue_bench.py"
