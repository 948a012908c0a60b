# shellcheck shell=bash
# Throw-away Redis server for tests (Debian's redis-server). Source this file, then:
#
#   redis_start         # start redis-server on a free loopback port in a temp dir, no
#                       #   persistence; exports SIGHTLINE_TEST_REDIS_URL=redis://127.0.0.1:PORT
#   trap redis_stop EXIT
#
# The package's own service is not used: the server runs as the caller.

REDIS_TMPDIR="${REDIS_TMPDIR:-}"
REDIS_PID="${REDIS_PID:-}"

_redis_log() { echo "[redis] $*" >&2; }

redis_start() {
  local server=/usr/bin/redis-server
  if [ ! -x "$server" ]; then
    _redis_log "no $server (apt-get install redis-server)"
    return 1
  fi
  REDIS_TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/sightline-redis.XXXXXX")"
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  "$server" --bind 127.0.0.1 --port "$port" --dir "$REDIS_TMPDIR" --save "" --appendonly no \
    --logfile "$REDIS_TMPDIR/server.log" --daemonize no >/dev/null 2>&1 &
  REDIS_PID=$!
  local i
  for i in $(seq 1 100); do
    if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
      export SIGHTLINE_TEST_REDIS_URL="redis://127.0.0.1:$port"
      _redis_log "running on 127.0.0.1:$port ($("$server" --version | cut -d' ' -f3))"
      return 0
    fi
    if ! kill -0 "$REDIS_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  _redis_log "did not start; its log:"
  tail -n 20 "$REDIS_TMPDIR/server.log" 2>/dev/null >&2 || true
  return 1
}

redis_stop() {
  if [ -n "$REDIS_PID" ]; then
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$REDIS_PID" 2>/dev/null || true
  fi
  if [ -n "$REDIS_TMPDIR" ] && [ -d "$REDIS_TMPDIR" ]; then
    rm -rf "$REDIS_TMPDIR"
    _redis_log "stopped and removed $REDIS_TMPDIR"
  fi
  REDIS_PID=""
  REDIS_TMPDIR=""
}
