package bench

import (
	"runtime"
	"sync"
	"time"

	kcpu "github.com/kiln-ml/kiln/kernels/cpu"
)

// Peak sources: which loop measured a peak.
const (
	// PeakAVX512 is 24 independent 512-bit VFMADD231PS per iteration, in
	// Go assembly (amd64 with AVX-512F; kernels/cpu.FMALoop "avx512").
	PeakAVX512 = "avx512-fma-asm"
	// PeakAVX2 is 12 independent 256-bit VFMADD231PS per iteration, in Go
	// assembly (amd64 with AVX2 and FMA; kernels/cpu.FMALoop "avx2").
	PeakAVX2 = "avx2-fma-asm"
	// PeakPlainGo is a scalar float32 multiply-add loop in plain Go with 8
	// independent chains; it is a lower bound far below the SIMD peak and is
	// used only where no assembly loop exists (not amd64).
	PeakPlainGo = "plain-go-scalar"
)

// Peak is the CPU's FP32 peak measured in the same run as the benchmarks:
// every thread runs an FMA loop with enough independent accumulators to
// hide the FMA latency, and the best of several trials counts.
type Peak struct {
	// GFLOPS is the highest peak measured (the widest loop the CPU runs).
	GFLOPS float64 `json:"gflops"`
	// Source names the loop that measured GFLOPS (see the Peak* constants).
	Source string `json:"source"`
	// Threads is the number of goroutines that ran the loop at once
	// (GOMAXPROCS).
	Threads int `json:"threads"`
	// Kernels lists every loop measured, widest first.
	Kernels []PeakKernel `json:"kernels"`
}

// PeakKernel is one measured FMA loop.
type PeakKernel struct {
	Source string  `json:"source"`
	GFLOPS float64 `json:"gflops"`
}

// peakKernel is a loop that runs n iterations of flopsPerIter flops.
type peakKernel struct {
	name         string
	flopsPerIter float64
	run          func(n int)
}

// peakKernels lists the FMA loops this CPU can run, widest first: the
// assembly loops of package kernels/cpu where the CPU has them, then the
// plain-Go one.
func peakKernels() []peakKernel {
	var ks []peakKernel
	for _, k := range []struct{ kernel, source string }{{"avx512", PeakAVX512}, {"avx2", PeakAVX2}} {
		if perIter := kcpu.FMALoop(k.kernel, 1); perIter > 0 {
			name := k.kernel
			ks = append(ks, peakKernel{name: k.source, flopsPerIter: perIter, run: func(n int) { kcpu.FMALoop(name, n) }})
		}
	}
	return append(ks, goKernel())
}

// goKernel is the plain-Go scalar loop: 8 chains of one multiply and one
// add each per iteration (16 flops).
func goKernel() peakKernel {
	return peakKernel{name: PeakPlainGo, flopsPerIter: 16, run: func(n int) { _ = goMulAddLoop(n) }}
}

//go:noinline
func goMulAddLoop(n int) float32 {
	a0, a1, a2, a3, a4, a5, a6, a7 := float32(1), float32(2), float32(3), float32(4), float32(5), float32(6), float32(7), float32(8)
	const m, c = float32(0.999), float32(0.001)
	for i := 0; i < n; i++ {
		a0 = a0*m + c
		a1 = a1*m + c
		a2 = a2*m + c
		a3 = a3*m + c
		a4 = a4*m + c
		a5 = a5*m + c
		a6 = a6*m + c
		a7 = a7*m + c
	}
	return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7
}

// MeasurePeak measures the FP32 peak of this CPU with GOMAXPROCS threads.
// trials loops of about trialTime each run per kernel; the best counts. On
// a shared machine many short trials find the uncontended moments that one
// long trial would average away.
func MeasurePeak(trials int, trialTime time.Duration) Peak {
	if trials < 1 {
		trials = 1
	}
	threads := runtime.GOMAXPROCS(0)
	p := Peak{Threads: threads}
	for _, k := range peakKernels() {
		// Calibrate n so one call takes about trialTime on one thread.
		n := 1 << 12
		for {
			t0 := time.Now()
			k.run(n)
			if el := time.Since(t0); el >= trialTime/4 || n >= 1<<30 {
				n = int(float64(n) * float64(trialTime) / float64(max(el, time.Microsecond)))
				break
			}
			n *= 4
		}
		n = max(n, 1)
		best := 0.0
		for t := 0; t < trials; t++ {
			var wg sync.WaitGroup
			t0 := time.Now()
			for g := 0; g < threads; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					k.run(n)
				}()
			}
			wg.Wait()
			el := time.Since(t0).Seconds()
			best = max(best, float64(threads)*float64(n)*k.flopsPerIter/el/1e9)
		}
		p.Kernels = append(p.Kernels, PeakKernel{Source: k.name, GFLOPS: best})
		if best > p.GFLOPS {
			p.GFLOPS, p.Source = best, k.name
		}
	}
	return p
}

// Merge returns the per-kernel maximum of two measurements of the same CPU,
// such as one taken before and one after a benchmark run.
func (p Peak) Merge(q Peak) Peak {
	out := Peak{Threads: max(p.Threads, q.Threads)}
	byName := map[string]float64{}
	var order []string
	for _, k := range append(append([]PeakKernel{}, p.Kernels...), q.Kernels...) {
		if _, ok := byName[k.Source]; !ok {
			order = append(order, k.Source)
		}
		byName[k.Source] = max(byName[k.Source], k.GFLOPS)
	}
	for _, n := range order {
		out.Kernels = append(out.Kernels, PeakKernel{Source: n, GFLOPS: byName[n]})
		if byName[n] > out.GFLOPS {
			out.GFLOPS, out.Source = byName[n], n
		}
	}
	return out
}
