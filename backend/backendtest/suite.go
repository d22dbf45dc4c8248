package backendtest

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/backend"
)

// Run checks every op of the backend returned by open against a float64
// reference. It opens the backend once, runs one subtest per op (and one
// nested subtest per case), checks after every case that no buffer leaked,
// and finally checks that Close returns nil.
func Run(t *testing.T, open func(t *testing.T) backend.Backend) {
	t.Helper()
	b := open(t)
	if b == nil {
		t.Fatal("backendtest: open returned a nil backend")
	}
	start := b.Stats()
	for _, s := range suites() {
		t.Run(s.name, func(t *testing.T) {
			for _, c := range s.cases {
				t.Run(c.name, func(t *testing.T) {
					if err := runCase(b, s.name+"/"+c.name, c.run); err != nil {
						t.Error(err)
					}
				})
			}
		})
	}
	if end := b.Stats(); end.LiveBuffers != start.LiveBuffers {
		t.Errorf("%s: %d live buffers after the suite, %d before", b.Name(), end.LiveBuffers, start.LiveBuffers)
	}
	if err := b.Close(); err != nil {
		t.Errorf("%s: Close: %v", b.Name(), err)
	}
}

// suite is the list of cases for one op (or one group such as Errors).
type suite struct {
	name  string
	cases []testCase
}

// testCase is one check. run reports mismatches through the env.
type testCase struct {
	name string
	run  func(e *env)
}

// suites lists every suite Run executes, in order.
func suites() []suite {
	var out []suite
	out = append(out, contractSuites()...)
	out = append(out, memorySuites()...)
	out = append(out, gemmSuites()...)
	out = append(out, convSuites()...)
	out = append(out, poolSuites()...)
	out = append(out, elementwiseSuites()...)
	out = append(out, softmaxSuites()...)
	out = append(out, optimSuites()...)
	out = append(out, gradCheckSuites()...)
	out = append(out, errorSuites()...)
	return out
}

// findSuite returns the cases of the named suite (nil when unknown).
func findSuite(name string) []testCase {
	for _, s := range suites() {
		if s.name == name {
			return s.cases
		}
	}
	return nil
}

// checkSuite runs the cases of the named suite against b and returns the
// errors of the cases that failed, keyed by case name. A name of the form
// "Suite/prefix" runs only the cases whose name starts with prefix.
func checkSuite(b backend.Backend, name string) map[string]error {
	out := map[string]error{}
	suiteName, prefix, _ := strings.Cut(name, "/")
	cases := findSuite(suiteName)
	if cases == nil {
		out["?"] = fmt.Errorf("no suite %q", suiteName)
	}
	for _, c := range cases {
		if !strings.HasPrefix(c.name, prefix) {
			continue
		}
		if err := runCase(b, suiteName+"/"+c.name, c.run); err != nil {
			out[c.name] = err
		}
	}
	return out
}

// slack is the number of extra elements every test buffer gets past the
// length an op is told about; they hold sentinel and must survive the op.
const slack = 5

// sentinel fills the slack of every buffer.
const sentinel = float32(-31337.25)

// maxReported caps the mismatches listed per case.
const maxReported = 12

// abort unwinds a case after a fatal failure; runCase recovers it.
type abort struct{}

// dbuf is a device buffer under test: n elements the op may use followed by
// slack sentinel elements.
type dbuf struct {
	b     backend.Buffer
	n     int
	want  []float32 // full expected contents while the buffer is a pure input; nil otherwise
	freed bool
}

// env holds the state of one case: the backend, a seeded RNG, the buffers
// to free and the failures seen.
type env struct {
	b     backend.Backend
	name  string
	rng   *rand.Rand
	bufs  []*dbuf
	fails []string
	nfail int
}

// runCase runs fn as one case: it recovers panics, syncs, checks that pure
// inputs were left untouched, frees every buffer and checks that the
// backend's live buffer count is back where it started.
func runCase(b backend.Backend, name string, fn func(e *env)) error {
	before := b.Stats()
	e := &env{b: b, name: name, rng: rand.New(rand.NewPCG(seedOf(name), 0x6b696c6e))}
	e.guard(func() {
		fn(e)
		if err := b.Sync(); err != nil {
			e.failf("Sync: %v", err)
		}
		e.checkInputs()
	})
	e.guard(e.freeAll)
	after := b.Stats()
	if after.LiveBuffers != before.LiveBuffers || after.LiveElements != before.LiveElements {
		e.failf("leak: Stats went from %d live buffers (%d elements) to %d (%d elements) although every buffer was freed",
			before.LiveBuffers, before.LiveElements, after.LiveBuffers, after.LiveElements)
	}
	return e.err()
}

// guard runs f, turning a panic into a failure.
func (e *env) guard(f func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(abort); !ok {
				e.record(fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
			}
		}
	}()
	f()
}

func seedOf(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

func (e *env) record(msg string) {
	e.nfail++
	if len(e.fails) < maxReported {
		e.fails = append(e.fails, msg)
	}
}

// failf records a mismatch and continues.
func (e *env) failf(format string, args ...any) {
	e.record(fmt.Sprintf(format, args...))
}

// fatalf records a failure and ends the case.
func (e *env) fatalf(format string, args ...any) {
	e.record(fmt.Sprintf(format, args...))
	panic(abort{})
}

// failed reports whether any failure has been recorded.
func (e *env) failed() bool { return e.nfail > 0 }

func (e *env) err() error {
	if e.nfail == 0 {
		return nil
	}
	msg := strings.Join(e.fails, "\n")
	if e.nfail > len(e.fails) {
		msg += fmt.Sprintf("\n... and %d more mismatches", e.nfail-len(e.fails))
	}
	return errors.New(e.b.Name() + ": " + e.name + ":\n" + msg)
}

// do checks the error an op returned; any error ends the case.
func (e *env) do(op string, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, backend.ErrNotImplemented) {
		e.fatalf("%s: not implemented (conformance requires every op): %v", op, err)
	}
	e.fatalf("%s: unexpected error: %v", op, err)
}

