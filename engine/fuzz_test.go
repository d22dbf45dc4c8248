package engine

import (
	"testing"

	"github.com/kiln-ml/kiln/backend/cpu"
)

// FuzzParseSpec feeds arbitrary bytes to the model spec parser. A spec it
// accepts must have positive shapes and, when small, build on the CPU
// backend; nothing may panic or allocate without bound.
func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":[3,3],"activation":"relu"},{"type":"maxpool2d"},{"type":"flatten"},{"type":"dense","units":10,"activation":"softmax"}]}`))
	f.Add([]byte(`{"input":[7,6,2],"layers":[{"type":"conv2d","filters":3,"kernel":[3,3],"padding":"same","strides":[2,1]},{"type":"relu"},{"type":"flatten"},{"type":"dropout","rate":0.5},{"type":"dense","units":3,"activation":"softmax"}]}`))
	f.Add([]byte(`{"input":[8,8,1],"layers":[{"type":"maxpool2d","pool":[2,2],"strides":[2,0]},{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}`))
	f.Add([]byte(`{"input":[4,4,1],"layers":[{"type":"conv2d","filters":4611686018427387904,"kernel":[3,3]},{"type":"flatten"},{"type":"dense","units":2,"activation":"softmax"}]}`))
	b := cpu.New()
	defer b.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseSpec(data)
		if err != nil {
			return
		}
		shapes, err := spec.Shapes()
		if err != nil {
			t.Fatalf("ParseSpec accepted a spec Shapes rejects: %v", err)
		}
		small := prod(spec.Input) <= 1<<12
		for _, s := range shapes {
			for _, d := range s {
				if d <= 0 {
					t.Fatalf("non-positive dimension in %v", shapes)
				}
			}
			small = small && prod(s) <= 1<<12
		}
		ps, err := spec.paramShapes()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			small = small && prod(p.shape) <= 1<<16
		}
		if !small {
			return
		}
		m, err := New(b, spec, 1)
		if err != nil {
			t.Fatalf("a small valid spec does not build: %v", err)
		}
		m.Close()
		if n := b.Stats().LiveBuffers; n != 0 {
			t.Fatalf("%d buffers left after Close", n)
		}
	})
}
