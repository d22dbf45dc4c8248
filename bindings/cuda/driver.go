//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"gorgonia.org/cu"
)

func wrap(call string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Call: call, Err: err}
}

// Devices lists the devices the driver sees. The driver was initialised by
// gorgonia.org/cu's init.
func Devices() ([]DeviceInfo, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, wrap("cuDeviceGetCount", err)
	}
	out := make([]DeviceInfo, 0, n)
	for i := 0; i < n; i++ {
		d, err := deviceInfo(i)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func deviceInfo(ordinal int) (DeviceInfo, error) {
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return DeviceInfo{}, wrap("cuDeviceGet", err)
	}
	info := DeviceInfo{Ordinal: ordinal, Driver: cu.Version()}
	if info.Name, err = dev.Name(); err != nil {
		return info, wrap("cuDeviceGetName", err)
	}
	if info.MemoryBytes, err = dev.TotalMem(); err != nil {
		return info, wrap("cuDeviceTotalMem", err)
	}
	if info.SMs, err = dev.Attribute(cu.MultiprocessorCount); err != nil {
		return info, wrap("cuDeviceGetAttribute(MULTIPROCESSOR_COUNT)", err)
	}
	if info.Major, info.Minor, err = dev.ComputeCapability(); err != nil {
		return info, wrap("cuDeviceGetAttribute(COMPUTE_CAPABILITY)", err)
	}
	return info, nil
}

// Function is a loaded kernel.
type Function struct {
	fn   cu.Function
	name string // the kernel's name, for errors
}

// Event is a stream event, for timing.
type Event struct{ ev cu.Event }

// Context is a CUDA context with one stream, owned by one goroutine locked
// to its OS thread. Every method sends its work to that goroutine and waits
// for it, so a Context may be called from any goroutine; calls are executed
// one at a time in the order they arrive.
type Context struct {
	owner
	info   DeviceInfo
	ctx    cu.CUContext
	stream cu.Stream
	mods   []cu.Module
	stage  stager // host copies go through it (see stager)
}

