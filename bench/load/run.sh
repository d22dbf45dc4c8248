#!/usr/bin/env bash
# Load test of `kiln serve` with wrk, beside the engine's own speed measured
# in the same run on the same model.
#
#   bench/load/run.sh [MODEL.kiln]
#
# MODEL (relative to the current directory) must exist when given. Without
# it, out/mnist.kiln (from `make run`) is served when present, else a
# reference CNN (MNIST shape) with random weights is written to
# $OUTDIR/reference.kiln (speed does not depend on the weights). Environment
# (defaults; OUTDIR relative to the repository root): DURATION=30
# CONNS=64 THREADS=2 LOW_DURATION=10 PORT=18080 BACKEND=cpu MAX_BATCH=64
# DELAY_US=0 QUEUE=1024 OUTDIR=out/load BODY=json BARE_DURATION=10 (DELAY_US is
# --max-queue-delay, µs; BODY=binary sends the image with the binary tensor
# data extension).
#
# Phases: (1) engine batch-64 throughput and batch-1 latency (loadtool);
# (2) wrk, CONNS connections for DURATION s against a server batching with
# DELAY_US; (2b) wrk, CONNS connections for BARE_DURATION s of GET
# /v2/health/live on the same server: the HTTP round trip alone, whose rate
# bounds what any served model can reach while the client shares the
# server's cores; (3) wrk, 1 connection for LOW_DURATION s against a server with
# no batching delay, for the per-request overhead at low load. The summary
# also says how many cores the server, wrk and idle time took in (2). Only
# loopback traffic. wrk is installed from Debian when missing (as root).
set -euo pipefail
# The model named on the command line is relative to the caller's
# directory: resolve it before moving to the repository root.
MODEL=
if (($# > 1)); then
	echo "usage: bench/load/run.sh [MODEL.kiln]" >&2
	exit 2
fi
if (($# == 1)); then
	if [ ! -f "$1" ]; then
		echo "bench/load/run.sh: model $1 not found (from $PWD); give an existing .kiln file, or no argument to serve out/mnist.kiln or a model with random weights" >&2
		exit 1
	fi
	MODEL="$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"
fi
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib-apt.sh
source scripts/lib-apt.sh
DURATION=${DURATION:-30} CONNS=${CONNS:-64} THREADS=${THREADS:-2} LOW_DURATION=${LOW_DURATION:-10}
PORT=${PORT:-18080} BACKEND=${BACKEND:-cpu} MAX_BATCH=${MAX_BATCH:-64} DELAY_US=${DELAY_US:-0}
QUEUE=${QUEUE:-1024} OUTDIR=${OUTDIR:-out/load} BODY=${BODY:-json} BARE_DURATION=${BARE_DURATION:-10}
export KILN_BODY=$BODY
GO=${GO:-go}

if ! command -v wrk >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		echo "installing wrk (Debian package)"
		kiln_apt_install -y -qq wrk
	else
		echo "wrk is missing: run this script as root, or: sudo apt-get install wrk" >&2
		exit 1
	fi
fi
command -v curl >/dev/null 2>&1 || { echo "curl is missing (apt-get install curl)" >&2; exit 1; }

mkdir -p "$OUTDIR"
$GO build -o bin/kiln ./cmd/kiln
$GO build -o "$OUTDIR/loadtool" ./bench/load/loadtool
if [ -z "$MODEL" ] && [ -f out/mnist.kiln ]; then
	MODEL=out/mnist.kiln
elif [ -z "$MODEL" ]; then
	MODEL=$OUTDIR/reference.kiln
	echo "no model given and no out/mnist.kiln; writing a reference CNN with random weights to $MODEL"
	"$OUTDIR/loadtool" model "$MODEL"
fi

SRV=
stop_server() {
	if [ -n "$SRV" ]; then
		kill -TERM "$SRV" 2>/dev/null || true
		wait "$SRV" 2>/dev/null || true
		SRV=
	fi
}
trap stop_server EXIT
start_server() { # DELAY_US LOG
	bin/kiln serve --model "$MODEL" --name mnist --backend "$BACKEND" --addr "127.0.0.1:$PORT" \
		--max-batch "$MAX_BATCH" --max-queue-delay "$1" --queue "$QUEUE" >"$2" 2>&1 &
	SRV=$!
	for _ in $(seq 300); do
		if curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null; then return 0; fi
		kill -0 "$SRV" 2>/dev/null || { cat "$2"; echo "kiln serve exited" >&2; exit 1; }
		sleep 0.2
	done
	echo "kiln serve did not become ready" >&2
	exit 1
}
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 ~ "^"n {print $2}'; }

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), model $MODEL, backend $BACKEND"
echo "== phase 1: engine alone"
"$OUTDIR/loadtool" engine "$MODEL" 10 | tee "$OUTDIR/engine.txt"
ENGINE_IPS=$(awk '/batch-64/ {for (i=1;i<=NF;i++) if ($i=="images/s") print $(i-1)}' "$OUTDIR/engine.txt")
ENGINE_B1=$(awk '/batch-1:/ {for (i=1;i<=NF;i++) if ($i=="us") print $(i-1)}' "$OUTDIR/engine.txt")

echo "== phase 2: wrk -t$THREADS -c$CONNS -d${DURATION}s, $BODY bodies, max batch $MAX_BATCH, max queue delay ${DELAY_US}us"
start_server "$DELAY_US" "$OUTDIR/serve-load.log"
# CPU accounting over the wrk run: the server's own ticks, wrk's (bash's
# time keyword) and the machine's idle ticks, all in clock ticks.
proc_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
sys_ticks() { awk '/^cpu / {t=0; for (i=2;i<=NF;i++) t+=$i; print t, $5}' /proc/stat; }
S0=$(proc_ticks "$SRV"); read -r T0 I0 < <(sys_ticks)
TIMEFORMAT='%U %S'
{ time wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s bench/load/infer.lua "http://127.0.0.1:$PORT" >"$OUTDIR/wrk-load.txt" 2>"$OUTDIR/wrk-load.err"; } 2>"$OUTDIR/wrk-time.txt"
cat "$OUTDIR/wrk-load.err" >&2
S1=$(proc_ticks "$SRV"); read -r T1 I1 < <(sys_ticks)
cat "$OUTDIR/wrk-load.txt"
CPU_SHARE=$(awk -v s="$((S1 - S0))" -v t="$((T1 - T0))" -v i="$((I1 - I0))" -v n="$(getconf _NPROCESSORS_ONLN)" -v hz="$(getconf CLK_TCK)" '
	NR == 1 && t > 0 {printf "server %.2f, wrk %.2f, idle %.2f of %d cores", s/t*n, ($1+$2)*hz/t*n, i/t*n, n}' "$OUTDIR/wrk-time.txt")
BATCHES=$(metric 'kiln_batch_size_count')
SAMPLES=$(metric 'kiln_batch_size_sum')
echo "== phase 2b: wrk -t$THREADS -c$CONNS -d${BARE_DURATION}s GET /v2/health/live (no work: what HTTP alone costs on this host)"
wrk -t"$THREADS" -c"$CONNS" -d"${BARE_DURATION}s" "http://127.0.0.1:$PORT/v2/health/live" | tee "$OUTDIR/wrk-bare.txt"
stop_server

echo "== phase 3: wrk -t1 -c1 -d${LOW_DURATION}s, max queue delay 0"
start_server 0 "$OUTDIR/serve-low.log"
wrk -t1 -c1 -d"${LOW_DURATION}s" --latency -s bench/load/infer.lua "http://127.0.0.1:$PORT" | tee "$OUTDIR/wrk-low.txt"
stop_server

kv() { grep '^KILN ' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1==k {print $2}'; }
RPS=$(kv "$OUTDIR/wrk-load.txt" rps)
echo "== summary"
echo "served: $(kv "$OUTDIR/wrk-load.txt" requests) requests, $RPS req/s, p50 $(kv "$OUTDIR/wrk-load.txt" p50_us) us, p99 $(kv "$OUTDIR/wrk-load.txt" p99_us) us, non-2xx $(kv "$OUTDIR/wrk-load.txt" non2xx), socket errors $(kv "$OUTDIR/wrk-load.txt" socket_errors)"
echo "mean batch: $(awk -v s="$SAMPLES" -v b="$BATCHES" 'BEGIN {if (b>0) printf "%.1f", s/b; else print "n/a"}') samples over $BATCHES batches"
echo "CPU during the run: $CPU_SHARE"
echo "engine batch-64: $ENGINE_IPS images/s; served/engine = $(awk -v a="$RPS" -v b="$ENGINE_IPS" 'BEGIN {printf "%.2f", a/b}')"
BARE_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$OUTDIR/wrk-bare.txt")
# Each served request costs the machine at least a bare round trip (1/BARE
# of its cores, client included) plus its compute (1/ENGINE): the ceiling
# for a client that shares the server's cores.
echo "bare HTTP (GET /v2/health/live, same wrk, same cores): $BARE_RPS req/s; with the client on these cores served/engine is at most bare/(bare+engine) = $(awk -v a="$BARE_RPS" -v b="$ENGINE_IPS" 'BEGIN {if (a+b>0) printf "%.2f", a/(a+b)}'), and this run reached $(awk -v r="$RPS" -v a="$BARE_RPS" -v b="$ENGINE_IPS" 'BEGIN {if (a*b>0) printf "%.2f", r/(a*b/(a+b))}') of that"
P50_LOW=$(kv "$OUTDIR/wrk-low.txt" p50_us)
echo "low load (1 connection): p50 $P50_LOW us vs engine batch-1 $ENGINE_B1 us: overhead $(awk -v a="$P50_LOW" -v b="$ENGINE_B1" 'BEGIN {printf "%.0f", a-b}') us (includes wrk and loopback)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
