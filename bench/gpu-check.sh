#!/usr/bin/env bash
# gpu-check.sh: prove kiln's CUDA backend on a GPU host, in one run of under
# five minutes (about half of it the one-time toolkit install on a fresh
# host). Run from anywhere; it works in the repository root.
#
#   1. install or check the CUDA toolkit (scripts/install-cuda.sh)
#   2. build bin/cuda/kiln and the backend plugin bin/cuda/kiln-cuda.so
#   3. list devices, then run the conformance suite on the GPU, both in
#      the backend package (tag gpu) and through the plugin loader
#   4. train the reference CNN for 1 epoch on MNIST with --backend cuda and
#      print its test accuracy and epoch time
#   5. SGEMM 4096³: kiln's kernel against cuBLAS in the same run
#   6. `kiln bench --backend cuda`, if this kiln has the bench command
#
# GPU_CHECK_PARITY=1 also trains on the CPU (10k images) and compares
# accuracy; it is off by default because it is slow on small hosts.
# Exit status: 0 when every step passed, 1 otherwise (all steps still run).
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${OUT:-out/gpu-check}
mkdir -p "$OUT"
failed=()
step() { printf '\n== %s\n' "$*"; }
run() { # run NAME TIMEOUT CMD...: runs CMD, records a failure
	local name=$1 t=$2
	shift 2
	if ! timeout "$t" "$@"; then
		echo "FAILED: $name"
		failed+=("$name")
	fi
}
start=$SECONDS

step "toolkit"
if ! bash scripts/install-cuda.sh; then
	echo "FAILED: the CUDA toolkit is missing and could not be installed"
	exit 1
fi
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv

step "build (-tags cuda)"
mkdir -p bin/cuda
run "build kiln" 300 $GO build -tags cuda -o bin/cuda/kiln ./cmd/kiln
run "build plugin" 300 $GO build -buildmode=plugin -tags cuda -o bin/cuda/kiln-cuda.so ./backend/cuda/plugin
[[ ${#failed[@]} -eq 0 ]] || { echo "build failed: ${failed[*]}"; exit 1; }
export KILN_CUDA_BIN=$PWD/bin/cuda/kiln KILN_CUDA_PLUGIN=$PWD/bin/cuda/kiln-cuda.so

step "devices"
run "kiln devices" 60 bin/cuda/kiln devices

step "conformance suite on the GPU (backend package, tags cuda gpu)"
run "conformance (package)" 240 $GO test -count=1 -tags 'cuda gpu' -run 'Conformance|GridLimits' ./backend/cuda
step "conformance suite through the plugin loader"
run "conformance (plugin)" 240 $GO test -count=1 -tags cuda -run 'ConformanceOnGPU' -v ./backend/cuda/loader

step "train the reference CNN, 1 epoch of MNIST, --backend cuda"
run "train cuda" 240 bin/cuda/kiln train --data mnist --model reference --epochs 1 --batch 32 --seed 1 \
	--backend cuda --out "$OUT/mnist-cuda.kiln" --report "$OUT/mnist-cuda.json"
if [[ -s $OUT/mnist-cuda.json ]]; then
	python3 - "$OUT/mnist-cuda.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
e = r["epochs"][-1]
print(f"cuda: test accuracy {r['test_accuracy']:.4f}, epoch {e['seconds']:.2f} s, {e['images_per_second']:.0f} images/s on {r.get('device')}")
PY
fi
if [[ ${GPU_CHECK_PARITY:-0} == 1 ]]; then
	step "training parity cuda vs cpu (10k images)"
	run "parity" 600 $GO test -count=1 -tags cuda -run 'TrainingParityOnGPU' -v ./backend/cuda/loader
fi

step "SGEMM 4096³: kiln vs cuBLAS"
run "sgemm bench" 180 $GO test -count=1 -tags 'cuda gpu' -run '^$' -bench 'Sgemm4096' -benchtime 20x ./backend/cuda

step "kiln bench --backend cuda"
if help=$(bin/cuda/kiln bench --help 2>&1) && [[ $help == *--backend* ]]; then
	extra=()
	[[ $help == *sgemm-sizes* ]] && extra+=(--sgemm-sizes 1024,2048,4096)
	[[ $help == *--out* ]] && extra+=(--out "$OUT/bench")
	run "kiln bench" 240 bin/cuda/kiln bench --backend cuda "${extra[@]}"
else
	echo "this kiln has no working 'bench' command; skipped"
fi

printf '\n== done in %d s\n' $((SECONDS - start))
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "FAILED steps: ${failed[*]}"
	exit 1
fi
echo "all steps passed"
