// Package cpu is kiln's pure-Go CPU backend. It implements backend.Backend
// over the kernels in github.com/kiln-ml/kiln/kernels/cpu and registers
// itself as "cpu" from init.
//
// Buffers are Go slices. Ops run synchronously on the calling goroutine and
// a fixed worker pool (GOMAXPROCS workers) owned by the Backend, with two
// exceptions: Conv2D and ReLUBackward are queued until the next op (or
// Sync, Download, Close, Buffer.Data), so that a BiasAdd and an in-place
// ReLU of the convolution's output and a MaxPool2D of it, or a BiasGrad of
// the ReLU gradient, that follow run fused into them, on data still in
// cache (see pendingConv and pendingReLUBack). A Backend must be used
// from one goroutine at a time (Buffer.Free and Stats may be called from
// any goroutine). Scratch memory (GEMM packing, im2col) is owned by the
// Backend and only grows, so steady-state ops allocate nothing.
package cpu
