//go:build cuda

package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"plugin"

	"github.com/kiln-ml/kiln/backend"
)

// EnvPlugin names the environment variable that overrides the plugin path.
const EnvPlugin = "KILN_CUDA_PLUGIN"

// PluginFile is the plugin's file name, looked for next to the executable.
const PluginFile = "kiln-cuda.so"

// Symbols the plugin exports.
const (
	SymOpen  = "Open"  // func(backend.Options) (backend.Backend, error)
	SymProbe = "Probe" // func() ([]backend.DeviceInfo, error)
)

func init() {
	backend.Register(backend.Factory{Name: "cuda", Open: Open, Probe: Probe})
}

// PluginPath returns where the plugin is looked for.
func PluginPath() (string, error) {
	if p := os.Getenv(EnvPlugin); p != "" {
		return p, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("%w: cannot locate the executable to find %s: %v (set %s)", backend.ErrUnavailable, PluginFile, err, EnvPlugin)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Join(filepath.Dir(exe), PluginFile), nil
}

// entry points resolved from the plugin
type entry struct {
	open  func(backend.Options) (backend.Backend, error)
	probe func() ([]backend.DeviceInfo, error)
}

// load probes the driver and, when a device is present, opens the plugin.
func load() (entry, error) {
	if _, err := ProbeDriver(); err != nil {
		return entry{}, err
	}
	path, err := PluginPath()
	if err != nil {
		return entry{}, err
	}
	return openPlugin(path)
}

// openPlugin loads path and resolves its symbols. plugin.Open returns the
// already loaded plugin on later calls, so this is cheap after the first.
func openPlugin(path string) (entry, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return entry{}, fmt.Errorf("%w: CUDA backend plugin %s is missing (build it with `make cuda`, or set %s)", backend.ErrUnavailable, path, EnvPlugin)
		}
		return entry{}, fmt.Errorf("%w: CUDA backend plugin %s: %v", backend.ErrUnavailable, path, err)
	}
	p, err := plugin.Open(path)
	if err != nil {
		return entry{}, pluginOpenError(path, err)
	}
	var e entry
	so, err := p.Lookup(SymOpen)
	if err != nil {
		return entry{}, fmt.Errorf("%w: plugin %s: %v", backend.ErrUnavailable, path, err)
	}
	sp, err := p.Lookup(SymProbe)
	if err != nil {
		return entry{}, fmt.Errorf("%w: plugin %s: %v", backend.ErrUnavailable, path, err)
	}
	var ok1, ok2 bool
	e.open, ok1 = so.(func(backend.Options) (backend.Backend, error))
	e.probe, ok2 = sp.(func() ([]backend.DeviceInfo, error))
	if !ok1 || !ok2 {
		return entry{}, fmt.Errorf("%w: plugin %s exports %s/%s with the wrong types (%T, %T)", backend.ErrUnavailable, path, SymOpen, SymProbe, so, sp)
	}
	return e, nil
}

// Open opens the CUDA backend, or says why it cannot run here.
func Open(opts backend.Options) (backend.Backend, error) {
	e, err := load()
	if err != nil {
		return nil, err
	}
	return e.open(opts)
}

// Probe lists the CUDA devices, or says why none can be used.
func Probe() ([]backend.DeviceInfo, error) {
	e, err := load()
	if err != nil {
		return nil, err
	}
	return e.probe()
}
