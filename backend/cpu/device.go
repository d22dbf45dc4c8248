package cpu

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/backend"
	kern "github.com/kiln-ml/kiln/kernels/cpu"
)

// deviceInfo describes the host CPU: the model name from /proc/cpuinfo (else
// GOARCH), GOMAXPROCS compute units, total RAM from /proc/meminfo (else
// 0), and the kernels that run ("avx512 kernels", "avx2 kernels" or
// "generic kernels": the SGEMM micro-kernel, which KILN_CPU_KERNEL may
// force, and the convolution kernels that go with it).
func deviceInfo() backend.DeviceInfo {
	d := backend.DeviceInfo{
		Backend:      Name,
		Name:         runtime.GOARCH,
		ComputeUnits: runtime.GOMAXPROCS(0),
		Driver:       runtime.Version(),
		Features:     kern.DefaultKernel() + " kernels",
	}
	if name, vendor := cpuModel("/proc/cpuinfo"); name != "" {
		d.Name, d.Vendor = name, vendor
	}
	d.MemoryBytes = memTotal("/proc/meminfo")
	return d
}

// cpuModel reads the first "model name" (x86) or "Model"/"Hardware" (arm)
// line and the vendor_id of a cpuinfo file.
func cpuModel(path string) (name, vendor string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name", "Model", "Hardware", "cpu model":
			if name == "" {
				name = v
			}
		case "vendor_id":
			if vendor == "" {
				vendor = v
			}
		}
		if name != "" && vendor != "" {
			break
		}
	}
	return name, vendor
}

// memTotal returns MemTotal of a meminfo file in bytes, or 0.
func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "MemTotal:") {
			continue
		}
		fields := strings.Fields(strings.TrimPrefix(line, "MemTotal:"))
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb < 0 {
			return 0
		}
		return kb * 1024
	}
	return 0
}
