# OpenCL backend: cgo flags for github.com/go-gl/cl, the build-local libCL.so
# link, and the test-opencl target that `make test` runs (see TOOLCHAIN notes
# in the README's design section). Nothing outside the repository is touched
# except the Debian packages scripts/install-opencl.sh installs.
#
#   make test-opencl          install PoCL if needed, vet + test with -tags opencl, build kiln with it
#   make build-opencl         build bin/kiln with the OpenCL backend
#   make run BACKEND=opencl   install PoCL if needed, train + eval on the OpenCL backend
#
# go-gl/cl does not build as shipped against Debian's OpenCL 3.0 headers:
# it needs the 1.2 API (CL_TARGET_OPENCL_VERSION=120), two OpenCL 2.0
# constants that target hides, and a libCL.so to satisfy its -lCL.

.PHONY: test-opencl build-opencl opencl-deps opencl-lib

OPENCL_LIB_DIR    := $(CURDIR)/build/opencl-lib
OPENCL_LIBCL      := $(OPENCL_LIB_DIR)/libCL.so
OPENCL_CGO_CFLAGS := -O2 -g -DCL_TARGET_OPENCL_VERSION=120 \
	-DCL_DEVICE_IMAGE_PITCH_ALIGNMENT=0x104A -DCL_DEVICE_IMAGE_BASE_ADDRESS_ALIGNMENT=0x104B
OPENCL_CGO_LDFLAGS := -L$(OPENCL_LIB_DIR)
# Prefix for go commands that compile the opencl tag.
OPENCL_GOENV := CGO_ENABLED=1 CGO_CFLAGS="$(OPENCL_CGO_CFLAGS)" CGO_LDFLAGS="$(OPENCL_CGO_LDFLAGS)"
OPENCL_PKGS  := ./backend/opencl/ ./bindings/opencl/ ./kernels/opencl/
OPENCL_TESTTIMEOUT ?= 30m

TEST_EXTRA += test-opencl

# The ICD loader's real file, found through the linker cache (or the usual
# multiarch folder); libCL.so points at it.
opencl-lib: $(OPENCL_LIBCL)
$(OPENCL_LIBCL):
	@mkdir -p $(OPENCL_LIB_DIR)
	@lib=$$( (ldconfig -p 2>/dev/null | awk '/libOpenCL\.so\.1 /{print $$NF; exit}'); true ); \
	if [ -z "$$lib" ]; then lib=$$(ls /usr/lib/*/libOpenCL.so.1 /usr/lib/libOpenCL.so.1 2>/dev/null | head -n 1); fi; \
	if [ -z "$$lib" ]; then \
		echo "error: libOpenCL.so.1 (the OpenCL ICD loader) not found; run: bash scripts/install-opencl.sh" >&2; exit 1; \
	fi; \
	ln -sfn "$$lib" $@; echo "linked $@ -> $$lib"

opencl-deps:
	@bash scripts/install-opencl.sh || { \
		echo "error: the OpenCL backend needs OpenCL (headers, ICD loader, PoCL or a GPU driver); see the message above" >&2; exit 1; }

test-opencl: opencl-deps opencl-lib
	$(OPENCL_GOENV) $(GO) vet -tags opencl ./...
	$(OPENCL_GOENV) $(GO) test -count=1 -timeout $(OPENCL_TESTTIMEOUT) -tags opencl $(OPENCL_PKGS)
	$(OPENCL_GOENV) $(GO) build -tags opencl -o /dev/null ./cmd/kiln

build-opencl: opencl-lib
	$(OPENCL_GOENV) $(GO) build -tags opencl -o $(BIN) ./cmd/kiln

# `make build` / `make run` with BACKEND=opencl compile the backend in: the
# flags are exported to the build recipe only (GOFLAGS carries the tag).
# Like test-opencl they install OpenCL first (opencl-deps, idempotent), so
# they work on a fresh machine.
ifeq ($(BACKEND),opencl)
build: opencl-deps opencl-lib
build: export GOFLAGS := $(strip $(GOFLAGS) -tags=opencl)
build: export CGO_ENABLED := 1
build: export CGO_CFLAGS := $(OPENCL_CGO_CFLAGS)
build: export CGO_LDFLAGS := $(OPENCL_CGO_LDFLAGS)
endif
