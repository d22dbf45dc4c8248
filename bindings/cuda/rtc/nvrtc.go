//go:build cuda

package rtc

import (
	"errors"
	"fmt"
	"strings"

	"gorgonia.org/cu/nvrtc"
)

// Version returns the NVRTC version as "major.minor".
func Version() (string, error) {
	maj, min, err := nvrtc.Version()
	if err != nil {
		return "", fmt.Errorf("rtc: nvrtcVersion: %w", err)
	}
	return fmt.Sprintf("%d.%d", maj, min), nil
}

// compile runs NVRTC once.
func compile(r Request) (ptx, log string, err error) {
	prog, err := nvrtc.CreateProgram(r.Source, r.Name)
	if err != nil {
		return "", "", fmt.Errorf("rtc: nvrtcCreateProgram %s: %w", r.Name, err)
	}
	defer prog.Destroy()
	opts := append([]string{"--gpu-architecture=" + r.Arch}, r.Options...)
	cerr := prog.Compile(opts...)
	l, lerr := prog.GetLog()
	log = strings.TrimSpace(trimNUL(l))
	if cerr != nil {
		if lerr != nil {
			log = "(no log: " + lerr.Error() + ")"
		}
		if strings.Contains(log, "gpu-architecture") || errors.Is(cerr, nvrtc.InvalidOption) {
			return "", log, &ArchError{Arch: r.Arch, Err: fmt.Errorf("%w: %s", cerr, log)}
		}
		return "", log, &CompileError{Name: r.Name, Arch: r.Arch, Log: log, Err: cerr}
	}
	p, err := prog.GetPTX()
	if err != nil {
		return "", log, fmt.Errorf("rtc: nvrtcGetPTX %s: %w", r.Name, err)
	}
	return trimNUL(p), log, nil
}
