//go:build cuda

package loader

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef int (*kiln_cuInit_t)(unsigned int);
typedef int (*kiln_cuCount_t)(int *);
typedef int (*kiln_cuVersion_t)(int *);
typedef int (*kiln_cuErrName_t)(int, const char **);

// kiln_cuda_probe loads the driver (lib, normally libcuda.so.1) and counts devices. It returns the stage
// that failed (0: none, 1: dlopen, 2: dlsym, 3: cuInit, 4: cuDeviceGetCount)
// and fills code (the CUresult), count, version and msg (dlerror text or the
// CUresult name). On success the library stays loaded.
static int kiln_cuda_probe(const char *lib, int *code, int *count, int *version, char *msg, int msglen) {
	*code = 0; *count = 0; *version = 0; msg[0] = 0;
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		strncpy(msg, e ? e : "dlopen failed", msglen - 1);
		msg[msglen - 1] = 0;
		return 1;
	}
	kiln_cuInit_t init = (kiln_cuInit_t)dlsym(h, "cuInit");
	kiln_cuCount_t cnt = (kiln_cuCount_t)dlsym(h, "cuDeviceGetCount");
	kiln_cuVersion_t ver = (kiln_cuVersion_t)dlsym(h, "cuDriverGetVersion");
	kiln_cuErrName_t name = (kiln_cuErrName_t)dlsym(h, "cuGetErrorName");
	if (!init || !cnt) {
		strncpy(msg, "cuInit or cuDeviceGetCount not exported", msglen - 1);
		dlclose(h);
		return 2;
	}
	if (ver) ver(version);
	int stage = 0;
	int r = init(0);
	if (r != 0) {
		stage = 3;
	} else {
		r = cnt(count);
		if (r != 0) stage = 4;
	}
	if (stage != 0) {
		*code = r;
		const char *s = 0;
		if (name && name(r, &s) == 0 && s) {
			strncpy(msg, s, msglen - 1);
			msg[msglen - 1] = 0;
		}
		dlclose(h);
	}
	return stage;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/kiln-ml/kiln/backend"
)

// DriverStatus is the result of probing the CUDA driver with dlopen.
type DriverStatus struct {
	Devices int // devices the driver reports
	Version int // driver version (e.g. 12040), 0 when unknown
}

// ProbeDriver checks, without linking libcuda, that libcuda.so.1 loads,
// cuInit(0) succeeds and at least one device is present. The error wraps
// backend.ErrUnavailable and says which step failed and why.
func ProbeDriver() (DriverStatus, error) { return probeLib(DriverLibrary) }

// DriverLibrary is the CUDA driver's soname.
const DriverLibrary = "libcuda.so.1"

func probeLib(lib string) (DriverStatus, error) {
	var code, count, version C.int
	msg := make([]byte, 512)
	clib := C.CString(lib)
	defer C.free(unsafe.Pointer(clib))
	stage := C.kiln_cuda_probe(clib, &code, &count, &version, (*C.char)(unsafe.Pointer(&msg[0])), C.int(len(msg)))
	text := C.GoString((*C.char)(unsafe.Pointer(&msg[0])))
	st := DriverStatus{Devices: int(count), Version: int(version)}
	switch stage {
	case 0:
		if count == 0 {
			return st, fmt.Errorf("%w: the CUDA driver reports no devices", backend.ErrUnavailable)
		}
		return st, nil
	case 1:
		return st, fmt.Errorf("%w: no CUDA driver: cannot load %s (%s)", backend.ErrUnavailable, lib, text)
	case 2:
		return st, fmt.Errorf("%w: %s is not a usable CUDA driver: %s", backend.ErrUnavailable, lib, text)
	case 3:
		return st, fmt.Errorf("%w: cuInit failed with error %d%s (no usable NVIDIA GPU or kernel driver)", backend.ErrUnavailable, int(code), named(text))
	default:
		return st, fmt.Errorf("%w: cuDeviceGetCount failed with error %d%s", backend.ErrUnavailable, int(code), named(text))
	}
}

func named(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}
