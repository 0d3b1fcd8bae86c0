#!/usr/bin/env bash
# End to end: the real zero-cache and Zero client (@rocicorp/zero 1.9.0, from npm) against
# Reprise's /mutate in Zero mode. Not part of `npm test`: zero-cache needs a Postgres with
# wal_level=logical, and this script never changes a server's settings. Give it a fresh
# database on such a server:
#
#   ZERO_E2E_DB=postgres://postgres@127.0.0.1:5499/zapp bash test/zero-e2e/run.sh
set -euo pipefail
: "${ZERO_E2E_DB:?set ZERO_E2E_DB to a fresh database on a Postgres 15+ with wal_level=logical}"
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "installing @rocicorp/zero@1.9.0 in $work"
(cd "$work" && echo '{"private":true,"type":"module"}' >package.json &&
  npm install --silent --no-audit --no-fund @rocicorp/zero@1.9.0 ws@8 postgres@3 >/dev/null 2>&1)
cp "$root/test/zero-e2e/zero-client.mjs" "$work/"
(cd "$work" && DB="$ZERO_E2E_DB" node --input-type=module -e "
  import postgres from 'postgres';
  const sql = postgres(process.env.DB, {onnotice: () => {}});
  await sql\`CREATE TABLE IF NOT EXISTS issue (id TEXT PRIMARY KEY, title TEXT NOT NULL)\`;
  await sql.end();")

# zero-cache first: its first start creates the shard (zero_0) and refuses one that exists.
ZERO_UPSTREAM_DB="$ZERO_E2E_DB" ZERO_REPLICA_FILE="$work/replica.db" \
  ZERO_MUTATE_URL=http://127.0.0.1:4850/mutate ZERO_PORT=4848 ZERO_NUM_SYNC_WORKERS=1 \
  ZERO_ADMIN_PASSWORD=e2e-only NODE_ENV=development ZERO_LOG_LEVEL=warn \
  node "$work/node_modules/@rocicorp/zero/out/zero/src/cli.js" >"$work/zero-cache.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  curl -s -o /dev/null http://127.0.0.1:4848/ && break
  sleep 0.5
done
curl -s -o /dev/null http://127.0.0.1:4848/ || { cat "$work/zero-cache.log"; exit 1; }

(cd "$root" && DB="$ZERO_E2E_DB" PORT=4850 LOSE_ANSWERS=1 \
  exec node --import tsx --conditions=@reprise/source test/zero-e2e/reprise-server.ts) \
  >"$work/reprise.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do
  grep -q 'reprise listening' "$work/reprise.log" && break
  sleep 0.5
done

status=0
(cd "$work" && DB="$ZERO_E2E_DB" node zero-client.mjs) || status=$?
echo "--- Reprise's log of the pushes zero-cache sent:"
cut -c1-300 "$work/reprise.log"
exit $status
