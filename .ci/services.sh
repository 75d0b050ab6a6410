# Servers the test suite needs, installed with apt-get and started on loopback only.
# Sourced by .ci/run; developers can source it too: `source .ci/services.sh && start_postgres`.

PG_PORT="${PG_PORT:-55432}"
PG_DIR="${PG_DIR:-/tmp/shoplm-ci-postgres}"

ensure_packages() {
  local need=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  # Debian's Chromium for the dashboard's browser test (Playwright drives it; no browser download),
  # and a small CJK font so the bilingual catalog renders in its screenshot.
  [ -x /usr/bin/chromium ] || need+=(chromium)
  fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || need+=(fonts-wqy-microhei)
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

start_postgres() {
  local bin
  bin="$(pg_bin)"
  # PostgreSQL refuses to run as root: a throwaway cluster owned by the postgres user.
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  rm -rf "$PG_DIR"
  mkdir -p "$PG_DIR"
  chown postgres "$PG_DIR"
  runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >/dev/null
  runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  export SHOPLM_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "PostgreSQL running on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  local bin
  bin="$(pg_bin)"
  [ -d "$PG_DIR/data" ] && runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
}