// raw allocates n elements directly and registers the buffer for freeing.
func (e *env) raw(n int) *dbuf {
	buf, err := e.b.Alloc(n)
	e.do(backend.OpAlloc, err)
	if buf == nil {
		e.fatalf("Alloc(%d) returned a nil buffer and no error", n)
	}
	d := &dbuf{b: buf, n: n}
	e.bufs = append(e.bufs, d)
	return d
}

// withSlack returns data followed by slack sentinels.
func withSlack(data []float32) []float32 {
	full := make([]float32, len(data)+slack)
	copy(full, data)
	for i := len(data); i < len(full); i++ {
		full[i] = sentinel
	}
	return full
}

// input allocates a buffer holding data (plus sentinel slack) that the op
// must not modify; runCase checks it at the end.
func (e *env) input(data []float32) *dbuf {
	d := e.state(data)
	d.want = withSlack(data)
	return d
}

// state allocates a buffer holding data (plus sentinel slack) that the op
// may modify in its first len(data) elements.
func (e *env) state(data []float32) *dbuf {
	d := e.raw(len(data) + slack)
	d.n = len(data)
	e.do(backend.OpUpload, e.b.Upload(d.b, withSlack(data)))
	return d
}

// output allocates n elements pre-filled with v (NaN for ops that must
// overwrite) followed by sentinel slack.
func (e *env) output(n int, v float32) *dbuf {
	return e.state(filled(n, v))
}

// upload replaces the first len(data) elements of d.
func (e *env) upload(d *dbuf, data []float32) {
	e.do(backend.OpUpload, e.b.Upload(d.b, data))
	if d.want != nil {
		copy(d.want, data)
	}
}

// read downloads d, checks its slack still holds the sentinel, and returns
// its first d.n elements.
func (e *env) read(what string, d *dbuf) []float32 {
	full := make([]float32, d.n+slack)
	e.do(backend.OpDownload, e.b.Download(full, d.b))
	bad := 0
	for i := d.n; i < len(full); i++ {
		if math.Float32bits(full[i]) != math.Float32bits(sentinel) {
			bad++
		}
	}
	if bad > 0 {
		e.failf("%s: op wrote past the %d elements it was given: %d of the %d trailing elements changed (first: %v)",
			what, d.n, bad, slack, full[d.n:])
	}
	return full[:d.n]
}

// checkInputs verifies that every pure input buffer is unchanged.
func (e *env) checkInputs() {
	for i, d := range e.bufs {
		if d.want == nil || d.freed {
			continue
		}
		got := make([]float32, len(d.want))
		e.do(backend.OpDownload, e.b.Download(got, d.b))
		for j := range got {
			if math.Float32bits(got[j]) != math.Float32bits(d.want[j]) {
				e.failf("input buffer #%d was modified at element %d (of %d used): got %g want %g", i, j, d.n, got[j], d.want[j])
				break
			}
		}
	}
}

func (e *env) freeAll() {
	for _, d := range e.bufs {
		if !d.freed {
			d.freed = true
			d.b.Free()
		}
	}
	e.bufs = nil
}

// uniform returns n values uniform in [lo, hi).
func (e *env) uniform(n int, lo, hi float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(lo + (hi-lo)*e.rng.Float64())
	}
	return out
}

func filled(n int, v float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

var nan32 = float32(math.NaN())

// near compares got with want element-wise; tol gives the allowed absolute
// difference for element i. NaN never matches.
func (e *env) near(what string, got []float32, want []float64, tol func(i int) float64) {
	if len(got) != len(want) {
		e.fatalf("%s: internal: compare %d values with %d", what, len(got), len(want))
	}
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		tl := tol(i)
		if !(d <= tl) {
			e.failf("%s[%d]: got %.9g want %.9g (|diff| %.3g > tol %.3g)", what, i, got[i], want[i], d, tl)
		}
	}
}

// exact compares got with want for equality (as values: -0 equals 0).
func (e *env) exact(what string, got []float32, want []float64) {
	e.near(what, got, want, func(int) float64 { return 0 })
}

// dotTol is the tolerance of a sum of k products whose absolute values add
// up to scale[i]: 1e-5·√k·scale[i].
func dotTol(k int, scale []float64) func(i int) float64 {
	f := 1e-5 * math.Sqrt(float64(max(k, 1)))
	return func(i int) float64 { return f * scale[i] }
}

func relTol(rel, abs float64, want []float64) func(i int) float64 {
	return func(i int) float64 { return rel*math.Abs(want[i]) + abs }
}

func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// exactly returns n values 1 + j·2⁻¹² (0 ≤ j < 4096). Multiplied by values
// from signs and summed over fewer than 2048 terms, every product and every
// partial sum is exactly representable in float32, in any order, so a
// float32 backend computes such sums exactly while reduced-precision paths
// (TF32, fp16, bf16) do not.
func (e *env) exactly(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = 1 + float32(e.rng.IntN(4096))/4096
	}
	return out
}

// signs returns n values from {-1, 0, 1}.
func (e *env) signs(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(e.rng.IntN(3) - 1)
	}
	return out
}

// exactTol is the tolerance of the exact-arithmetic cases: 1e-6 of the sum
// of |terms| (a float32 computation is exact; TF32 misses by ~1e-4).
func exactTol(scale []float64) func(i int) float64 {
	return func(i int) float64 { return 1e-6 * scale[i] }
}
