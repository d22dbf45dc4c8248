//go:build opencl

package opencl

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/go-gl/cl/v1.2/cl"
)

// Context is an OpenCL context on one device with one in-order command
// queue. Release it with Release after releasing everything created from it.
type Context struct {
	dev      *cl.DeviceId // in its own allocation: cgo forbids Go pointers around it
	info     Device
	ctx      cl.Context
	queue    cl.CommandQueue
	profiled bool
	released bool
	// stage is the bounce buffer of Read and Write: cgo refuses a pointer
	// into an allocation that also holds Go pointers (a slice inside a
	// struct, say), so host data goes through this pointer-free slice.
	stage []float32
}

// stageElems bounds the bounce buffer (4 MiB); larger transfers go in
// pieces.
const stageElems = 1 << 20

func (c *Context) staging(n int) []float32 {
	n = min(n, stageElems)
	if len(c.stage) < n {
		c.stage = make([]float32, max(n, min(2*len(c.stage), stageElems)))
	}
	return c.stage[:n]
}

// NewContext creates a context and an in-order queue on d. With profiling,
// launches can be timed (LaunchTimed).
func NewContext(d Device, profiling bool) (*Context, error) {
	c := &Context{dev: new(cl.DeviceId), info: d, profiled: profiling}
	*c.dev = d.id
	var st cl.ErrorCode
	c.ctx = cl.CreateContext(nil, 1, c.dev, nil, nil, &st)
	if err := checkf("clCreateContext", st, "device %s", d.Name); err != nil {
		return nil, err
	}
	var props cl.CommandQueueProperties
	if profiling {
		props |= cl.QUEUE_PROFILING_ENABLE
	}
	c.queue = cl.CreateCommandQueue(c.ctx, *c.dev, props, &st)
	if err := checkf("clCreateCommandQueue", st, "device %s", d.Name); err != nil {
		cl.ReleaseContext(c.ctx)
		return nil, err
	}
	return c, nil
}

// Device returns the device the context runs on.
func (c *Context) Device() Device { return c.info }

// Release waits for queued work and releases the queue and the context.
// Releasing twice is a no-op.
func (c *Context) Release() error {
	if c.released {
		return nil
	}
	c.released = true
	err := check("clFinish", cl.Finish(c.queue))
	cl.ReleaseCommandQueue(c.queue) // returns nothing in go-gl/cl
	return errors.Join(err, check("clReleaseContext", cl.ReleaseContext(c.ctx)))
}

func (c *Context) live() error {
	if c.released {
		return fmt.Errorf("context: %w", ErrReleased)
	}
	return nil
}

// Finish waits for every queued command and reports a deferred error.
func (c *Context) Finish() error {
	if err := c.live(); err != nil {
		return err
	}
	return check("clFinish", cl.Finish(c.queue))
}

// Flush submits queued commands to the device without waiting.
func (c *Context) Flush() error {
	if err := c.live(); err != nil {
		return err
	}
	return check("clFlush", cl.Flush(c.queue))
}

// Buffer is a device buffer of Size bytes.
type Buffer struct {
	mem      cl.Mem
	size     int64
	released bool
}

// Size is the buffer's size in bytes.
func (b *Buffer) Size() int64 { return b.size }

// NewBuffer allocates a read-write device buffer of size bytes (> 0). Its
// contents are undefined.
func (c *Context) NewBuffer(size int64) (*Buffer, error) {
	if err := c.live(); err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, &Error{Call: "clCreateBuffer", Status: statusInvalidBufferSize, Detail: fmt.Sprintf("size %d", size)}
	}
	if c.info.MaxAlloc > 0 && size > c.info.MaxAlloc {
		return nil, &Error{Call: "clCreateBuffer", Status: statusInvalidBufferSize,
			Detail: fmt.Sprintf("%d bytes exceed the device's largest allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE) of %d bytes", size, c.info.MaxAlloc)}
	}
	var st cl.ErrorCode
	m := cl.CreateBuffer(c.ctx, cl.MEM_READ_WRITE, uint64(size), nil, &st)
	if err := checkf("clCreateBuffer", st, "%d bytes", size); err != nil {
		return nil, err
	}
	return &Buffer{mem: m, size: size}, nil
}

