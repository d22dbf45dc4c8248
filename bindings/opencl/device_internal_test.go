//go:build opencl

package opencl

import (
	"errors"
	"testing"

	"github.com/go-gl/cl/v1.2/cl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDevicesSkipsFailingPlatform: a platform whose devices cannot be
// listed is skipped; it is named in the error only when no device is left.
func TestDevicesSkipsFailingPlatform(t *testing.T) {
	plats, err := Platforms()
	require.NoError(t, err)
	orig := getDeviceIDs
	t.Cleanup(func() { getDeviceIDs = orig })
	bad := plats[0]
	bad.Name = "Broken Platform"
	tests := []struct {
		name  string
		fail  int        // the getDeviceIDs call that fails (CL_INVALID_PLATFORM), from 1
		plats []Platform // bad first
		ok    bool       // the other platforms' devices are listed
	}{
		{"first platform fails on counting", 1, []Platform{bad, plats[0]}, true},
		{"first platform fails on listing", 2, []Platform{bad, plats[0]}, true},
		{"the only platform fails", 1, []Platform{bad}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := devicesOf(tc.plats[1:])
			if tc.ok {
				require.NoError(t, err)
			}
			calls := 0
			getDeviceIDs = func(p cl.PlatformID, typ cl.DeviceType, n uint32, ids *cl.DeviceId, num *uint32) cl.ErrorCode {
				calls++
				if calls == tc.fail {
					return -32 // CL_INVALID_PLATFORM
				}
				return orig(p, typ, n, ids, num)
			}
			defer func() { getDeviceIDs = orig }()
			got, err := devicesOf(tc.plats)
			if !tc.ok {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrNoDevice))
				assert.Contains(t, err.Error(), "1 platforms, no devices; skipped clGetDeviceIDs: CL_INVALID_PLATFORM (-32): platform Broken Platform")
				return
			}
			require.NoError(t, err)
			require.Len(t, got, len(want))
			for i, d := range got {
				assert.Equal(t, i, d.Index)
				assert.Equal(t, want[i].Name, d.Name)
			}
		})
	}
}
