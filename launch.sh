#!/usr/bin/env bash
# MindBot launcher.
#   ./launch.sh dev             run the product on the embedded database (no setup needed), logs readable
#   ./launch.sh start           run it in the background (logs in ./logs, pids in ./run);
#                               --foreground for containers (migrates, then runs sidecar and worker, signals passed on)
#   ./launch.sh stop | status   stop it / show what runs
#   ./launch.sh test            install what is needed, typecheck, run every test
#   ./launch.sh migrate         apply the migrations to the configured database (twice is a no-op)
#   ./launch.sh api-token UUID  print a local API token for that user (add --admin for an admin)
#   ./launch.sh token UUID      print a room name and a LiveKit token for a call (as POST /token mints them)
#   ./launch.sh console [--user UUID]  talk to the agent by typing (OPENAI_* model, configured store; guest without --user)
#   ./launch.sh worker [start]  run the LiveKit agent worker (dev mode; needs LIVEKIT_URL/_API_KEY/_API_SECRET)
#   ./launch.sh bench           run the benchmarks against local Postgres
set -euo pipefail
cd "$(dirname "$0")"

if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi

log() { printf '[launch] %s\n' "$*" >&2; }

# The LiveKit variables the agent worker needs that are not set (empty when it can run).
missing_livekit() {
  local name missing=()
  for name in LIVEKIT_URL LIVEKIT_API_KEY LIVEKIT_API_SECRET; do
    [ -n "${!name:-}" ] || missing+=("$name")
  done
  echo "${missing[*]:-}"
}

# Installs when package-lock.json differs from what was installed, by content: a checkout's mtimes say nothing
# (a fresh worktree's lock file is always newer than an older install).
ensure_node_modules() {
  [ "${MINDBOT_SKIP_INSTALL:-0}" = 1 ] && return 0
  local want stamp=node_modules/.mindbot-lock-sha256
  want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  if [ -L node_modules ]; then
    # npm ci empties the directory a symlink points at: another checkout's install.
    log "node_modules is a symlink to a shared install: not reinstalling it (MINDBOT_SKIP_INSTALL=1 hides this)"
    return 0
  fi
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
}

# The browser tests drive Debian's Chromium (playwright-core with its executablePath): install it when missing.
ensure_chromium() {
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "installing Debian's chromium for the browser tests"
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium >/dev/null; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium >/dev/null
  fi
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || { log "chromium is still missing at ${CHROMIUM_PATH:-/usr/bin/chromium}"; exit 1; }
}

