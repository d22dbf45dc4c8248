package backend

import "math"

// Prod multiplies sizes and returns -1 if any is negative or the product
// overflows an int, so that Need rejects it instead of a kernel indexing
// past a buffer.
func Prod(xs ...int) int {
	p := 1
	for _, x := range xs {
		if x < 0 {
			return -1
		}
		if x != 0 && p > math.MaxInt/x {
			return -1
		}
		p *= x
	}
	return p
}

// Need returns a shape error when any size is not positive, or any of the
// given buffers is nil or holds fewer than the paired number of elements,
// or an output (Req.Out) is also another of the op's buffers.
// Backends call it at the top of each op so every backend rejects the same
// inputs with the same words.
func Need(backend, op string, checks ...Req) error {
	for _, c := range checks {
		if c.N <= 0 {
			return ShapeError(backend, op, "%s: size must be positive, got %d", c.Name, c.N)
		}
		if c.Buf == nil {
			return ShapeError(backend, op, "%s: nil buffer", c.Name)
		}
		if c.Buf.Len() < c.N {
			return ShapeError(backend, op, "%s: buffer holds %d elements, op needs %d", c.Name, c.Buf.Len(), c.N)
		}
	}
	for i, c := range checks {
		if !c.Out {
			continue
		}
		for j, o := range checks {
			switch {
			case j == i || o.Buf != c.Buf:
			case o.Out && j < i: // reported once, from the first of the two
			case o.Out:
				return ShapeError(backend, op, "%s and %s are the same buffer: both are outputs of the op (give each a buffer of its own)", c.Name, o.Name)
			default:
				return ShapeError(backend, op, "%s and %s are the same buffer: the op reads its inputs while it writes %s (give it a buffer of its own)", o.Name, c.Name, c.Name)
			}
		}
	}
	return nil
}

// Req is one requirement checked by Need.
type Req struct {
	Name string
	Buf  Buffer
	N    int
	// Out marks a buffer the op writes while it still reads the others
	// (GEMM's C, a convolution's or pooling's output): it must not be any
	// of them. Element-wise ops, which may run in place, leave it unset.
	Out bool
}

// ConvReqs returns Need's requirements for the three buffers of convolution
// op, given in the order of their shapes (input-shaped, filter-shaped,
// output-shaped), with the one op writes marked Out: y for Conv2D, dx for
// Conv2DBackwardData, dw for Conv2DBackwardFilter.
func ConvReqs(op string, p ConvParams, xName string, x Buffer, wName string, w Buffer, yName string, y Buffer) [3]Req {
	r := [3]Req{{Name: xName, Buf: x, N: p.InLen()}, {Name: wName, Buf: w, N: p.FilterLen()}, {Name: yName, Buf: y, N: p.OutLen()}}
	switch op {
	case OpConv2D:
		r[2].Out = true
	case OpConv2DBackwardData:
		r[0].Out = true
	case OpConv2DBackwardFilter:
		r[1].Out = true
	}
	return r
}

// Positive returns a shape error unless every named size is > 0.
func Positive(backend, op string, sizes map[string]int) error {
	for name, v := range sizes {
		if v <= 0 {
			return ShapeError(backend, op, "%s must be positive, got %d", name, v)
		}
	}
	return nil
}

