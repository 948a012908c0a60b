# shellcheck shell=bash
# Throw-away PostgreSQL server for tests. Source this file, then:
#
#   pg_start            # initdb + start on a free loopback port; exports
#                       #   SIGHTLINE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres
#                       #   SIGHTLINE_REQUIRE_POSTGRES=1, and SIGHTLINE_TEST_POSTGRES_TLS=1 when
#                       #   the server speaks TLS (a self-signed certificate made with openssl;
#                       #   PG_TLS=0 turns it off)
#   trap pg_stop EXIT   # stop the server (immediate) and remove its temp dir
#
# Needs Debian's postgresql package (binaries in /usr/lib/postgresql/*/bin).
# As root, the cluster runs as the `postgres` user; otherwise as the caller.

PG_BINDIR="${PG_BINDIR:-}"
PG_TMPDIR="${PG_TMPDIR:-}"
PG_PORT="${PG_PORT:-}"

_pg_log() { echo "[postgres] $*" >&2; }

# Run a command as the cluster owner, from a directory it can read.
_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd "$PG_TMPDIR" && runuser -u postgres -- "$@")
  else
    (cd "$PG_TMPDIR" && "$@")
  fi
}

_pg_find_bindir() {
  local d
  if [ -n "$PG_BINDIR" ] && [ -x "$PG_BINDIR/pg_ctl" ]; then return 0; fi
  PG_BINDIR=""
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then PG_BINDIR="$d"; fi
  done
  if [ -z "$PG_BINDIR" ]; then
    _pg_log "no PostgreSQL binaries found in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    return 1
  fi
}

# Print a loopback TCP port that nothing listens on right now.
_pg_free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' && return 0
  fi
  if command -v node >/dev/null 2>&1; then
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});' && return 0
  fi
  # Fallback: random high port that refuses connections.
  local p
  while :; do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
}

pg_start() {
  _pg_find_bindir || return 1
  PG_TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/sightline-pg.XXXXXX")"
  if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
      _pg_log "user 'postgres' does not exist (install the postgresql package)"
      return 1
    fi
    chown postgres:postgres "$PG_TMPDIR"
  fi
  chmod 700 "$PG_TMPDIR"

  _pg_log "initdb ($PG_BINDIR) in $PG_TMPDIR/data"
  if ! _pg_as_owner "$PG_BINDIR/initdb" -D "$PG_TMPDIR/data" -A trust -U postgres \
      -E UTF8 --locale=C --no-sync >"$PG_TMPDIR/initdb.log" 2>&1; then
    _pg_log "initdb failed:"; cat "$PG_TMPDIR/initdb.log" >&2
    return 1
  fi

  # TLS with a throw-away self-signed certificate, so `sslmode=require` can be tested.
  local tls=""
  if [ "${PG_TLS:-1}" = 1 ] && command -v openssl >/dev/null 2>&1 && openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
      -subj "/CN=127.0.0.1" -keyout "$PG_TMPDIR/server.key" -out "$PG_TMPDIR/server.crt" \
      >/dev/null 2>&1; then
    chmod 600 "$PG_TMPDIR/server.key"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PG_TMPDIR/server.key" "$PG_TMPDIR/server.crt"; fi
    tls="-c ssl=on -c ssl_cert_file=$PG_TMPDIR/server.crt -c ssl_key_file=$PG_TMPDIR/server.key"
    export SIGHTLINE_TEST_POSTGRES_TLS=1
  fi

  # Tests trade durability for speed; PG_DURABLE=1 (benchmarks) keeps the server's defaults.
  local speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if [ "${PG_DURABLE:-0}" = 1 ]; then speed=""; fi
  local attempt
  for attempt in 1 2 3 4 5; do
    PG_PORT="$(_pg_free_port)"
    if _pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_TMPDIR/data" -l "$PG_TMPDIR/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_TMPDIR $speed $tls -c max_connections=200" \
        start >"$PG_TMPDIR/pg_ctl.log" 2>&1; then
      export SIGHTLINE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:${PG_PORT}/postgres"
      export SIGHTLINE_REQUIRE_POSTGRES=1
      _pg_log "running on 127.0.0.1:$PG_PORT ($("$PG_BINDIR/postgres" --version))"
      return 0
    fi
    _pg_log "start on port $PG_PORT failed (attempt $attempt); log tail:"
    tail -n 20 "$PG_TMPDIR/postgres.log" >&2 2>/dev/null || true
  done
  _pg_log "giving up starting PostgreSQL"
  return 1
}

# Idempotent; safe to call from an EXIT trap even if pg_start failed half-way.
pg_stop() {
  if [ -n "$PG_TMPDIR" ] && [ -d "$PG_TMPDIR" ]; then
    if [ -n "$PG_BINDIR" ] && [ -f "$PG_TMPDIR/data/postmaster.pid" ]; then
      _pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_TMPDIR/data" -m immediate -w stop >/dev/null 2>&1 \
        || _pg_log "pg_ctl stop failed"
    fi
    rm -rf "$PG_TMPDIR"
    _pg_log "stopped and removed $PG_TMPDIR"
  fi
  PG_TMPDIR=""
}
