# The pure-Go CPU backend on arm64 (the issue's "GOARCH=arm64 still builds
# and passes"): its tests built for arm64 and run under qemu user-mode
# emulation on amd64 hosts (natively on arm64 ones). There the kernels take
# their generic Go paths instead of the AVX ones. About two minutes under
# emulation; TestConvPaths, the one sweep that alone would take another
# ~100 s emulated, runs in the native `unit` pass over the same generic
# paths (it loops over every kernel, the generic one included), and the
# backend's conformance suite covers convolution on arm64.
.PHONY: test-arm64 qemu
TEST_EXTRA += test-arm64

ARM64_EXEC = $(if $(filter arm64,$(shell $(GO) env GOHOSTARCH)),,-exec qemu-aarch64-static)

qemu:
	GO=$(GO) bash scripts/install-qemu.sh

test-arm64: qemu
	GOARCH=arm64 $(GO) test -count=1 $(ARM64_EXEC) -skip '^TestConvPaths$$' ./kernels/cpu ./backend/cpu
