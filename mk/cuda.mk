# CUDA backend: build targets and the GPU-less checks `make test` runs.
#
#   make cuda        bin/cuda/kiln (-tags cuda) and the backend plugin
#                    bin/cuda/kiln-cuda.so next to it (see backend/cuda/doc.go)
#   make test-cuda   install the toolkit if needed, vet with the tag, build
#                    both, compile every kernel through NVRTC + ptxas for
#                    sm_80/sm_90 (fails on spills in GEMM/conv), and check
#                    that the cuda build falls back to the CPU on this host,
#                    then run the CUDA C kernels through the backend's own
#                    launch code on the CPU emulator (tag cudaemu, g++)
#
# No GPU is needed. GPU hosts run bench/gpu-check.sh instead.

CUDA_DIR    := bin/cuda
CUDA_KILN   := $(CUDA_DIR)/kiln
CUDA_PLUGIN := $(CUDA_DIR)/kiln-cuda.so
CUDA_PKGS   := ./kernels/cuda ./bindings/cuda/... ./backend/cuda/...

TEST_EXTRA += test-cuda

.PHONY: cuda cuda-toolkit test-cuda test-cuda-emu cxx

cuda-toolkit:
	bash scripts/install-cuda.sh

cuda: cuda-toolkit
	@mkdir -p $(CUDA_DIR)
	$(GO) build -tags cuda -o $(CUDA_KILN) ./cmd/kiln
	$(GO) build -buildmode=plugin -tags cuda -o $(CUDA_PLUGIN) ./backend/cuda/plugin

cxx:
	bash scripts/install-cxx.sh

# The CUDA backend's conformance suite on the kernel emulator: no GPU, no
# toolkit; the .cu sources compiled by g++ (see kernels/cuda/emu.go).
# The backend's conformance suite and training comparison run twice on the
# emulator, the second time with each kernel's first launch in reverse block
# order: every launch of them then runs its grid's blocks in both orders.
test-cuda-emu: cxx
	$(GO) vet -tags cudaemu ./kernels/cuda ./backend/cuda
	$(GO) test -count=1 -tags cudaemu ./kernels/cuda ./backend/cuda
	KILN_EMU_BLOCK_ORDER=reverse $(GO) test -count=1 -tags cudaemu -run 'TestEmulatedConformance|TestEmulatedTrainMatchesCPU' ./backend/cuda

test-cuda: cuda test-cuda-emu
	$(GO) vet -tags cuda ./...
	$(GO) vet -tags 'cuda gpu' $(CUDA_PKGS)
	$(GO) test -c -tags 'cuda gpu' -o $(CUDA_DIR)/cuda-gpu.test ./backend/cuda
	$(GO) test -count=1 $(CUDA_PKGS)
	KILN_CUDA_BIN=$(abspath $(CUDA_KILN)) KILN_CUDA_PLUGIN=$(abspath $(CUDA_PLUGIN)) \
		$(GO) test -count=1 -tags cuda $(CUDA_PKGS)
