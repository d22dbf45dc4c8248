// Package cpu is kiln's pure-Go CPU backend. It implements backend.Backend
// over the kernels in github.com/kiln-ml/kiln/kernels/cpu and registers
// itself as "cpu" from init.
//
// Buffers are Go slices. Ops run synchronously on the calling goroutine and
// a fixed worker pool (GOMAXPROCS workers) owned by the Backend; Sync has
// nothing to wait for. A Backend must be used from one goroutine at a time
// (Buffer.Free and Stats may be called from any goroutine). Scratch memory
// (GEMM packing, im2col) is owned by the Backend and only grows, so
// steady-state ops allocate nothing.
package cpu
