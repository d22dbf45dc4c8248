# Benchmarks (issue 3). `make bench` runs `kiln bench` on every usable
# backend and writes $(OUT)/bench/bench.{md,json,png}; BENCH_FLAGS adds flags
# (e.g. BENCH_FLAGS='--quick' or '--compare old.json'). `make bench-peers`
# runs the side-by-side script against OpenBLAS and PyTorch (installs them
# from Debian when missing); PEERS_FLAGS='--quick' for a short run.
.PHONY: bench bench-peers

BENCH_FLAGS ?=
PEERS_FLAGS ?=

bench: build
	./$(BIN) bench --backend all --out $(OUT)/bench $(BENCH_FLAGS)

bench-peers: build
	bash bench/peers/run.sh --kiln ./$(BIN) --out $(OUT)/peers $(PEERS_FLAGS)