// Release frees the buffer. Releasing twice is a no-op.
func (b *Buffer) Release() error {
	if b == nil || b.released {
		return nil
	}
	b.released = true
	return check("clReleaseMemObject", cl.ReleaseMemObject(b.mem))
}

func (c *Context) span(call string, b *Buffer, offset, size int64) error {
	if err := c.live(); err != nil {
		return err
	}
	if b == nil || b.released {
		return fmt.Errorf("%s: buffer: %w", call, ErrReleased)
	}
	if offset < 0 || size < 0 || offset+size > b.size {
		return &Error{Call: call, Status: -30 /* CL_INVALID_VALUE */, Detail: fmt.Sprintf("bytes [%d, %d) outside a buffer of %d", offset, offset+size, b.size)}
	}
	return nil
}

// Write copies src into b starting at element offset (float32 elements)
// and waits until the copy is done, so src may be reused at once.
func (c *Context) Write(b *Buffer, offset int, src []float32) error {
	if len(src) == 0 {
		return c.live()
	}
	if err := c.span("clEnqueueWriteBuffer", b, int64(offset)*4, int64(len(src))*4); err != nil {
		return err
	}
	for done := 0; done < len(src); {
		st := c.staging(len(src) - done)
		copy(st, src[done:])
		off, size := int64(offset+done)*4, int64(len(st))*4
		if err := checkf("clEnqueueWriteBuffer", cl.EnqueueWriteBuffer(c.queue, b.mem, cl.TRUE, uint64(off), uint64(size), unsafe.Pointer(&st[0]), 0, nil, nil), "%d bytes", size); err != nil {
			return err
		}
		done += len(st)
	}
	return nil
}

// Read copies len(dst) elements from b starting at element offset into dst.
// It waits for queued work first (the queue is in order).
func (c *Context) Read(dst []float32, b *Buffer, offset int) error {
	if len(dst) == 0 {
		return c.live()
	}
	if err := c.span("clEnqueueReadBuffer", b, int64(offset)*4, int64(len(dst))*4); err != nil {
		return err
	}
	for done := 0; done < len(dst); {
		st := c.staging(len(dst) - done)
		off, size := int64(offset+done)*4, int64(len(st))*4
		if err := checkf("clEnqueueReadBuffer", cl.EnqueueReadBuffer(c.queue, b.mem, cl.TRUE, uint64(off), uint64(size), unsafe.Pointer(&st[0]), 0, nil, nil), "%d bytes", size); err != nil {
			return err
		}
		copy(dst[done:], st)
		done += len(st)
	}
	return nil
}

// Fill queues setting n float32 elements of b, from element offset, to v
// (bit for bit, NaN payloads included).
func (c *Context) Fill(b *Buffer, offset, n int, v float32) error {
	if n == 0 {
		return c.live()
	}
	off, size := int64(offset)*4, int64(n)*4
	if err := c.span("clEnqueueFillBuffer", b, off, size); err != nil {
		return err
	}
	pattern := v
	return checkf("clEnqueueFillBuffer", cl.EnqueueFillBuffer(c.queue, b.mem, unsafe.Pointer(&pattern), 4, uint64(off), uint64(size), 0, nil, nil), "%d bytes", size)
}

// Copy queues copying n float32 elements from src to dst (both from
// element 0). The regions must not overlap.
func (c *Context) Copy(dst, src *Buffer, n int) error {
	if n == 0 {
		return c.live()
	}
	size := int64(n) * 4
	if err := c.span("clEnqueueCopyBuffer", dst, 0, size); err != nil {
		return err
	}
	if err := c.span("clEnqueueCopyBuffer", src, 0, size); err != nil {
		return err
	}
	return checkf("clEnqueueCopyBuffer", cl.EnqueueCopyBuffer(c.queue, src.mem, dst.mem, 0, 0, uint64(size), 0, nil, nil), "%d bytes", size)
}