// Validate checks that the convolution parameters are consistent.
func (p ConvParams) Validate(backend, op string) error {
	if p.N <= 0 || p.H <= 0 || p.W <= 0 || p.C <= 0 || p.KH <= 0 || p.KW <= 0 || p.F <= 0 ||
		p.StrideH <= 0 || p.StrideW <= 0 || p.OutH <= 0 || p.OutW <= 0 {
		return ShapeError(backend, op, "every size and stride must be positive: %+v", p)
	}
	if p.PadTop < 0 || p.PadLeft < 0 {
		return ShapeError(backend, op, "padding must not be negative: %+v", p)
	}
	if !within32(p.H, p.W, p.KH, p.KW, p.StrideH, p.StrideW, p.PadTop, p.PadLeft, p.OutH, p.OutW) {
		return ShapeError(backend, op, "sizes, strides and padding must be at most %d: %+v", math.MaxInt32, p)
	}
	// The last output row/column must start inside the padded input. In
	// int64, as on a 32-bit platform the products of int32-bounded values
	// can wrap an int; the windows' extents must fit an int there too.
	for _, e := range p.Extents() {
		if e > math.MaxInt {
			return ShapeError(backend, op, "the windows' extent does not fit an int on this platform: %+v", p)
		}
	}
	lastH, lastW := int64(p.OutH-1)*int64(p.StrideH), int64(p.OutW-1)*int64(p.StrideW)
	if lastH-int64(p.PadTop) >= int64(p.H) || lastW-int64(p.PadLeft) >= int64(p.W) {
		return ShapeError(backend, op, "output %dx%d does not fit input %dx%d with stride %dx%d and padding %d,%d",
			p.OutH, p.OutW, p.H, p.W, p.StrideH, p.StrideW, p.PadTop, p.PadLeft)
	}
	return nil
}

// Extents are the largest row and column coordinates a convolution's
// kernels form, in int64: H+PadTop, W+PadLeft, and the far edge of the last
// window down and across. Backends whose kernels index with 32-bit ints
// refuse a shape where any passes their bound.
func (p ConvParams) Extents() [4]int64 {
	return [4]int64{int64(p.H) + int64(p.PadTop), int64(p.W) + int64(p.PadLeft),
		int64(p.OutH-1)*int64(p.StrideH) + int64(p.KH), int64(p.OutW-1)*int64(p.StrideW) + int64(p.KW)}
}

// InLen is N·H·W·C, the element count of x (-1 on overflow, see Prod).
func (p ConvParams) InLen() int { return Prod(p.N, p.H, p.W, p.C) }

// FilterLen is KH·KW·C·F, the element count of w (-1 on overflow).
func (p ConvParams) FilterLen() int { return Prod(p.KH, p.KW, p.C, p.F) }

// OutLen is N·OutH·OutW·F, the element count of y (-1 on overflow).
func (p ConvParams) OutLen() int { return Prod(p.N, p.OutH, p.OutW, p.F) }

// Validate checks that the pooling parameters are consistent: every window
// lies inside the input (pooling has no padding).
func (p PoolParams) Validate(backend, op string) error {
	if p.N <= 0 || p.H <= 0 || p.W <= 0 || p.C <= 0 || p.KH <= 0 || p.KW <= 0 ||
		p.StrideH <= 0 || p.StrideW <= 0 || p.OutH <= 0 || p.OutW <= 0 {
		return ShapeError(backend, op, "every size and stride must be positive: %+v", p)
	}
	if !within32(p.H, p.W, p.KH, p.KW, p.StrideH, p.StrideW, p.OutH, p.OutW) {
		return ShapeError(backend, op, "sizes and strides must be at most %d: %+v", math.MaxInt32, p)
	}
	if int64(p.OutH-1)*int64(p.StrideH)+int64(p.KH) > int64(p.H) || int64(p.OutW-1)*int64(p.StrideW)+int64(p.KW) > int64(p.W) {
		return ShapeError(backend, op, "pool windows of %dx%d over %dx%d output do not fit input %dx%d",
			p.KH, p.KW, p.OutH, p.OutW, p.H, p.W)
	}
	return nil
}

// InLen is N·H·W·C (-1 on overflow, see Prod).
func (p PoolParams) InLen() int { return Prod(p.N, p.H, p.W, p.C) }

// OutLen is N·OutH·OutW·C (-1 on overflow).
func (p PoolParams) OutLen() int { return Prod(p.N, p.OutH, p.OutW, p.C) }

// within32 reports whether every value is at most MaxInt32, so that the
// products of two of them in Validate cannot overflow an int64 (a stride of
// 2^62 passed the window checks by wrapping around).
func within32(v ...int) bool {
	for _, x := range v {
		if x > math.MaxInt32 {
			return false
		}
	}
	return true
}
