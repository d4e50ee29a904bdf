#!/usr/bin/env bash
# Paired relay runs: two promptq binaries (before, after) in turn, fresh servers, the same load tool.
#   bench/relay_pair.sh BEFORE_BIN AFTER_BIN STREAMS TOKENS_PER_S SECONDS REPS [PQBENCH]
#   bench/relay_pair.sh BEFORE_BIN AFTER_BIN idle SUBSCRIBERS 0 REPS [PQBENCH]
# Servers bind 127.0.0.1 below the ephemeral port range, live in a temp folder, stopped by pid.
set -u
before=$1 after=$2 streams=$3 rate=$4 secs=$5 reps=$6
bench=${7:-build-release/bench/pqbench}
for r in $(seq 1 "$reps"); do
  for which in before after; do
    bin=$before; [ "$which" = after ] && bin=$after
    work=$(mktemp -d /tmp/promptq-pair-XXXXXX); port=$((20000 + RANDOM % 10000))
    "$bin" serve --listen "127.0.0.1:$port" --data "$work/d" --log-level warn --open --per-ip-limit 100000 > "$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.1; done
    if [ "$streams" = idle ]; then out=$("$bench" idle "http://127.0.0.1:$port" "$pid" "$rate" | tail -1)
    else out=$("$bench" relay "http://127.0.0.1:$port" "$pid" "$streams" "$rate" "$secs" | tail -1); fi
    echo "$which $r: $out"
    kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$work"
  done
done
