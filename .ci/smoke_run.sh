#!/usr/bin/env bash
# Smoke test of the zero-config stack: clean clone, `make run`, a demo execution completes,
# Ctrl-C shuts everything down and leaves no process behind; after a crash of the supervisor
# (SIGKILL) the next `make run` still comes up, and it too leaves nothing behind.
set -euo pipefail
# A fresh clone has no servers configured: whatever the caller exported (.ci/run's second pass
# points at the machine's PostgreSQL and Redis) must not leak into the zero-configuration run.
unset DATABASE_URL CELERY_BROKER_URL
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
git clone --quiet "$src" "$work/app"
cd "$work/app"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export PORT
pid=""
cleanup() { [ -n "$pid" ] && kill -INT -- -"$pid" 2>/dev/null || true; }
trap cleanup EXIT

start_run() {  # $1: log file
  setsid make run >"$1" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "Durable Lab is up" "$1" && curl -sf -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" || { cat "$1"; echo "smoke: web server did not come up"; exit 1; }
}

stop_run() {  # $1: log file; Ctrl-C, then nothing of this clone may still run
  kill -INT -- -"$pid"
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then echo "smoke: stack did not shut down within 30 s"; exit 1; fi
  pid=""
  grep -q "Durable Lab stopped." "$1" || { cat "$1"; echo "smoke: no clean shutdown"; exit 1; }
  sleep 1
  if pgrep -f "$work/app/.data/postgres" >/dev/null; then echo "smoke: the embedded PostgreSQL is still running"; exit 1; fi
  if pgrep -af "$work/app/" | grep -v pgrep; then echo "smoke: processes of the stack are still running"; exit 1; fi
  # Everything a run writes goes under .data/ (and .venv/): nothing new for git to see.
  if [ -n "$(git status --porcelain --untracked-files=all)" ]; then git status --short; echo "smoke: make run left files in the checkout"; exit 1; fi
}

start_run "$work/run.log"
grep -q "Created the first admin" "$work/run.log" || { cat "$work/run.log"; echo "smoke: no admin password printed"; exit 1; }
if grep -q "admin / admin" "$work/run.log"; then echo "smoke: the default admin password is admin"; exit 1; fi
.venv/bin/python manage.py durable invoke --function-name hello-steps --payload '{"name": "smoke", "wait_seconds": 1}' \
  --invocation-type RequestResponse >"$work/invoke.json" || { cat "$work/invoke.json" "$work/run.log"; exit 1; }
grep -q '"StatusCode": 200' "$work/invoke.json" && ! grep -q FunctionError "$work/invoke.json" \
  || { cat "$work/invoke.json" "$work/run.log"; echo "smoke: demo execution did not succeed"; exit 1; }
stop_run "$work/run.log"

# The supervisor dies without cleaning up (SIGKILL): the next `make run` must still come up.
start_run "$work/run2.log"
supervisor="$(pgrep -P "$pid" -f durable_up || pgrep -P "$(pgrep -P "$pid" | head -1)" -f durable_up)"
kill -KILL "$supervisor"
sleep 2
start_run "$work/run3.log"
curl -sf -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" || { cat "$work/run3.log"; echo "smoke: no web after a crash"; exit 1; }
stop_run "$work/run3.log"
trap - EXIT
rm -rf "$work"
echo "smoke: make run came up on port $PORT, ran a demo execution, shut down cleanly, and came up again after a crash"
