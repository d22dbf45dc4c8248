//go:build opencl

package opencl

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var (
	cacheOnce sync.Once
	cacheDir  string
)

// sharedCache is one kernel cache folder for the whole test binary, so
// only the first Open builds from source. It lives under the OS temp dir
// and is removed by TestMain.
func sharedCache(tb testing.TB) string {
	var err error
	cacheOnce.Do(func() { cacheDir, err = os.MkdirTemp("", "kiln-opencl-test-cache-") })
	if err != nil {
		tb.Fatalf("temp cache dir: %v", err)
	}
	return filepath.Clean(cacheDir)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cacheDir != "" {
		os.RemoveAll(cacheDir)
	}
	os.Exit(code)
}
