#!/usr/bin/env bash
# Runs Sightline's whole test suite on a fresh Debian 12 machine (as root):
#   1. installs missing Debian packages (postgresql, clickhouse-server, redis-server, chromium,
#      nodejs/npm if no node)
#   2. starts a throw-away PostgreSQL and exports SIGHTLINE_TEST_POSTGRES_URL,
#      (and SIGHTLINE_TEST_POSTGRES_TLS=1: the server speaks TLS), and a throw-away ClickHouse
#      (SIGHTLINE_TEST_CLICKHOUSE_URL) and a throw-away Redis (SIGHTLINE_TEST_REDIS_URL)
#   3. cargo fmt --check and cargo clippy --workspace --all-targets -- -D warnings
#   4. cargo nextest run --workspace --run-ignored all (or cargo test -- --include-ignored):
#      the PostgreSQL variants of the storage tests are #[ignore]d for a plain `cargo test`
#   5. browser tests (tests/browser/*.test.mjs) against target/debug/sightline
# Exits non-zero if any step fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

section() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------------------
section "System packages"
missing=()
for pkg in postgresql clickhouse-server redis-server chromium curl; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then missing+=("$pkg"); fi
done
if ! command -v node >/dev/null 2>&1; then
  for pkg in nodejs npm; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then missing+=("$pkg"); fi
  done
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "all present"
fi
echo "node $(node --version), npm $(npm --version 2>/dev/null), $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium: ?')"

# ---------------------------------------------------------------------------
section "PostgreSQL"
# shellcheck source=lib/postgres.sh
source "$REPO_ROOT/scripts/lib/postgres.sh"
# shellcheck source=lib/clickhouse.sh
source "$REPO_ROOT/scripts/lib/clickhouse.sh"
# shellcheck source=lib/redis.sh
source "$REPO_ROOT/scripts/lib/redis.sh"
trap 'pg_stop; ch_stop; redis_stop' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pg_start
echo "SIGHTLINE_TEST_POSTGRES_URL=$SIGHTLINE_TEST_POSTGRES_URL"

# ---------------------------------------------------------------------------
section "ClickHouse"
ch_start
echo "SIGHTLINE_TEST_CLICKHOUSE_URL=$SIGHTLINE_TEST_CLICKHOUSE_URL"

# ---------------------------------------------------------------------------
section "Redis"
redis_start
echo "SIGHTLINE_TEST_REDIS_URL=$SIGHTLINE_TEST_REDIS_URL"

failed_steps=()
# Disk is the first thing to run short on a fresh CI machine: say what there is.
df -h "$REPO_ROOT" | tail -n 1

# ---------------------------------------------------------------------------
section "Format and lints (cargo fmt --check, cargo clippy -D warnings)"
cargo fmt --all --check || failed_steps+=("cargo fmt --check")
cargo clippy --workspace --all-targets -- -D warnings || failed_steps+=("cargo clippy")

# ---------------------------------------------------------------------------
if cargo nextest --version >/dev/null 2>&1; then
  section "Rust tests (cargo nextest run --workspace --run-ignored all --no-fail-fast)"
  cargo nextest run --workspace --run-ignored all --no-fail-fast || failed_steps+=("rust tests")
else
  section "Rust tests (cargo test --workspace -- --include-ignored)"
  cargo test --workspace --no-fail-fast -- --include-ignored || failed_steps+=("rust tests")
fi

# ---------------------------------------------------------------------------
section "Browser test"
if ! cargo build --bin sightline; then
  failed_steps+=("cargo build --bin sightline")
elif ! (cd tests/browser && npm ci --no-audit --no-fund); then
  failed_steps+=("npm ci (tests/browser)")
elif ! SIGHTLINE_BIN=target/debug/sightline node tests/browser/active_nbas.test.mjs; then
  failed_steps+=("browser test")
fi
if [ -d tests/browser/node_modules ] && ! SIGHTLINE_BIN=target/debug/sightline node tests/browser/usage.test.mjs; then
  failed_steps+=("browser test (usage)")
fi
if [ -d tests/browser/node_modules ] && ! SIGHTLINE_BIN=target/debug/sightline node tests/browser/calls.test.mjs; then
  failed_steps+=("browser test (calls)")
fi
if [ -d tests/browser/node_modules ] && ! SIGHTLINE_BIN=target/debug/sightline node tests/browser/sports.test.mjs; then
  failed_steps+=("browser test (sports)")
fi
if [ -d tests/browser/node_modules ] && ! SIGHTLINE_BIN=target/debug/sightline node tests/browser/planning.test.mjs; then
  failed_steps+=("browser test (planning)")
fi

# ---------------------------------------------------------------------------
if [ "${#failed_steps[@]}" -gt 0 ]; then
  df -h "$REPO_ROOT" | tail -n 1
  printf '\n==> FAILED: %s\n' "$(IFS=,; echo "${failed_steps[*]}")" >&2
  exit 1
fi