// Program is a built OpenCL program.
type Program struct {
	c        *Context
	name     string
	prog     cl.Program
	released bool
}

// Name is the name the program was built under.
func (p *Program) Name() string { return p.name }

// BuildProgram compiles source for the context's device with the given
// options. A compile error is a *BuildError holding the build log.
func (c *Context) BuildProgram(name, source, options string) (*Program, error) {
	if err := c.live(); err != nil {
		return nil, err
	}
	if source == "" {
		return nil, fmt.Errorf("program %q: empty source", name)
	}
	srcs, free := cl.Strs(source)
	defer free()
	lengths := []uint64{uint64(len(source))} // explicit length: the copy has no NUL
	var st cl.ErrorCode
	prog := cl.CreateProgramWithSource(c.ctx, 1, srcs, &lengths[0], &st)
	if err := checkf("clCreateProgramWithSource", st, "program %q", name); err != nil {
		return nil, err
	}
	p := &Program{c: c, name: name, prog: prog}
	if err := p.build(options); err != nil {
		p.Release()
		return nil, err
	}
	return p, nil
}

// ProgramFromBinary loads a binary returned earlier by Program.Binary on
// the same device and driver, and builds it. A binary the driver rejects
// gives an error (callers fall back to BuildProgram).
func (c *Context) ProgramFromBinary(name string, binary []byte, options string) (*Program, error) {
	if err := c.live(); err != nil {
		return nil, err
	}
	if len(binary) == 0 {
		return nil, &Error{Call: "clCreateProgramWithBinary", Status: statusInvalidBinary, Detail: "empty binary"}
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&binary[0])
	ptrs := []*byte{&binary[0]}
	lengths := []uint64{uint64(len(binary))}
	var status int32
	var st cl.ErrorCode
	prog := cl.CreateProgramWithBinary(c.ctx, 1, c.dev, &lengths[0], &ptrs[0], &status, &st)
	if err := checkf("clCreateProgramWithBinary", st, "program %q (binary status %d)", name, status); err != nil {
		return nil, err
	}
	p := &Program{c: c, name: name, prog: prog}
	if status != statusSuccess {
		p.Release()
		return nil, &Error{Call: "clCreateProgramWithBinary", Status: status, Detail: fmt.Sprintf("program %q", name)}
	}
	if err := p.build(options); err != nil {
		p.Release()
		return nil, err
	}
	return p, nil
}

func (p *Program) build(options string) error {
	opts := options + "\x00"
	st := cl.BuildProgram(p.prog, 1, p.c.dev, cl.Str(opts), nil, nil)
	runtime.KeepAlive(opts)
	if st == statusSuccess {
		return nil
	}
	err := checkf("clBuildProgram", st, "options %q", options)
	log, lerr := p.BuildLog()
	if lerr != nil {
		log = fmt.Sprintf("(build log unavailable: %v)", lerr)
	}
	return &BuildError{Program: p.name, Device: p.c.info.Name, Err: err, Log: log}
}

// BuildLog returns the compiler log of the last build on the device.
func (p *Program) BuildLog() (string, error) {
	var size uint64
	if err := check("clGetProgramBuildInfo", cl.GetProgramBuildInfo(p.prog, *p.c.dev, cl.PROGRAM_BUILD_LOG, 0, nil, &size)); err != nil {
		return "", err
	}
	if size == 0 {
		return "", nil
	}
	buf := make([]byte, size)
	if err := check("clGetProgramBuildInfo", cl.GetProgramBuildInfo(p.prog, *p.c.dev, cl.PROGRAM_BUILD_LOG, size, unsafe.Pointer(&buf[0]), nil)); err != nil {
		return "", err
	}
	return cString(buf), nil
}

