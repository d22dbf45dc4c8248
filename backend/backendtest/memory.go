package backendtest

import (
	"fmt"
	"math"
	"slices"

	"github.com/kiln-ml/kiln/backend"
)

func contractSuites() []suite {
	return []suite{{name: "Contract", cases: []testCase{
		{"Name", func(e *env) {
			if e.b.Name() == "" {
				e.failf("Name() is empty")
			}
		}},
		{"Ops", func(e *env) {
			ops := e.b.Ops()
			for _, op := range backend.AllOps() {
				if !slices.Contains(ops, op) {
					e.failf("Ops() does not list %s (conformance requires every op); Ops() = %v", op, ops)
				}
			}
		}},
	}}}
}

func memorySuites() []suite {
	var allocCases []testCase
	for _, n := range []int{1, 7, 1000, 65537} {
		allocCases = append(allocCases, testCase{fmt.Sprintf("zero_filled_n%d", n), func(e *env) {
			before := e.b.Stats()
			d := e.raw(n)
			after := e.b.Stats()
			if d.b.Len() != n {
				e.fatalf("Alloc(%d).Len() = %d", n, d.b.Len())
			}
			if after.LiveBuffers != before.LiveBuffers+1 || after.Allocs != before.Allocs+1 {
				e.failf("Alloc(%d): Stats went from %+v to %+v, want one more live buffer and alloc", n, before, after)
			}
			if after.LiveElements < before.LiveElements+int64(n) {
				e.failf("Alloc(%d): LiveElements went from %d to %d", n, before.LiveElements, after.LiveElements)
			}
			got := make([]float32, n)
			e.do(backend.OpDownload, e.b.Download(got, d.b))
			e.exact("Alloc", got, make([]float64, n))
		}})
	}
	allocCases = append(allocCases,
		testCase{"zero_filled_after_reuse", func(e *env) {
			// A pooling allocator must clear recycled buffers.
			for round, n := range []int{1000, 1000, 999, 1024, 1000, 4096, 4000} {
				buf, err := e.b.Alloc(n)
				e.do(backend.OpAlloc, err)
				got := make([]float32, n)
				err = e.b.Download(got, buf)
				if err == nil {
					for i, v := range got {
						if v != 0 {
							e.failf("round %d: Alloc(%d) after free is not zero-filled: [%d] = %g", round, n, i, v)
							break
						}
					}
					err = e.b.Fill(buf, n, 7.5)
				}
				if err == nil {
					err = e.b.Sync()
				}
				buf.Free()
				e.do("Download/Fill", err)
			}
		}},
		testCase{"free_twice", func(e *env) {
			before := e.b.Stats()
			buf, err := e.b.Alloc(17)
			e.do(backend.OpAlloc, err)
			buf.Free()
			buf.Free()
			if after := e.b.Stats(); after.LiveBuffers != before.LiveBuffers || after.LiveElements != before.LiveElements {
				e.failf("after Alloc, Free, Free: Stats %+v, want live counts of %+v", after, before)
			}
		}},
	)

	transfer := []testCase{
		{"round_trip_special_values", func(e *env) {
			data := e.uniform(100, -10, 10)
			data[3] = nan32
			data[4] = float32(math.Inf(1))
			data[5] = float32(math.Inf(-1))
			data[6] = float32(math.Copysign(0, -1))
			data[7] = 1e-40 // subnormal
			data[8] = math.MaxFloat32
			d := e.raw(len(data))
			e.do(backend.OpUpload, e.b.Upload(d.b, data))
			got := make([]float32, len(data))
			e.do(backend.OpDownload, e.b.Download(got, d.b))
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(data[i]) {
					e.failf("round trip [%d]: got %g (%#x) want %g (%#x)", i, got[i], math.Float32bits(got[i]), data[i], math.Float32bits(data[i]))
				}
			}
		}},
		{"partial_lengths", func(e *env) {
			d := e.raw(50)
			first := e.uniform(20, -1, 1)
			e.do(backend.OpUpload, e.b.Upload(d.b, first))
			second := e.uniform(5, 2, 3)
			e.do(backend.OpUpload, e.b.Upload(d.b, second))
			want := make([]float64, 50)
			copy(want, to64(first))
			copy(want, to64(second))
			got := make([]float32, 50)
			e.do(backend.OpDownload, e.b.Download(got, d.b))
			e.exact("Upload 20 then 5 of 50", got, want)
			short := make([]float32, 13)
			e.do(backend.OpDownload, e.b.Download(short, d.b))
			e.exact("Download 13 of 50", short, want[:13])
			one := make([]float32, 1)
			e.do(backend.OpDownload, e.b.Download(one, d.b))
			e.exact("Download 1 of 50", one, want[:1])
		}},
	}

	var fill []testCase
	for _, tc := range []struct {
		n   int
		v   float32
		tag string
	}{{1, 2.5, "1"}, {37, -1e30, "37"}, {100, 0, "full_zero"}, {64, nan32, "64_NaN"}, {1023, 3, "1023"}} {
		fill = append(fill, testCase{"n" + tc.tag, func(e *env) {
			total := max(tc.n, 100)
			init := e.uniform(total, -1, 1)
			d := e.state(init)
			e.do(backend.OpFill, e.b.Fill(d.b, tc.n, tc.v))
			got := e.read("Fill", d)
			for i, g := range got {
				want := init[i]
				if i < tc.n {
					want = tc.v
				}
				if math.Float32bits(g) != math.Float32bits(want) && !(math.IsNaN(float64(g)) && math.IsNaN(float64(want))) {
					e.failf("Fill(n=%d, %g)[%d] of %d: got %g want %g", tc.n, tc.v, i, total, g, want)
				}
			}
		}})
	}

	var cp []testCase
	for _, tc := range []struct{ n, srcLen, dstLen int }{{1, 1, 1}, {61, 100, 120}, {100, 100, 100}, {37, 200, 40}, {4097, 4097, 5000}} {
		cp = append(cp, testCase{fmt.Sprintf("n%d_src%d_dst%d", tc.n, tc.srcLen, tc.dstLen), func(e *env) {
			src := e.input(e.uniform(tc.srcLen, -1, 1))
			init := e.uniform(tc.dstLen, 5, 6)
			dst := e.state(init)
			e.do(backend.OpCopy, e.b.Copy(dst.b, src.b, tc.n))
			want := to64(init)
			copy(want, to64(src.want[:tc.n]))
			e.exact("Copy", e.read("Copy dst", dst), want)
		}})
	}
	return []suite{
		{name: "Alloc", cases: allocCases},
		{name: "UploadDownload", cases: transfer},
		{name: "Fill", cases: fill},
		{name: "Copy", cases: cp},
	}
}
