package cpu_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/backend/cpu"
)

// TestFilterCacheInvalidation checks that the forward convolution never
// runs on a stale transform of its filter (the Winograd path keeps one per
// filter buffer between calls): after each op that writes the filter
// buffer, Conv2D gives the bits of a fresh backend computing it from the
// filter's new values; and with the filter untouched, the bits of the
// first call.
func TestFilterCacheInvalidation(t *testing.T) {
	p := backend.ConvParams{N: 2, H: 6, W: 6, C: 16, KH: 3, KW: 3, F: 64, StrideH: 1, StrideW: 1, OutH: 4, OutW: 4}
	nx, nw, ny := p.InLen(), p.FilterLen(), p.N*p.OutH*p.OutW*p.F
	r := rand.New(rand.NewPCG(5, 6))
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = r.Float32()*2 - 1
		}
		return v
	}
	// conv runs Conv2D on a fresh backend from downloaded values.
	conv := func(x, w []float32) []float32 {
		b := cpu.New()
		defer b.Close()
		bx, bw, by := alloc(t, b, x...), alloc(t, b, w...), alloc(t, b, make([]float32, ny)...)
		require.NoError(t, b.Conv2D(p, bx, bw, by))
		out := download(t, b, by, ny)
		bx.Free()
		bw.Free()
		by.Free()
		return out
	}
	writes := []struct {
		name  string
		write func(b *cpu.Backend, w, other backend.Buffer)
	}{
		{"Upload", func(b *cpu.Backend, w, _ backend.Buffer) { require.NoError(t, b.Upload(w, vals(nw))) }},
		{"Fill", func(b *cpu.Backend, w, _ backend.Buffer) { require.NoError(t, b.Fill(w, nw/2, 0.25)) }},
		{"Copy", func(b *cpu.Backend, w, o backend.Buffer) { require.NoError(t, b.Copy(w, o, nw)) }},
		{"Gemm", func(b *cpu.Backend, w, o backend.Buffer) {
			require.NoError(t, b.Gemm(false, false, 96, 96, 96, 0.5, o, o, 1, w))
		}},
		{"Mul", func(b *cpu.Backend, w, o backend.Buffer) { require.NoError(t, b.Mul(w, o, w, nw)) }},
		{"ReLU", func(b *cpu.Backend, w, _ backend.Buffer) { require.NoError(t, b.ReLU(w, w, nw)) }},
		{"BiasAdd", func(b *cpu.Backend, w, o backend.Buffer) { require.NoError(t, b.BiasAdd(w, o, 9*16, 64)) }},
		{"SGD", func(b *cpu.Backend, w, o backend.Buffer) {
			vel, err := b.Alloc(nw)
			require.NoError(t, err)
			defer vel.Free()
			require.NoError(t, b.SGD(backend.SGDParams{LR: 0.1, Momentum: 0.9}, w, o, vel, nw))
		}},
		{"Adam", func(b *cpu.Backend, w, o backend.Buffer) {
			m, err := b.Alloc(nw)
			require.NoError(t, err)
			defer m.Free()
			v, err := b.Alloc(nw)
			require.NoError(t, err)
			defer v.Free()
			require.NoError(t, b.Adam(backend.AdamParams{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7, Step: 1}, w, o, m, v, nw))
		}},
		{"Data", func(_ *cpu.Backend, w, _ backend.Buffer) {
			d := w.(*cpu.Buffer).Data()
			for i := range d {
				d[i] = -d[i]
			}
		}},
	}
	for _, wr := range writes {
		t.Run(wr.name, func(t *testing.T) {
			b := open(t)
			x, w0 := vals(nx), vals(nw)
			bx, bw, by := alloc(t, b, x...), alloc(t, b, w0...), alloc(t, b, make([]float32, ny)...)
			other := alloc(t, b, vals(nw)...)
			defer func() {
				for _, buf := range []backend.Buffer{bx, bw, by, other} {
					buf.Free()
				}
			}()
			require.NoError(t, b.Conv2D(p, bx, bw, by))
			first := download(t, b, by, ny)
			require.NoError(t, b.Conv2D(p, bx, bw, by))
			requireBits(t, first, download(t, b, by, ny), "second call, filter untouched")
			wr.write(b, bw, other)
			w1 := download(t, b, bw, nw)
			require.NotEqual(t, w0, w1, "the write changed nothing")
			require.NoError(t, b.Conv2D(p, bx, bw, by))
			requireBits(t, conv(x, w1), download(t, b, by, ny), "after "+wr.name)
			// and again, now from the kept transform of the new values
			require.NoError(t, b.Conv2D(p, bx, bw, by))
			requireBits(t, conv(x, w1), download(t, b, by, ny), "again after "+wr.name)
		})
	}
}

func requireBits(t *testing.T, want, got []float32, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		if want[i] != got[i] {
			require.Failf(t, what, "element %d: got %v, want %v", i, got[i], want[i])
		}
	}
}
