//go:build !cuda

package rtc

// Version reports ErrNoNVRTC: this build has no NVRTC.
func Version() (string, error) { return "", ErrNoNVRTC }

func compile(Request) (string, string, error) { return "", "", ErrNoNVRTC }
