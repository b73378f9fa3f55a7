#!/usr/bin/env bash
# `make run`: the portal on its embedded defaults — SQLite, the local AWS sandbox, a Celery worker,
# demo data — served on 127.0.0.1:8000. Every default can be overridden from the environment.
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
PORT="${PORT:-8000}"
mkdir -p var

children=()
cleanup() { for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

redis_url_host_port() {
  $PY -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 6379)' "$CELERY_BROKER_URL"
}
read -r REDIS_HOST REDIS_PORT < <(redis_url_host_port)
if ! $PY -c "import redis, sys; redis.Redis(host='$REDIS_HOST', port=$REDIS_PORT, socket_timeout=2).ping()" 2>/dev/null; then
  if command -v redis-server >/dev/null && [[ "$REDIS_HOST" == "127.0.0.1" || "$REDIS_HOST" == "localhost" ]]; then
    echo "No Redis on $REDIS_HOST:$REDIS_PORT; starting a local redis-server (data kept in var/redis)"
    mkdir -p var/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log"
    sleep 0.5
  else
    echo "ERROR: no Redis answers at $CELERY_BROKER_URL and redis-server is not installed." >&2
    echo "Install Redis (e.g. 'apt-get install redis-server') or set CELERY_BROKER_URL." >&2
    exit 1
  fi
fi

if [[ "$AWS_ENDPOINT_URL" == "http://127.0.0.1:${SANDBOX_PORT}" ]]; then
  echo "Starting the local AWS sandbox on $AWS_ENDPOINT_URL"
  export IRSA_PERMISSIONS_BOUNDARY_ARN="${IRSA_PERMISSIONS_BOUNDARY_ARN:-arn:aws:iam::123456789012:policy/irsa/irsa-permissions-boundary}"
  $PY -m sandbox --port "$SANDBOX_PORT" > var/sandbox.log 2>&1 &
  children+=($!)
  for _ in $(seq 60); do
    grep -q "Sandbox ready" var/sandbox.log 2>/dev/null && break
    if ! kill -0 "${children[-1]}" 2>/dev/null; then cat var/sandbox.log >&2; exit 1; fi
    sleep 0.5
  done
fi

$PY manage.py migrate --no-input -v 0
$PY manage.py seed_demo

$PY -m celery -A portal worker --beat --schedule var/celerybeat-schedule --loglevel INFO --concurrency 2 > var/worker.log 2>&1 &
children+=($!)
echo "Celery worker started (log: var/worker.log)"
echo "Portal: http://127.0.0.1:${PORT}/  (admin: http://127.0.0.1:${PORT}/admin/)"
$PY manage.py runserver "127.0.0.1:${PORT}" --noreload
