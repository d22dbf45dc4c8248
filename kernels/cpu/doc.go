// Package cpu holds kiln's hand-written CPU kernels: a worker pool, a packed,
// cache-blocked SGEMM, convolution lowered to GEMM through im2col/col2im,
// max pooling, and the element-wise, softmax and optimizer kernels.
//
// Kernels are plain functions over []float32 slices. They do not validate
// their inputs beyond what is needed to stay in bounds: the backend layer
// (backend/cpu) checks sizes first and turns bad sizes into errors. State
// that kernels reuse between calls (packing buffers, the im2col patch
// matrix, parallel job descriptors) lives in workspace values the caller
// owns, so steady-state calls allocate nothing and the package has no
// global mutable state.
//
// A Pool and the workspaces must be used from one goroutine at a time.
package cpu
