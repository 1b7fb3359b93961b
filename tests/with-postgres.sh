#!/usr/bin/env bash
# Runs "$@" with a throwaway PostgreSQL cluster on 127.0.0.1 and exports its URL as
# CERTWARDEN_TEST_POSTGRES_URL. initdb refuses root, so the cluster runs as `postgres`.
# Without PostgreSQL binaries the command still runs; the PostgreSQL tests then skip
# locally and fail in CI (CI=true), see tests/conftest.py.
set -uo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "with-postgres: no PostgreSQL binaries; running without" >&2
  exec "$@"
fi
dir=$(mktemp -d /tmp/certwarden-pg.XXXXXX)
chmod 755 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
cleanup() { as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null || { echo "with-postgres: initdb failed" >&2; exit 1; }
as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off" start >/dev/null \
  || { echo "with-postgres: start failed"; cat "$dir/log"; exit 1; } >&2
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres certwarden_test
export CERTWARDEN_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/certwarden_test"
"$@"
