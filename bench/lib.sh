# bench/lib.sh: the start-up the benchmark scripts share (sourced, not run).
#
#   bench_env BUILD_DIR      exports FERRY_SRC, FERRY_BUILD, FERRY_SHARED and
#                            PATH (ferryd, ferry, kubesim first) for the
#                            Python drivers; sets $src and $build
#   bench_postgres NAME [PG_OPTS]
#                            unless FERRY_TEST_PG_ADMIN_URL is set (then that
#                            server is measured): a throw-away PostgreSQL in
#                            /tmp/NAME-pg.XXXXXX on a Unix socket only,
#                            max_connections 300 plus PG_OPTS (e.g. "-c
#                            fsync=off"), a database ferry_bench, and
#                            FERRY_TEST_DATABASE_URL / FERRY_TEST_PG_ADMIN_URL
#                            exported; stopped and removed when the script
#                            exits. As root it runs as the postgres user.

bench_env() {
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  build=$(cd "${1:-$src/build}" && pwd)
  export FERRY_SRC=$src FERRY_BUILD=$build
  export FERRY_SHARED=${FERRY_SHARED:-$(cd "$src/.." && pwd)/shared}
  export PATH=$build:$build/tests/kubesim:$PATH
}

bench_pgdir=""
bench_pg_as=""
bench_pg_bin=""
bench_postgres_stop() {
  if [ -n "$bench_pgdir" ]; then
    $bench_pg_as "$bench_pg_bin/pg_ctl" -D "$bench_pgdir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$bench_pgdir"
  fi
}

bench_postgres() {
  [ -z "${FERRY_TEST_PG_ADMIN_URL:-}" ] || return 0
  trap bench_postgres_stop EXIT
  bench_pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  bench_pgdir=$(mktemp -d "/tmp/$1-pg.XXXXXX")
  chmod 755 "$bench_pgdir"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$bench_pgdir"
    bench_pg_as="runuser -u postgres --"
  fi
  $bench_pg_as "$bench_pg_bin/initdb" -D "$bench_pgdir/data" -U postgres -A trust >/dev/null
  $bench_pg_as "$bench_pg_bin/pg_ctl" -D "$bench_pgdir/data" -l "$bench_pgdir/server.log" -w -o \
    "-c listen_addresses='' -c unix_socket_directories=$bench_pgdir -c max_connections=300 ${2:-}" \
    start >/dev/null
  "$bench_pg_bin/createdb" -h "$bench_pgdir" -U postgres ferry_bench
  export FERRY_TEST_DATABASE_URL="postgresql:///ferry_bench?host=$bench_pgdir&user=postgres"
  export FERRY_TEST_PG_ADMIN_URL="postgresql:///postgres?host=$bench_pgdir&user=postgres"
}
