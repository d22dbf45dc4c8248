#!/usr/bin/env bash
# Side by side: kiln against OpenBLAS (SGEMM) and PyTorch (training the
# reference CNN on Fashion-MNIST), measured in one run on this machine,
# printed as kiln/peer ratios.
#
#   bench/peers/run.sh [--quick] [--limit N] [--threads T] [--kiln BIN]
#                      [--rounds R] [--out DIR] [--no-install]
#
# --quick      train on the first 6000 images (or --limit N) and time fewer
#              SGEMM runs: a few minutes in all. Without it, one full epoch
#              of 60,000 images each (PyTorch about a minute, kiln minutes).
# --limit N    train both on the first N training images.
# --threads T  threads for every side (default 2): OPENBLAS_NUM_THREADS,
#              torch.set_num_threads, GOMAXPROCS.
# --kiln BIN   the kiln binary to measure (default: built into DIR).
# --rounds R   SGEMM rounds (default 3): each round times OpenBLAS (SkylakeX),
#              kiln, then OpenBLAS (own detection), so each ratio compares
#              runs seconds apart; the table gives the median over rounds of
#              the per-round ratios (a shared machine's speed drifts between
#              rounds more than within one).
# --out DIR    where the JSON files, the log and peers.md go (default out/peers).
# --no-install do not try to install missing peers.
#
# Peers come from Debian (bench/peers/install.sh installs them when missing,
# idempotently): numpy with OpenBLAS 0.3.21 and PyTorch 1.13, run with
# /usr/bin/python3 (not a pyenv or venv python on PATH).
# OpenBLAS runs with OPENBLAS_CORETYPE=SkylakeX (its AVX-512 kernel; its own
# detection may pick another) and OPENBLAS_L2_SIZE unset, in that command
# only; the script also times OpenBLAS with its own detection and prints
# which core kernel each run used (openblas_get_corename). On a CPU without
# AVX-512 the SkylakeX runs are skipped (they would die on an illegal
# instruction) and the table compares with OpenBLAS's own detection only.
# PyTorch runs with OMP_WAIT_POLICY=PASSIVE unless the caller sets it: on a
# shared, loaded machine libgomp's default spin-waiting threads fight the
# other processes and run many times slower (measured: 86 vs 1050 images/s
# on 1000 images); kiln's Go scheduler does not spin.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/peers"
PY=/usr/bin/python3
QUICK=0 LIMIT=0 THREADS=2 KILN="" OUT="$ROOT/out/peers" INSTALL=1 ROUNDS=3

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
	case "$1" in
	--quick) QUICK=1 ;;
	--limit) LIMIT=${2:?--limit needs a number}; shift ;;
	--threads) THREADS=${2:?--threads needs a number}; shift ;;
	--kiln) KILN=${2:?--kiln needs a path}; shift ;;
	--rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
	--out) OUT=${2:?--out needs a directory}; shift ;;
	--no-install) INSTALL=0 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[[ "$LIMIT" =~ ^[0-9]+$ ]] || { echo "run.sh: --limit must be a number, got $LIMIT" >&2; exit 2; }
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --threads must be a positive number, got $THREADS" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rounds must be a positive number, got $ROUNDS" >&2; exit 2; }
REPEAT=10
if ((QUICK)); then
	REPEAT=5
	((LIMIT > 0)) || LIMIT=6000
fi

if ((INSTALL)); then
	bash "$HERE/install.sh"
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [[ -z "$KILN" ]]; then
	echo "building kiln into $OUT/kiln"
	(cd "$ROOT" && go build -o "$OUT/kiln" ./cmd/kiln)
	KILN="$OUT/kiln"
fi
KILN=$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")

# The Fashion-MNIST folder, from the Debian package's file list.
DATA=$(dirname "$(dpkg -L dataset-fashion-mnist 2>/dev/null | grep 'train-images-idx3-ubyte' | head -1)")
[[ -n "$DATA" && "$DATA" != "." ]] || { echo "run.sh: dataset-fashion-mnist is not installed (scripts/install-fashion-mnist.sh)" >&2; exit 1; }

LOG="$OUT/run.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
limit_args=() on="60,000"
if ((LIMIT > 0)); then
	limit_args=(--limit "$LIMIT") on="the first $LIMIT"
fi

mode=full
((QUICK)) && mode=quick
echo "== $(date -u +%FT%TZ) bench/peers/run.sh ($mode): $on training images, $THREADS threads"
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kiln: $KILN (source tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)); python: $PY; data: $DATA"

# OpenBLAS's SkylakeX kernel needs AVX-512: forced on a CPU without it, the
# process dies on an illegal instruction. There the SkylakeX runs are left
# out and kiln is compared with OpenBLAS's own choice (Haswell or Zen).
SKX=1
if ! grep -qw avx512f /proc/cpuinfo; then
	SKX=0
	echo "note: this CPU has no AVX-512 (no avx512f in /proc/cpuinfo): OpenBLAS's SkylakeX kernel cannot run here, so"
	echo "      kiln (its AVX2 kernel) is compared with OpenBLAS's own kernel choice only"
fi

rm -rf "$OUT/sgemm"
mkdir -p "$OUT/sgemm"
for r in $(seq "$ROUNDS"); do
	if ((SKX)); then
		echo; echo "== SGEMM round $r of $ROUNDS: OpenBLAS (OPENBLAS_CORETYPE=SkylakeX), kiln, OpenBLAS (own detection); $THREADS threads"
		env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS="$THREADS" \
			"$PY" "$HERE/sgemm.py" --sizes 1024,2048 --repeat "$REPEAT" --label openblas-skylakex --json "$OUT/sgemm/openblas-skylakex-$r.json"
	else
		echo; echo "== SGEMM round $r of $ROUNDS: kiln, OpenBLAS (own detection); $THREADS threads"
	fi
	GOMAXPROCS="$THREADS" "$KILN" bench --backend cpu --suite sgemm --sgemm-sizes 1024,2048 \
		--repeat "$REPEAT" --out "$OUT/sgemm/kiln-$r" >/dev/null
	grep -E '^\| cpu \| sgemm' "$OUT/sgemm/kiln-$r/bench.md" || true
	env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS="$THREADS" \
		"$PY" "$HERE/sgemm.py" --sizes 1024,2048 --repeat "$REPEAT" --label openblas-auto --json "$OUT/sgemm/openblas-auto-$r.json"
done

echo; echo "== PyTorch training, 1 epoch on $on images, $THREADS threads, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}"
OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" "$PY" "$HERE/torch_cnn.py" --data "$DATA" --epochs 1 --batch 32 \
	--threads "$THREADS" "${limit_args[@]}" --json "$OUT/torch.json"

echo; echo "== kiln training, 1 epoch on $on images, GOMAXPROCS=$THREADS"
GOMAXPROCS="$THREADS" "$KILN" train --data fashion-mnist --model reference --epochs 1 --batch 32 --seed 1 \
	--backend cpu "${limit_args[@]}" --out "$OUT/kiln-fashion.kiln" --report "$OUT/kiln-train.json"

echo; echo "== kiln/peer ratios (load now: $(cut -d' ' -f1-3 /proc/loadavg))"
"$PY" "$HERE/summarize.py" "$OUT"
echo "log: $LOG; table: $OUT/peers.md"
