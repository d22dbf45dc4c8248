//go:build opencl

package opencl

import (
	"bytes"
	"fmt"
	"strings"
	"unsafe"

	"github.com/go-gl/cl/v1.2/cl"
)

// DeviceType classifies a device.
type DeviceType int

// Device types, in kiln's order of preference.
const (
	TypeGPU DeviceType = iota
	TypeAccelerator
	TypeCPU
	TypeOther
)

// String returns the type's name: "GPU", "accelerator", "CPU" or "other".
func (t DeviceType) String() string {
	switch t {
	case TypeGPU:
		return "GPU"
	case TypeAccelerator:
		return "accelerator"
	case TypeCPU:
		return "CPU"
	}
	return "other"
}

// Platform is one OpenCL platform (one installed driver).
type Platform struct {
	id      cl.PlatformID
	Name    string // CL_PLATFORM_NAME
	Vendor  string // CL_PLATFORM_VENDOR
	Version string // CL_PLATFORM_VERSION
}

// Device is one OpenCL device with the properties kiln reports and uses.
type Device struct {
	id           cl.DeviceId
	Platform     Platform
	Index        int    // position in the list Devices returns
	Name         string // CL_DEVICE_NAME
	Vendor       string // CL_DEVICE_VENDOR
	Driver       string // CL_DRIVER_VERSION
	Version      string // CL_DEVICE_VERSION
	Type         DeviceType
	GlobalMem    int64 // bytes
	MaxAlloc     int64 // largest single buffer in bytes
	LocalMem     int64 // bytes of local memory per work-group
	ComputeUnits int   // CL_DEVICE_MAX_COMPUTE_UNITS
	MaxWorkGroup int   // largest work-group size
	Available    bool  // CL_DEVICE_AVAILABLE
	// UnifiedMemory is CL_DEVICE_HOST_UNIFIED_MEMORY: the device shares the
	// host's memory (an integrated GPU, or a CPU).
	UnifiedMemory bool
}

