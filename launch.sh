#!/usr/bin/env bash
# MindBot launcher.
#   ./launch.sh dev       run the product on the embedded database (no setup needed)
#   ./launch.sh test      install what is needed, typecheck, run every test
#   ./launch.sh migrate   apply the migrations to the configured database (twice is a no-op)
#   ./launch.sh bench     run the benchmarks against local Postgres
set -euo pipefail
cd "$(dirname "$0")"

if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi

log() { printf '[launch] %s\n' "$*" >&2; }

ensure_node_modules() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm packages"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

# Tests and benchmarks need a real PostgreSQL. Use DATABASE_URL, else the local server on 127.0.0.1:5432,
# started here if it is installed but down.
ensure_postgres() {
  local url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if node -e "const c=new (require('pg').Client)({connectionString:process.argv[1]});c.connect().then(()=>c.end()).catch(()=>process.exit(1))" "$url" 2>/dev/null; then
    return 0
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -z "${DATABASE_URL:-}" ]; then
    log "starting the local PostgreSQL cluster"
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do
      if node -e "const c=new (require('pg').Client)({connectionString:process.argv[1]});c.connect().then(()=>c.end()).catch(()=>process.exit(1))" "$url" 2>/dev/null; then
        return 0
      fi
      sleep 1
    done
  fi
  log "PostgreSQL is not reachable at ${url%%\?*}: set DATABASE_URL or start a server"
  exit 1
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  dev)
    ensure_node_modules
    if [ -n "${DATABASE_URL:-}" ] || [ -n "${SUPABASE_URL:-}" ]; then
      node --import tsx src/billing/migrate-cli.ts
      log "database migrated; the sidecar and the agent arrive with the next issues"
    else
      log "no DATABASE_URL or SUPABASE_URL: serving the embedded PGlite database (Ctrl-C to stop)"
      LOG_LEVEL="${LOG_LEVEL:-info}" exec node --import tsx src/billing/embedded-server.ts "$@"
    fi
    ;;
  migrate)
    ensure_node_modules
    exec node --import tsx src/billing/migrate-cli.ts "$@"
    ;;
  test)
    ensure_node_modules
    ensure_postgres
    log "typechecking"
    npx tsc --noEmit -p .
    log "running the tests"
    exec node --import tsx --test --test-concurrency=2 --test-reporter=spec tests/*.test.ts
    ;;
  bench)
    ensure_node_modules
    ensure_postgres
    exec node --import tsx bench/run.ts "$@"
    ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