// Binary returns the device binary of a built program, for caching.
func (p *Program) Binary() ([]byte, error) {
	if p.released {
		return nil, fmt.Errorf("program %q: %w", p.name, ErrReleased)
	}
	var size uint64
	if err := check("clGetProgramInfo", cl.GetProgramInfo(p.prog, cl.PROGRAM_BINARY_SIZES, uint64(unsafe.Sizeof(size)), unsafe.Pointer(&size), nil)); err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, &Error{Call: "clGetProgramInfo", Status: statusInvalidBinary, Detail: "the driver returned an empty binary"}
	}
	bin := make([]byte, size)
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&bin[0])
	ptrs := []*byte{&bin[0]}
	if err := check("clGetProgramInfo", cl.GetProgramInfo(p.prog, cl.PROGRAM_BINARIES, uint64(unsafe.Sizeof(ptrs[0])), unsafe.Pointer(&ptrs[0]), nil)); err != nil {
		return nil, err
	}
	return bin, nil
}

// Release frees the program. Releasing twice is a no-op.
func (p *Program) Release() error {
	if p == nil || p.released {
		return nil
	}
	p.released = true
	return check("clReleaseProgram", cl.ReleaseProgram(p.prog))
}

// Kernel is one kernel of a program, with its arguments set by SetArgs.
type Kernel struct {
	c        *Context
	name     string
	k        cl.Kernel
	released bool
}

// Name is the kernel's function name.
func (k *Kernel) Name() string { return k.name }

// Kernel creates the named kernel of the program.
func (p *Program) Kernel(name string) (*Kernel, error) {
	if p.released {
		return nil, fmt.Errorf("program %q: %w", p.name, ErrReleased)
	}
	cname := name + "\x00"
	var st cl.ErrorCode
	k := cl.CreateKernel(p.prog, cl.Str(cname), &st)
	runtime.KeepAlive(cname)
	if err := checkf("clCreateKernel", st, "kernel %q of program %q", name, p.name); err != nil {
		return nil, err
	}
	return &Kernel{c: p.c, name: name, k: k}, nil
}

// WorkGroupSize returns the largest work-group size the kernel can run with
// on the context's device.
func (k *Kernel) WorkGroupSize() (int, error) {
	var n uint64
	if err := checkf("clGetKernelWorkGroupInfo", cl.GetKernelWorkGroupInfo(k.k, *k.c.dev, cl.KERNEL_WORK_GROUP_SIZE, uint64(unsafe.Sizeof(n)), unsafe.Pointer(&n), nil), "kernel %s", k.name); err != nil {
		return 0, err
	}
	return int(n), nil
}

// Release frees the kernel. Releasing twice is a no-op.
func (k *Kernel) Release() error {
	if k == nil || k.released {
		return nil
	}
	k.released = true
	return check("clReleaseKernel", cl.ReleaseKernel(k.k))
}

// Local is a kernel argument that reserves this many bytes of local memory.
type Local int

