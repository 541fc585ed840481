#!/usr/bin/env bash
# Smoke test of the zero-config stack: clean clone, `make run`, a demo execution completes,
# Ctrl-C shuts everything down.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
git clone --quiet "$src" "$work/app"
cd "$work/app"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export PORT
setsid make run >"$work/run.log" 2>&1 &
pid=$!
cleanup() { kill -INT -- -"$pid" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 600); do
  grep -q "Durable Lab is up" "$work/run.log" && curl -sf -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" || { cat "$work/run.log"; echo "smoke: web server did not come up"; exit 1; }
.venv/bin/python manage.py durable invoke --function-name hello-steps --payload '{"name": "smoke", "wait_seconds": 1}' \
  --invocation-type RequestResponse >"$work/invoke.json" || { cat "$work/invoke.json" "$work/run.log"; exit 1; }
grep -q '"StatusCode": 200' "$work/invoke.json" && ! grep -q FunctionError "$work/invoke.json" \
  || { cat "$work/invoke.json" "$work/run.log"; echo "smoke: demo execution did not succeed"; exit 1; }
kill -INT -- -"$pid"
for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$pid" 2>/dev/null; then echo "smoke: stack did not shut down within 30 s"; exit 1; fi
trap - EXIT
grep -q "Durable Lab stopped." "$work/run.log" || { cat "$work/run.log"; echo "smoke: no clean shutdown"; exit 1; }
if pgrep -f "$work/app/.data/postgres" >/dev/null; then echo "smoke: the embedded PostgreSQL is still running"; exit 1; fi
echo "smoke: make run came up on port $PORT, ran a demo execution and shut down cleanly"
