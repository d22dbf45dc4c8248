//go:build !cuda

// The cuda build of this package links gorgonia.org/cu, whose init exits
// the test binary on a host without a GPU: Error is plain Go, tested in
// the default build.

package cuda

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestErrorNamesUnknownCodes: the driver results gorgonia.org/cu prints
// as bare numbers get their name and what to do; others are left as
// they are.
func TestErrorNamesUnknownCodes(t *testing.T) {
	for _, tc := range []struct{ err, want string }{
		{"UnknownErrorCode:222", "cuda: cuModuleLoadData: UnknownErrorCode:222 (CUDA_ERROR_UNSUPPORTED_PTX_VERSION: the driver is older than the PTX"},
		{"UnknownErrorCode:34", "(CUDA_ERROR_STUB_LIBRARY: the libcuda loaded is the toolkit's stub"},
		{"UnknownErrorCode:46", "(CUDA_ERROR_DEVICE_UNAVAILABLE: the device is busy"},
		{"UnknownErrorCode:9999", "cuda: cuModuleLoadData: UnknownErrorCode:9999"},
		{"OutOfMemory", "cuda: cuModuleLoadData: OutOfMemory"},
	} {
		msg := (&Error{Call: "cuModuleLoadData", Err: errors.New(tc.err)}).Error()
		assert.Contains(t, msg, tc.want)
		if tc.err == "UnknownErrorCode:9999" || tc.err == "OutOfMemory" {
			assert.NotContains(t, msg, "(", "no hint for %s", tc.err)
		}
	}
}
