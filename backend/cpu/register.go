package cpu

import "github.com/kiln-ml/kiln/backend"

func init() {
	backend.Register(backend.Factory{
		Name: Name,
		Open: func(backend.Options) (backend.Backend, error) { return New(), nil },
		Probe: func() ([]backend.DeviceInfo, error) {
			return []backend.DeviceInfo{deviceInfo()}, nil
		},
	})
}