// NewContext creates a context and a stream on device ordinal.
func NewContext(ordinal int) (*Context, error) {
	info, err := deviceInfo(ordinal)
	if err != nil {
		return nil, err
	}
	c := &Context{owner: newOwner(), info: info}
	started := make(chan error, 1)
	go c.loop(ordinal, started)
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// loop is the owner goroutine.
func (c *Context) loop(ordinal int, started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(c.done)
	dev := cu.Device(ordinal)
	ctx, err := dev.MakeContext(cu.SchedBlockingSync)
	if err != nil {
		started <- wrap("cuCtxCreate", err)
		return
	}
	c.ctx = ctx
	stream, err := cu.MakeStream(cu.NonBlocking)
	if err != nil {
		c.ctx.Destroy()
		started <- wrap("cuStreamCreate", err)
		return
	}
	c.stream = stream
	started <- nil
	c.serve()
}

// Info describes the context's device.
func (c *Context) Info() DeviceInfo { return c.info }

// Close waits for the stream, unloads modules and destroys the stream and
// the context. Device memory still allocated is released with the context.
// Closing twice returns nil; calls after Close return ErrClosed.
func (c *Context) Close() error {
	return c.shutdown(func() error {
		var errs []error
		errs = append(errs, wrap("cuStreamSynchronize", c.stream.Synchronize()))
		for _, m := range c.mods {
			errs = append(errs, wrap("cuModuleUnload", m.Unload()))
		}
		errs = append(errs, wrap("cuStreamDestroy", c.stream.Destroy()))
		errs = append(errs, wrap("cuCtxDestroy", c.ctx.Destroy()))
		return errors.Join(errs...)
	})
}

// MemInfo returns the free and total device memory.
func (c *Context) MemInfo() (free, total int64, err error) {
	err = c.do(func() error {
		var e error
		free, total, e = cu.MemInfo()
		return wrap("cuMemGetInfo", e)
	})
	return free, total, err
}

// Alloc allocates bytes of device memory.
func (c *Context) Alloc(bytes int64) (DevicePtr, error) {
	var p cu.DevicePtr
	err := c.do(func() error {
		var e error
		p, e = cu.MemAlloc(bytes)
		return wrap("cuMemAlloc", e)
	})
	return DevicePtr(p), err
}

// Free releases device memory; it waits for the stream first so no queued
// kernel still uses it.
func (c *Context) Free(p DevicePtr) error {
	return c.do(func() error {
		if err := c.stream.Synchronize(); err != nil {
			return wrap("cuStreamSynchronize", err)
		}
		return wrap("cuMemFree", cu.MemFree(cu.DevicePtr(p)))
	})
}

// Upload copies src to dst on the stream, through the staging buffer (see
// stager). It returns once src may be reused (pageable memory is staged by
// the driver before the call returns, so the staging buffer may be too).
func (c *Context) Upload(dst DevicePtr, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	return c.do(func() error {
		return c.stage.each(len(src), func(lo, hi int, stage []float32) error {
			copy(stage, src[lo:hi])
			return wrap("cuMemcpyHtoDAsync", cu.MemcpyHtoDAsync(cu.DevicePtr(dst)+cu.DevicePtr(4*lo), unsafe.Pointer(&stage[0]), int64(hi-lo)*4, c.stream))
		})
	})
}

// Download waits for the stream, then copies len(dst) elements from src,
// through the staging buffer (see stager).
func (c *Context) Download(dst []float32, src DevicePtr) error {
	return c.do(func() error {
		return c.download(len(dst), src, func(lo int, stage []float32) { copy(dst[lo:], stage) })
	})
}

// DownloadInt32 waits for the stream, then copies len(dst) int32 values,
// through the staging buffer (see stager).
func (c *Context) DownloadInt32(dst []int32, src DevicePtr) error {
	return c.do(func() error {
		return c.download(len(dst), src, func(lo int, stage []float32) {
			for i, v := range stage {
				dst[lo+i] = int32(math.Float32bits(v))
			}
		})
	})
}

// download copies n 4-byte values from src into the staging buffer a piece
// at a time, each queued behind the stream's work and waited for, handing
// each piece to put; with n = 0 it only waits for the stream. It runs on
// the owner goroutine.
func (c *Context) download(n int, src DevicePtr, put func(lo int, stage []float32)) error {
	if n == 0 {
		return wrap("cuStreamSynchronize", c.stream.Synchronize())
	}
	return c.stage.each(n, func(lo, hi int, stage []float32) error {
		if err := cu.MemcpyDtoHAsync(unsafe.Pointer(&stage[0]), cu.DevicePtr(src)+cu.DevicePtr(4*lo), int64(hi-lo)*4, c.stream); err != nil {
			return wrap("cuMemcpyDtoHAsync", err)
		}
		if err := wrap("cuStreamSynchronize", c.stream.Synchronize()); err != nil {
			return err
		}
		put(lo, stage)
		return nil
	})
}

// CopyDtoD queues a device-to-device copy of bytes.
func (c *Context) CopyDtoD(dst, src DevicePtr, bytes int64) error {
	if bytes == 0 {
		return nil
	}
	return c.do(func() error {
		return wrap("cuMemcpyDtoDAsync", cu.MemcpyDtoDAsync(cu.DevicePtr(dst), cu.DevicePtr(src), bytes, c.stream))
	})
}

// Memset32 queues setting n 32-bit words at dst to v.
func (c *Context) Memset32(dst DevicePtr, v uint32, n int64) error {
	if n == 0 {
		return nil
	}
	return c.do(func() error {
		return wrap("cuMemsetD32Async", cu.MemsetD32Async(cu.DevicePtr(dst), uint(v), n, c.stream))
	})
}

// Sync waits for all work queued on the stream.
func (c *Context) Sync() error {
	return c.do(func() error { return wrap("cuStreamSynchronize", c.stream.Synchronize()) })
}

// LoadPTX loads a module from PTX text and returns the named functions.
func (c *Context) LoadPTX(ptx string, names []string) (map[string]Function, error) {
	fns := make(map[string]Function, len(names))
	err := c.do(func() error {
		mod, err := cu.LoadData(ptx)
		if err != nil {
			return wrap("cuModuleLoadData", err)
		}
		c.mods = append(c.mods, mod)
		for _, n := range names {
			fn, err := mod.Function(n)
			if err != nil {
				return wrap("cuModuleGetFunction("+n+")", err)
			}
			fns[n] = Function{fn: fn, name: n}
		}
		return nil
	})
	return fns, err
}

// Launch queues fn on the stream.
func (c *Context) Launch(fn Function, grid, block Dim, sharedBytes int, args ...Arg) error {
	return c.do(func() error {
		params := make([]unsafe.Pointer, len(args))
		for i := range args {
			params[i] = unsafe.Pointer(&args[i])
		}
		err := fn.fn.Launch(max(grid.X, 1), max(grid.Y, 1), max(grid.Z, 1),
			max(block.X, 1), max(block.Y, 1), max(block.Z, 1), sharedBytes, c.stream, params)
		if err != nil { // the kernel and its geometry name what failed
			return wrap(fmt.Sprintf("cuLaunchKernel(%s, grid %dx%dx%d, block %dx%dx%d, %d bytes shared)", fn.name,
				grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, sharedBytes), err)
		}
		return nil
	})
}

// NewEvent creates an event for timing.
func (c *Context) NewEvent() (Event, error) {
	var ev cu.Event
	err := c.do(func() error {
		var e error
		ev, e = cu.MakeEvent(cu.DefaultEvent)
		return wrap("cuEventCreate", e)
	})
	return Event{ev: ev}, err
}

// Record queues ev on the stream.
func (c *Context) Record(ev Event) error {
	return c.do(func() error { return wrap("cuEventRecord", ev.ev.Record(c.stream)) })
}

// Elapsed waits for end and returns the milliseconds between start and end.
func (c *Context) Elapsed(start, end Event) (float64, error) {
	var ms float64
	err := c.do(func() error {
		if err := end.ev.Synchronize(); err != nil {
			return wrap("cuEventSynchronize", err)
		}
		var e error
		ms, e = start.ev.Elapsed(end.ev)
		return wrap("cuEventElapsedTime", e)
	})
	return ms, err
}

// DestroyEvent releases ev.
func (c *Context) DestroyEvent(ev Event) error {
	return c.do(func() error { return wrap("cuEventDestroy", cu.DestroyEvent(&ev.ev)) })
}

// Run executes f on the owner goroutine with the context current, for
// libraries that need it (cuBLAS). It must not call other Context methods.
func (c *Context) Run(f func() error) error { return c.do(f) }

// Stream returns the raw stream handle for libraries that queue work on it
// (cuBLAS); use it only inside Run.
func (c *Context) Stream() cu.Stream { return c.stream }

// String names the device.
func (c *Context) String() string {
	return fmt.Sprintf("%s (sm_%d%d)", c.info.Name, c.info.Major, c.info.Minor)
}