// SetArgs sets the kernel's arguments in order. Each must be a *Buffer, an
// int32, uint32, int64, uint64, float32 or a Local; a plain int is rejected
// because its OpenCL width would be ambiguous.
func (k *Kernel) SetArgs(args ...any) error {
	if k.released {
		return fmt.Errorf("kernel %s: %w", k.name, ErrReleased)
	}
	for i, a := range args {
		var st cl.ErrorCode
		idx := uint32(i)
		switch v := a.(type) {
		case *Buffer:
			if v == nil || v.released {
				return fmt.Errorf("clSetKernelArg: kernel %s arg %d: buffer: %w", k.name, i, ErrReleased)
			}
			m := v.mem
			st = cl.SetKernelArg(k.k, idx, uint64(unsafe.Sizeof(m)), unsafe.Pointer(&m))
		case int32:
			st = cl.SetKernelArg(k.k, idx, 4, unsafe.Pointer(&v))
		case uint32:
			st = cl.SetKernelArg(k.k, idx, 4, unsafe.Pointer(&v))
		case float32:
			st = cl.SetKernelArg(k.k, idx, 4, unsafe.Pointer(&v))
		case int64:
			st = cl.SetKernelArg(k.k, idx, 8, unsafe.Pointer(&v))
		case uint64:
			st = cl.SetKernelArg(k.k, idx, 8, unsafe.Pointer(&v))
		case Local:
			st = cl.SetKernelArg(k.k, idx, uint64(v), nil)
		default:
			return fmt.Errorf("clSetKernelArg: kernel %s arg %d: unsupported type %T", k.name, i, a)
		}
		if err := checkf("clSetKernelArg", st, "kernel %s arg %d (%T)", k.name, i, a); err != nil {
			return err
		}
	}
	return nil
}

// Launch queues the kernel over global work-items (1 to 3 dimensions),
// in work-groups of local (nil lets the driver choose). Each global size
// must be a multiple of the local one.
func (c *Context) Launch(k *Kernel, global, local []int) error {
	_, err := c.launch(k, global, local, false)
	return err
}

// LaunchTimed runs the kernel, waits for it, and returns its device time
// from the queue's profiling counters (the context needs profiling).
func (c *Context) LaunchTimed(k *Kernel, global, local []int) (time.Duration, error) {
	if !c.profiled {
		return 0, errors.New("LaunchTimed: the context was created without profiling")
	}
	return c.launch(k, global, local, true)
}

func (c *Context) launch(k *Kernel, global, local []int, timed bool) (time.Duration, error) {
	if err := c.live(); err != nil {
		return 0, err
	}
	if k.released {
		return 0, fmt.Errorf("launch %s: %w", k.name, ErrReleased)
	}
	if len(global) < 1 || len(global) > 3 || (local != nil && len(local) != len(global)) {
		return 0, fmt.Errorf("launch %s: bad work sizes global %v local %v", k.name, global, local)
	}
	var g, l [3]uint64
	for i, v := range global {
		if v <= 0 {
			return 0, fmt.Errorf("launch %s: global size %v must be positive", k.name, global)
		}
		g[i] = uint64(v)
		if local != nil {
			if local[i] <= 0 || v%local[i] != 0 {
				return 0, fmt.Errorf("launch %s: global size %v is not a multiple of local size %v", k.name, global, local)
			}
			l[i] = uint64(local[i])
		}
	}
	var lp *uint64
	if local != nil {
		lp = &l[0]
	}
	if !timed {
		st := cl.EnqueueNDRangeKernel(c.queue, k.k, uint32(len(global)), nil, &g[0], lp, 0, nil, nil)
		return 0, checkf("clEnqueueNDRangeKernel", st, "kernel %s, global %v, local %v", k.name, global, local)
	}
	var ev cl.Event
	st := cl.EnqueueNDRangeKernel(c.queue, k.k, uint32(len(global)), nil, &g[0], lp, 0, nil, &ev)
	if err := checkf("clEnqueueNDRangeKernel", st, "kernel %s, global %v, local %v", k.name, global, local); err != nil {
		return 0, err
	}
	defer cl.ReleaseEvent(ev)
	if err := check("clWaitForEvents", cl.WaitForEvents(1, &ev)); err != nil {
		return 0, err
	}
	var start, end uint64
	if err := check("clGetEventProfilingInfo", cl.GetEventProfilingInfo(ev, cl.PROFILING_COMMAND_START, 8, unsafe.Pointer(&start), nil)); err != nil {
		return 0, err
	}
	if err := check("clGetEventProfilingInfo", cl.GetEventProfilingInfo(ev, cl.PROFILING_COMMAND_END, 8, unsafe.Pointer(&end), nil)); err != nil {
		return 0, err
	}
	return time.Duration(end - start), nil
}
