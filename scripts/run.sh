#!/usr/bin/env bash
# `make run`: the portal on its embedded defaults — SQLite, the local AWS sandbox, a Celery worker,
# Celery beat, demo data — served on 127.0.0.1:8000. Every default can be overridden from the
# environment.
#
# This script is the supervisor: the worker and beat run as separate processes (as in compose and
# docs/deploy.md) and are restarted, after a short back-off, whenever one exits. Ctrl-C or SIGTERM
# stops everything it started — Redis (if it started one), the sandbox, the worker and its pool,
# beat and runserver — and waits for them, so nothing is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

export DEBUG="${DEBUG:-1}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}"
export SANDBOX_PORT="${SANDBOX_PORT:-4566}"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:${SANDBOX_PORT}}"
export IRSA_TOKEN_MINT_URL="${IRSA_TOKEN_MINT_URL:-${AWS_ENDPOINT_URL}/_sandbox/oidc/token}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
# Dummy credentials: the sandbox accepts any. Real deployments use the worker's IAM role instead.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export PORTAL_VAR_DIR="${PORTAL_VAR_DIR:-$PWD/var}"
VAR="$PORTAL_VAR_DIR"
PORT="${PORT:-8000}"
WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-2}"
# How long a worker may finish its tasks on shutdown before it is killed. A Terraform it started
# runs in its own session and is adopted by the next worker; it is not killed here.
STOP_TIMEOUT="${STOP_TIMEOUT:-20}"
mkdir -p "$VAR"

log() { echo "run.sh: $*" >&2; }

# name -> pid of every child it started; each runs in its own session (setsid), so a signal to
# its process group reaches that child's own children too (the worker's pool, moto).
declare -A pids=() started=() restart_at=() backoff=()
stopping=0
tick=""

start() { # start NAME LOGFILE|- COMMAND...
  local name=$1 logfile=$2
  shift 2
  if [[ "$logfile" == "-" ]]; then
    setsid "$@" </dev/null &
  else
    setsid "$@" >>"$logfile" 2>&1 </dev/null &
  fi
  pids[$name]=$!
  started[$name]=$SECONDS
}

alive() { [[ -n "${pids[$1]:-}" ]] && kill -0 "${pids[$1]}" 2>/dev/null; }

stop_all() {
  ((stopping)) && return
  stopping=1
  trap '' INT TERM
  if [[ -n "$tick" ]]; then kill "$tick" 2>/dev/null || true; fi
  log "stopping ${!pids[*]}"
  local name deadline
  for name in "${!pids[@]}"; do kill -TERM -- "-${pids[$name]}" 2>/dev/null || true; done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for name in "${!pids[@]}"; do
    while alive "$name" && ((SECONDS < deadline)); do sleep 0.2; done
    if alive "$name"; then
      log "$name did not stop within ${STOP_TIMEOUT}s; killing it"
      kill -KILL -- "-${pids[$name]}" 2>/dev/null || true
    fi
    wait "${pids[$name]}" 2>/dev/null || true
  done
  # A process group can outlive its leader (a pool child still exiting): end what is left of it.
  for name in "${!pids[@]}"; do kill -KILL -- "-${pids[$name]}" 2>/dev/null || true; done
  log "stopped"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

start_worker() {
  start worker "$VAR/worker.log" "$PY" -m celery -A portal worker --loglevel INFO \
    --concurrency "$WORKER_CONCURRENCY"
}
start_beat() {
  start beat "$VAR/beat.log" "$PY" -m celery -A portal beat --loglevel INFO \
    --schedule "$VAR/celerybeat-schedule"
}
start_redis() {
  mkdir -p "$VAR/redis"
  start redis "$VAR/redis/redis.log" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir "$VAR/redis"
}

# Restart NAME with START_FN once it has exited and its back-off has passed. The back-off doubles
# (1 s up to 30 s) while it keeps dying within a minute of its start, and is 1 s again after a
# minute of running. Never blocks, so Ctrl-C and the web server are answered within a second.
supervise() {
  local name=$1 start_fn=$2 status=0 delay
  if [[ -z "${restart_at[$name]:-}" ]]; then
    alive "$name" && return
    wait "${pids[$name]}" 2>/dev/null || status=$?
    # What its process group still holds (pool children of a killed worker) goes with it.
    kill -KILL -- "-${pids[$name]}" 2>/dev/null || true
    delay=${backoff[$name]:-1}
    ((SECONDS - started[$name] >= 60)) && delay=1
    backoff[$name]=$((delay * 2 > 30 ? 30 : delay * 2))
    restart_at[$name]=$((SECONDS + delay))
    log "$name exited (status $status); restarting it in ${delay}s"
  elif ((SECONDS >= restart_at[$name])); then
    unset "restart_at[$name]"
    "$start_fn"
    log "$name restarted (pid ${pids[$name]})"
  fi
}

redis_url_host_port() {
  $PY -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 6379)' "$CELERY_BROKER_URL"
}
redis_ping() { $PY -c "import redis; redis.Redis(host='$1', port=$2, socket_timeout=2).ping()" 2>/dev/null; }
read -r REDIS_HOST REDIS_PORT < <(redis_url_host_port)
if ! redis_ping "$REDIS_HOST" "$REDIS_PORT"; then
  if command -v redis-server >/dev/null && [[ "$REDIS_HOST" == "127.0.0.1" || "$REDIS_HOST" == "localhost" ]]; then
    log "no Redis on $REDIS_HOST:$REDIS_PORT; starting a local redis-server (stopped with the rest)"
    start_redis
    for _ in $(seq 50); do redis_ping "$REDIS_HOST" "$REDIS_PORT" && break; sleep 0.2; done
  else
    echo "ERROR: no Redis answers at $CELERY_BROKER_URL and redis-server is not installed." >&2
    echo "Install Redis (e.g. 'apt-get install redis-server') or set CELERY_BROKER_URL." >&2
    exit 1
  fi
fi

if [[ "$AWS_ENDPOINT_URL" == "http://127.0.0.1:${SANDBOX_PORT}" ]]; then
  log "starting the local AWS sandbox on $AWS_ENDPOINT_URL"
  export IRSA_PERMISSIONS_BOUNDARY_ARN="${IRSA_PERMISSIONS_BOUNDARY_ARN:-arn:aws:iam::123456789012:policy/irsa/irsa-permissions-boundary}"
  : >"$VAR/sandbox.log"
  start sandbox "$VAR/sandbox.log" "$PY" -m sandbox --port "$SANDBOX_PORT"
  for _ in $(seq 60); do
    grep -q "Sandbox ready" "$VAR/sandbox.log" 2>/dev/null && break
    if ! alive sandbox; then cat "$VAR/sandbox.log" >&2; exit 1; fi
    sleep 0.5
  done
fi

$PY manage.py migrate --no-input -v 0
$PY manage.py seed_demo

start_worker
start_beat
log "Celery worker and beat started (logs: $VAR/worker.log, $VAR/beat.log)"
echo "Portal: http://127.0.0.1:${PORT}/  (admin: http://127.0.0.1:${PORT}/admin/). Stop with Ctrl-C."
start web - "$PY" manage.py runserver "127.0.0.1:${PORT}" --noreload

while true; do
  if ! alive web; then
    status=0
    wait "${pids[web]}" 2>/dev/null || status=$?
    log "the web server exited (status $status); stopping the rest"
    exit "$status"
  fi
  supervise worker start_worker
  supervise beat start_beat
  [[ -n "${pids[redis]:-}" ]] && supervise redis start_redis
  sleep 1 &
  tick=$!
  wait "$tick" || true
  tick=""
done