// Platforms lists the installed OpenCL platforms. With no ICD installed it
// returns an error matching ErrNoPlatform.
func Platforms() ([]Platform, error) {
	var n uint32
	if err := check("clGetPlatformIDs", cl.GetPlatformIDs(0, nil, &n)); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, &Error{Call: "clGetPlatformIDs", Status: statusPlatformNotFoundKHR, Detail: "0 platforms"}
	}
	ids := make([]cl.PlatformID, n)
	if err := check("clGetPlatformIDs", cl.GetPlatformIDs(n, &ids[0], &n)); err != nil {
		return nil, err
	}
	out := make([]Platform, 0, n)
	for _, id := range ids[:n] {
		p := Platform{id: id}
		var err error
		if p.Name, err = platformString(id, cl.PLATFORM_NAME); err != nil {
			return nil, err
		}
		if p.Vendor, err = platformString(id, cl.PLATFORM_VENDOR); err != nil {
			return nil, err
		}
		if p.Version, err = platformString(id, cl.PLATFORM_VERSION); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func platformString(id cl.PlatformID, what cl.PlatformInfo) (string, error) {
	var size uint64
	if err := check("clGetPlatformInfo", cl.GetPlatformInfo(id, what, 0, nil, &size)); err != nil {
		return "", err
	}
	if size == 0 {
		return "", nil
	}
	buf := make([]byte, size)
	if err := check("clGetPlatformInfo", cl.GetPlatformInfo(id, what, size, unsafe.Pointer(&buf[0]), nil)); err != nil {
		return "", err
	}
	return cString(buf), nil
}

// cString trims a NUL-terminated byte string and surrounding blanks.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// Devices lists every device of every platform, in platform order. The
// Index field of each is its position in this list. A platform whose
// devices cannot be listed is skipped; the error names it only when no
// device is left.
func Devices() ([]Device, error) {
	plats, err := Platforms()
	if err != nil {
		return nil, err
	}
	return devicesOf(plats)
}

// getDeviceIDs is cl.GetDeviceIDs; tests replace it to fail a platform.
var getDeviceIDs = cl.GetDeviceIDs

// devicesOf is Devices over the given platforms.
func devicesOf(plats []Platform) ([]Device, error) {
	var out []Device
	var skipped []string
	for _, p := range plats {
		var n uint32
		st := getDeviceIDs(p.id, cl.DEVICE_TYPE_ALL, 0, nil, &n)
		if st == statusDeviceNotFound || (st == statusSuccess && n == 0) {
			continue
		}
		if err := checkf("clGetDeviceIDs", st, "platform %s", p.Name); err != nil {
			skipped = append(skipped, err.Error())
			continue
		}
		ids := make([]cl.DeviceId, n)
		if err := checkf("clGetDeviceIDs", getDeviceIDs(p.id, cl.DEVICE_TYPE_ALL, n, &ids[0], &n), "platform %s", p.Name); err != nil {
			skipped = append(skipped, err.Error())
			continue
		}
		for _, id := range ids[:n] {
			d, err := describe(p, id)
			if err != nil {
				return nil, err
			}
			d.Index = len(out)
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		detail := fmt.Sprintf("%d platforms, no devices", len(plats))
		if len(skipped) > 0 {
			detail += "; skipped " + strings.Join(skipped, "; ")
		}
		return nil, &Error{Call: "clGetDeviceIDs", Status: statusDeviceNotFound, Detail: detail}
	}
	return out, nil
}

func describe(p Platform, id cl.DeviceId) (Device, error) {
	d := Device{id: id, Platform: p}
	var err error
	str := func(what cl.DeviceInfo) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = deviceString(id, what)
		return s
	}
	d.Name = str(cl.DEVICE_NAME)
	d.Vendor = str(cl.DEVICE_VENDOR)
	d.Driver = str(cl.DRIVER_VERSION)
	d.Version = str(cl.DEVICE_VERSION)
	if err != nil {
		return d, err
	}
	var typ uint64
	var mem, maxAlloc, local uint64
	var cu uint32
	var wg uint64
	var avail, unified uint32
	for _, q := range []struct {
		what cl.DeviceInfo
		size uintptr
		ptr  unsafe.Pointer
	}{
		{cl.DEVICE_TYPE, unsafe.Sizeof(typ), unsafe.Pointer(&typ)},
		{cl.DEVICE_GLOBAL_MEM_SIZE, unsafe.Sizeof(mem), unsafe.Pointer(&mem)},
		{cl.DEVICE_MAX_MEM_ALLOC_SIZE, unsafe.Sizeof(maxAlloc), unsafe.Pointer(&maxAlloc)},
		{cl.DEVICE_LOCAL_MEM_SIZE, unsafe.Sizeof(local), unsafe.Pointer(&local)},
		{cl.DEVICE_MAX_COMPUTE_UNITS, unsafe.Sizeof(cu), unsafe.Pointer(&cu)},
		{cl.DEVICE_MAX_WORK_GROUP_SIZE, unsafe.Sizeof(wg), unsafe.Pointer(&wg)},
		{cl.DEVICE_AVAILABLE, unsafe.Sizeof(avail), unsafe.Pointer(&avail)},
		{cl.DEVICE_HOST_UNIFIED_MEMORY, unsafe.Sizeof(unified), unsafe.Pointer(&unified)},
	} {
		if err := checkf("clGetDeviceInfo", cl.GetDeviceInfo(id, q.what, uint64(q.size), q.ptr, nil), "device %s, param %#x", d.Name, uint32(q.what)); err != nil {
			return d, err
		}
	}
	switch {
	case typ&uint64(cl.DEVICE_TYPE_GPU) != 0:
		d.Type = TypeGPU
	case typ&uint64(cl.DEVICE_TYPE_ACCELERATOR) != 0:
		d.Type = TypeAccelerator
	case typ&uint64(cl.DEVICE_TYPE_CPU) != 0:
		d.Type = TypeCPU
	default:
		d.Type = TypeOther
	}
	d.GlobalMem, d.MaxAlloc, d.LocalMem = int64(mem), int64(maxAlloc), int64(local)
	d.ComputeUnits, d.MaxWorkGroup, d.Available, d.UnifiedMemory = int(cu), int(wg), avail != 0, unified != 0
	return d, nil
}

func deviceString(id cl.DeviceId, what cl.DeviceInfo) (string, error) {
	var size uint64
	if err := check("clGetDeviceInfo", cl.GetDeviceInfo(id, what, 0, nil, &size)); err != nil {
		return "", err
	}
	if size == 0 {
		return "", nil
	}
	buf := make([]byte, size)
	if err := check("clGetDeviceInfo", cl.GetDeviceInfo(id, what, size, unsafe.Pointer(&buf[0]), nil)); err != nil {
		return "", err
	}
	return cString(buf), nil
}

// String describes the device in one line.
func (d Device) String() string {
	return fmt.Sprintf("[%d] %s (%s, %s, %s %s, %d compute units, %d MiB)", d.Index, d.Name, d.Type, d.Vendor,
		d.Platform.Name, d.Driver, d.ComputeUnits, d.GlobalMem>>20)
}