# The pooler tests run Debian's PgBouncer in transaction mode (as Supabase's pooler works): install it when missing.
ensure_pgbouncer() {
  [ -x "${PGBOUNCER_PATH:-/usr/sbin/pgbouncer}" ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "installing Debian's pgbouncer for the connection-pooler tests"
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends pgbouncer >/dev/null; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends pgbouncer >/dev/null
  fi
  [ -x "${PGBOUNCER_PATH:-/usr/sbin/pgbouncer}" ] || { log "pgbouncer is still missing at ${PGBOUNCER_PATH:-/usr/sbin/pgbouncer}"; exit 1; }
}

# The web app served by the sidecar: built into dist/web (the sidecar answers 503 on its pages without it).
build_web() {
  log "building the web app"
  npx vite build --logLevel warn
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

pretty_logs() {
  if [ -x node_modules/.bin/pino-pretty ] && [ "${LOG_FORMAT:-pretty}" = pretty ]; then
    node_modules/.bin/pino-pretty --colorize --translateTime SYS:HH:MM:ss --ignore pid,hostname
  else
    cat
  fi
}

# The embedded database writes its URL into its lock file once it serves; the others find it there.
# $1: the pid to watch (optional); its death ends the wait at once.
wait_for_embedded() {
  local lock="${EMBEDDED_DATA_DIR:-./data/pglite}.lock" watched="${1:-}"
  for _ in $(seq 1 240); do
    if [ -f "$lock" ] && grep -q '"url":"postgres' "$lock"; then return 0; fi
    if [ -n "$watched" ] && ! kill -0 "$watched" 2>/dev/null; then break; fi
    sleep 0.5
  done
  log "the embedded database did not start (see its log above)"
  exit 1
}

# `dev` runs each child (with its log-pretty pipe) in a process group of its own, so stopping a group stops
# every process of it, and records the groups; dev_stop ends them all. The groups are made with job control
# switched on only while a child starts: foreground commands stay in this script's group, so Ctrl-C in a
# terminal always reaches this script (and its trap), never only a `sleep` of a wait loop.
dev_names=()
dev_groups=()
dev_start() {
  local name="$1"
  shift
  set -m
  "$@" 2>&1 | pretty_logs &
  dev_groups+=("$(jobs -p %+)")
  set +m
  dev_names+=("$name")
}

# Sends SIGTERM to each group's first process (Node, which shuts down cleanly; its log pipe ends with it),
# waits up to DEV_STOP_SECONDS for the whole group, then SIGKILLs what is left.
dev_stop_groups() {
  local pgid deadline=$((SECONDS + ${DEV_STOP_SECONDS:-10})) alive
  for pgid in "$@"; do kill -TERM "$pgid" 2>/dev/null || true; done
  while [ "$SECONDS" -lt "$deadline" ]; do
    alive=0
    for pgid in "$@"; do kill -0 -- "-$pgid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.2
  done
  for pgid in "$@"; do
    if kill -0 -- "-$pgid" 2>/dev/null; then
      log "process group $pgid did not stop within ${DEV_STOP_SECONDS:-10}s: killing it"
      kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
  done
}

dev_stopping=0
dev_stop() {
  [ "$dev_stopping" = 1 ] && return 0
  dev_stopping=1
  trap '' INT TERM
  local i first=() database=()
  # The database last: the others close their connections to it first.
  for i in "${!dev_groups[@]}"; do
    if [ "${dev_names[$i]}" = embedded-db ]; then database+=("${dev_groups[$i]}"); else first+=("${dev_groups[$i]}"); fi
  done
  [ "${#first[@]}" -gt 0 ] && dev_stop_groups "${first[@]}"
  [ "${#database[@]}" -gt 0 ] && dev_stop_groups "${database[@]}"
  rm -f "${dev_ready_file:-}"
  wait 2>/dev/null || true
  [ "${#dev_groups[@]}" -gt 0 ] && log "stopped"
  return 0
}

# The name of a dev child that is no longer running (empty when all run).
dev_ended() {
  local i
  for i in "${!dev_groups[@]}"; do
    kill -0 "${dev_groups[$i]}" 2>/dev/null || { echo "${dev_names[$i]}"; return 0; }
  done
}

start_background() {
  local name="$1" entry="$2"
  shift 2
  if [ -f "run/$name.pid" ] && kill -0 "$(cat "run/$name.pid")" 2>/dev/null; then
    log "$name already runs (pid $(cat "run/$name.pid"))"
    return 0
  fi
  nohup node --import tsx "$entry" "$@" >> "logs/$name.log" 2>&1 &
  echo $! > "run/$name.pid"
  log "$name started (pid $!, log logs/$name.log)"
}

stop_background() {
  local name="$1" pid
  [ -f "run/$name.pid" ] || return 0
  pid="$(cat "run/$name.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "$name stopped"
  fi
  rm -f "run/$name.pid"
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  dev)
    # The development sign-in (admin tokens for whoever asks) only here, only on loopback, never next to Supabase.
    [ -n "${SUPABASE_URL:-}${SUPABASE_ANON_KEY:-}${SUPABASE_JWT_SECRET:-}${SUPABASE_JWKS_URL:-}" ] || export DEV_SIGN_IN="${DEV_SIGN_IN:-true}"
    export HOST="${HOST:-127.0.0.1}"
    ensure_node_modules
    trap 'dev_stop; exit 0' INT TERM
    trap dev_stop EXIT
    # The web app is rebuilt on every change of src/web into a staging directory and published whole
    # (src/web-build/watch.ts): the sidecar never sees a half-built app, and serves the last complete one.
    dev_ready_file="$(mktemp "${TMPDIR:-/tmp}/mindbot-web-ready.XXXXXX")"
    rm -f "$dev_ready_file"
    log "building the web app (rebuilt on every change)"
    dev_start web-build node --import tsx src/web-build/watch.ts --ready-file "$dev_ready_file"
    if [ -z "${DATABASE_URL:-}" ] && [ -z "${SUPABASE_URL:-}" ]; then
      log "no DATABASE_URL or SUPABASE_URL: serving the embedded PGlite database"
      dev_start embedded-db node --import tsx src/billing/embedded-server.ts
      wait_for_embedded "${dev_groups[-1]}"
    else
      node --import tsx src/billing/migrate-cli.ts 2>&1 | pretty_logs
    fi
    for _ in $(seq 1 600); do
      [ -f "$dev_ready_file" ] && break
      kill -0 "${dev_groups[0]}" 2>/dev/null || { log "the web build stopped (see its log above)"; exit 1; }
      sleep 0.5
    done
    [ "$(cat "$dev_ready_file" 2>/dev/null)" = built ] \
      || log "the web app is not built yet (see above): its pages answer 503 until a build succeeds"
    log "starting the sidecar and the web app on ${PUBLIC_BASE_URL:-http://localhost:${PORT:-8001}} (Ctrl-C stops everything)"
    dev_start sidecar node --import tsx src/sidecar/main.ts
    missing="$(missing_livekit)"
    if [ -z "$missing" ]; then
      log "starting the agent worker (LiveKit at $LIVEKIT_URL, health port ${AGENT_HEALTH_PORT:-8081})"
      dev_start worker node --import tsx src/agent/worker.ts dev
    else
      log "not starting the agent worker: $missing not set (the sidecar runs without it)"
    fi
    # Runs until a signal (the trap stops everything) or until a child ends on its own: then the rest stop too.
    wait -n || true
    ended="$(dev_ended)"
    log "${ended:-a process} stopped on its own: stopping the others"
    exit 1
    ;;
  start)
    ensure_node_modules
    if [ "${1:-}" = --foreground ]; then
      # For containers: migrate, then become the sidecar (signals reach Node directly).
      if [ -n "${DATABASE_URL:-}" ] || [ -n "${SUPABASE_DB_URL:-}" ]; then
        node --import tsx src/billing/migrate-cli.ts
      fi
      if [ -n "$(missing_livekit)" ]; then
        exec node --import tsx src/sidecar/main.ts
      fi
      # Sidecar and worker side by side: this shell passes SIGTERM/SIGINT on to both and waits for both, so
      # the worker settles its calls before the container stops.
      node --import tsx src/sidecar/main.ts & sidecar_pid=$!
      node --import tsx src/agent/worker.ts start & worker_pid=$!
      trap 'kill -TERM "$sidecar_pid" "$worker_pid" 2>/dev/null' TERM INT
      wait -n || true
      kill -TERM "$sidecar_pid" "$worker_pid" 2>/dev/null || true
      wait
      exit 0
    fi
    mkdir -p logs run
    [ -f "${WEB_DIST_DIR:-./dist/web}/index.html" ] || build_web
    if [ -z "${DATABASE_URL:-}" ] && [ -z "${SUPABASE_URL:-}" ]; then
      start_background embedded-db src/billing/embedded-server.ts
      wait_for_embedded
    else
      node --import tsx src/billing/migrate-cli.ts >> logs/migrate.log 2>&1
    fi
    start_background sidecar src/sidecar/main.ts
    missing="$(missing_livekit)"
    if [ -z "$missing" ]; then
      start_background worker src/agent/worker.ts start
    else
      log "not starting the agent worker: $missing not set"
    fi
    ;;
  stop)
    for name in worker sidecar embedded-db; do stop_background "$name"; done
    ;;
  status)
    for name in embedded-db sidecar worker; do
      if [ -f "run/$name.pid" ] && kill -0 "$(cat "run/$name.pid")" 2>/dev/null; then
        echo "$name: running (pid $(cat "run/$name.pid"), log logs/$name.log)"
      else
        echo "$name: stopped"
      fi
    done
    ;;
  token)
    ensure_node_modules
    exec node --import tsx src/sidecar/call-token-cli.ts "$@"
    ;;
  api-token)
    ensure_node_modules
    exec node --import tsx src/auth/token-cli.ts "$@"
    ;;
  console)
    ensure_node_modules
    exec node --import tsx src/agent/console.ts "$@"
    ;;
  worker)
    missing="$(missing_livekit)"
    if [ -n "$missing" ]; then
      log "the agent worker needs a LiveKit server: $missing not set (in .env or the environment)"
      exit 1
    fi
    ensure_node_modules
    if [ "${1:-dev}" = dev ]; then node --import tsx src/agent/livekit-check-cli.ts; fi
    exec node --import tsx src/agent/worker.ts "${1:-dev}" "${@:2}"
    ;;
  migrate)
    ensure_node_modules
    exec node --import tsx src/billing/migrate-cli.ts "$@"
    ;;
  test)
    ensure_node_modules
    ensure_postgres
    ensure_chromium
    ensure_pgbouncer
    log "typechecking"
    npx tsc --noEmit -p .
    npx tsc --noEmit -p src/web
    build_web
    log "running the tests"
    exec node --import tsx --test --test-concurrency=2 --test-reporter=spec tests/*.test.ts
    ;;
  bench)
    ensure_node_modules
    ensure_postgres
    exec node --import tsx bench/run.ts "$@"
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
