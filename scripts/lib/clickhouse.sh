# shellcheck shell=bash
# Throw-away ClickHouse server for tests (Debian's clickhouse-server, 18.16). Source this file,
# then:
#
#   ch_start            # write a minimal config in a temp dir, start the server on free loopback
#                       #   ports, wait for /ping; exports
#                       #   SIGHTLINE_TEST_CLICKHOUSE_URL=http://127.0.0.1:PORT
#   trap ch_stop EXIT   # stop the server and remove its temp dir
#
# See ../shared/CLICKHOUSE.md: the package starts no service; the server runs as the caller.

CH_TMPDIR="${CH_TMPDIR:-}"
CH_PID="${CH_PID:-}"

_ch_log() { echo "[clickhouse] $*" >&2; }

_ch_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

ch_start() {
  local server=/usr/sbin/clickhouse-server
  if [ ! -x "$server" ]; then
    _ch_log "no $server (apt-get install clickhouse-server)"
    return 1
  fi
  CH_TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/sightline-ch.XXXXXX")"
  local http_port tcp_port
  http_port="$(_ch_free_port)"
  tcp_port="$(_ch_free_port)"
  mkdir -p "$CH_TMPDIR/data" "$CH_TMPDIR/tmp" "$CH_TMPDIR/user_files" "$CH_TMPDIR/format_schemas"
  cat > "$CH_TMPDIR/config.xml" <<XML
<yandex>
  <logger><level>warning</level><log>$CH_TMPDIR/server.log</log><errorlog>$CH_TMPDIR/error.log</errorlog></logger>
  <http_port>$http_port</http_port>
  <tcp_port>$tcp_port</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$CH_TMPDIR/data/</path>
  <tmp_path>$CH_TMPDIR/tmp/</tmp_path>
  <user_files_path>$CH_TMPDIR/user_files/</user_files_path>
  <format_schema_path>$CH_TMPDIR/format_schemas/</format_schema_path>
  <users_config>$CH_TMPDIR/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
XML
  cat > "$CH_TMPDIR/users.xml" <<XML
<yandex>
  <profiles>
    <default><max_memory_usage>4000000000</max_memory_usage></default>
    <readonly><readonly>1</readonly></readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
    </default>
  </quotas>
</yandex>
XML
  "$server" --config-file="$CH_TMPDIR/config.xml" >"$CH_TMPDIR/stdout.log" 2>&1 &
  CH_PID=$!
  echo "$CH_PID" > "$CH_TMPDIR/server.pid"
  local i
  for i in $(seq 1 150); do
    if [ "$(curl -s "http://127.0.0.1:$http_port/ping" 2>/dev/null)" = "Ok." ]; then
      export SIGHTLINE_TEST_CLICKHOUSE_URL="http://127.0.0.1:$http_port"
      _ch_log "running on 127.0.0.1:$http_port (ClickHouse $(curl -s "http://127.0.0.1:$http_port/?query=SELECT%20version()"))"
      return 0
    fi
    if ! kill -0 "$CH_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  _ch_log "did not start; its logs:"
  tail -n 20 "$CH_TMPDIR/stdout.log" "$CH_TMPDIR/error.log" 2>/dev/null >&2 || true
  return 1
}

ch_stop() {
  if [ -n "$CH_PID" ]; then
    kill -TERM "$CH_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do kill -0 "$CH_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CH_PID" 2>/dev/null || true
  fi
  if [ -n "$CH_TMPDIR" ] && [ -d "$CH_TMPDIR" ]; then
    rm -rf "$CH_TMPDIR"
    _ch_log "stopped and removed $CH_TMPDIR"
  fi
  CH_PID=""
  CH_TMPDIR=""
}
