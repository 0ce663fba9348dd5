#!/usr/bin/env bash
# `make test-postgres`: deploy/dagster.yaml against a real PostgreSQL server.
#
# 1. installs PostgreSQL from Debian's packages when no server binaries are found (apt-get);
# 2. starts a throw-away server in a temp dir (initdb + pg_ctl), listening on 127.0.0.1 and a
#    socket in that dir only, password authentication (scram-sha-256), a random password;
# 3. copies deploy/dagster.yaml into a temp DAGSTER_HOME and points its DAGSTER_POSTGRES_*
#    variables at that server, as docker-compose does;
# 4. sets the `gpu` pool from NUMERAI_GPU_COUNT with the daemon's own start command;
# 5. runs tests/deploy/test_postgres.py (marked `postgres`): the training job on the `tiny`
#    simulated tournament through `numerai-pipeline train`, then checks the run, its
#    materialisations and the pool are recorded in Postgres;
# 6. stops the server and removes the temp dir, whatever happened.
#
# initdb refuses to run as root: as root, the server runs as the `postgres` user the Debian
# package creates (or `nobody`); otherwise as the current user.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PYTHON")  # the virtual environment's dagster, pytest, numerai-pipeline
started=$(date +%s)

find_pg_bin() {
    local dir
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    command -v initdb >/dev/null 2>&1 && dirname "$(readlink -f "$(command -v initdb)")" && return 0
    return 1
}

if ! PG_BIN=$(find_pg_bin); then
    echo "[test-postgres] no PostgreSQL server found: installing Debian's postgresql package"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    PG_BIN=$(find_pg_bin)
fi
echo "[test-postgres] using $("$PG_BIN/postgres" --version) from $PG_BIN"

WORK=$(mktemp -d -t numerai-test-postgres.XXXXXX)
PGDIR="$WORK/pg"
mkdir -p "$PGDIR"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    pg_user=postgres
    id -u "$pg_user" >/dev/null 2>&1 || pg_user=nobody
    chmod 0755 "$WORK"
    chown "$pg_user" "$PGDIR"
    as_pg=(runuser -u "$pg_user" --)
fi

cleanup() {
    local status=$?
    if [ -f "$PGDIR/data/postmaster.pid" ]; then
        "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    echo "[test-postgres] finished in $(($(date +%s) - started)) s (exit $status)"
}
trap cleanup EXIT

PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PASSWORD=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))')
DB_USER=dagster
DB_NAME=numerai_dagster

# The password goes through a file readable by the server's user only, removed after initdb.
(umask 077 && printf '%s\n' "$PASSWORD" >"$PGDIR/pwfile")
[ ${#as_pg[@]} -eq 0 ] || chown "$pg_user" "$PGDIR/pwfile"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$PGDIR/data" -U "$DB_USER" --pwfile="$PGDIR/pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log" 2>&1 \
    || { cat "$PGDIR/initdb.log"; exit 1; }
rm -f "$PGDIR/pwfile"
mkdir -p "$PGDIR/socket"
[ ${#as_pg[@]} -eq 0 ] || chown "$pg_user" "$PGDIR/socket"
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$PGDIR/socket" start \
    >/dev/null || { cat "$PGDIR/server.log"; exit 1; }
echo "[test-postgres] PostgreSQL on 127.0.0.1:$PORT (data in $PGDIR/data)"

export PGPASSWORD="$PASSWORD"
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$DB_USER" "$DB_NAME"

# The instance: deploy/dagster.yaml as is, its variables pointing at this server.
export DAGSTER_HOME="$WORK/dagster_home"
mkdir -p "$DAGSTER_HOME"
cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
export DAGSTER_POSTGRES_HOST=127.0.0.1
export DAGSTER_POSTGRES_PORT="$PORT"
export DAGSTER_POSTGRES_USER="$DB_USER"
export DAGSTER_POSTGRES_PASSWORD="$PASSWORD"
export DAGSTER_POSTGRES_DB="$DB_NAME"
export DAGSTER_STORAGE_DIR="$WORK/dagster_storage"
export NUMERAI_GPU_COUNT=2  # not the default of 1, so the test sees the command took effect
unset PGPASSWORD

# What the daemon runs before it starts (docker-compose.yml), against this instance.
"$BIN/dagster" instance concurrency set gpu "$NUMERAI_GPU_COUNT"

"$BIN/pytest" -q -p no:cacheprovider -m postgres \
    tests/deploy/test_postgres.py "$@"
