package server

import (
	"image"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeModelWeights saves a test model whose convolution kernel is all
// ones and whose dense kernel alternates +dense and -dense (biases zero)
// to path. Inputs of zeros give finite outputs (the warm-up passes); an
// input whose convolution overflows float32 (a value near 3.4e38 with
// dense 1, or any bright pixel with dense 1e38) gives NaN.
func writeModelWeights(t *testing.T, path string, dense float32) {
	t.Helper()
	b := cpu.New()
	defer b.Close()
	m, err := engine.New(b, testSpec(), 1)
	require.NoError(t, err)
	defer m.Close()
	for _, p := range m.Params() {
		w := make([]float32, p.Len())
		for i := range w {
			switch {
			case strings.HasPrefix(p.Name, "conv") && strings.HasSuffix(p.Name, "/kernel"):
				w[i] = 1
			case strings.HasPrefix(p.Name, "dense") && strings.HasSuffix(p.Name, "/kernel"):
				w[i] = dense * float32(1-2*(i%2))
			}
		}
		require.NoError(t, b.Upload(p.W, w))
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, m.Save(path, engine.ModelMeta{ClassNames: []string{"cat", "dog", "eel"}, Scale: 1.0 / 255}))
}

// TestNonFiniteOutputs: a request whose outputs come out NaN or infinite
// is answered with an error naming the problem instead of 200 with null
// probabilities and class 0: 400 on /infer (a finite input far outside
// the model's range overflows it), 500 on :classify (its input is an
// image in [0, 1]: the model is broken). A request sharing its batch is
// answered as usual.
func TestNonFiniteOutputs(t *testing.T) {
	dir := t.TempDir()
	overflows, broken := filepath.Join(dir, "overflows.kiln"), filepath.Join(dir, "broken.kiln")
	writeModelWeights(t, overflows, 1)
	writeModelWeights(t, broken, 1e38)
	ts := startServer(t, Config{MaxBatch: 2, MaxQueueDelay: 5 * time.Second}, func(s *Server) error {
		if err := s.AddModel("overflows", overflows); err != nil {
			return err
		}
		return s.AddModel("broken", broken)
	})
	one := []int{1, testH, testW, testC}
	huge := make([]float32, testH*testW*testC)
	for i := range huge {
		huge[i] = 3.4e38
	}
	white := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range white.Pix {
		white.Pix[i] = 255
	}
	tests := []struct {
		name, model, path string
		body              []byte
		paired            bool // sent with a good request, to share its batch
		code              int
		want              string
	}{
		{"huge FP32 input", "overflows", "/v2/models/overflows/infer", inferBody(t, "FP32", one, huge, ``), true, 400,
			"the output of model overflows for this input is not finite (sample 0, class 0: NaN): inputs far outside the range the model was trained on overflow it"},
		{"huge input, class output only", "overflows", "/v2/models/overflows/infer", inferBody(t, "FP32", one, huge, `"outputs":[{"name":"class"}],`), true, 400,
			"is not finite"},
		{"huge second sample", "overflows", "/v2/models/overflows/infer", inferBody(t, "FP32", []int{2, testH, testW, testC}, append(make([]float32, len(huge)), huge...), ``), false, 400,
			"is not finite (sample 1, class 0: NaN)"},
		{"classify with a broken model", "broken", "/v1/models/broken:classify", pngOf(t, white), true, 500,
			"model broken produced non-finite outputs (class 0: NaN) for an image whose values are all in [0, 1]: the model is broken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sum0, n0 := histSum(t, ts.s, "kiln_batch_size")
			var wg sync.WaitGroup
			var good response
			if tc.paired {
				// zeros: finite outputs on both models
				body := inferBody(t, "UINT8", one, make([]int, testH*testW*testC), ``)
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := ts.try(ts.client, "POST", "/v2/models/"+tc.model+"/infer", body)
					assert.NoError(t, err)
					good = r
				}()
			}
			r := ts.do(t, "POST", tc.path, tc.body)
			wg.Wait()
			assert.Equal(t, tc.code, r.code, "body %s", r.body)
			assert.Contains(t, r.json(t)["error"], tc.want)
			assert.NotContains(t, string(r.body), "null")
			if !tc.paired {
				return
			}
			sum1, n1 := histSum(t, ts.s, "kiln_batch_size")
			assert.Equal(t, []float64{2, 1}, []float64{sum1 - sum0, float64(n1 - n0)}, "the two requests ran as one batch")
			require.Equal(t, 200, good.code, "body %s", good.body)
			assert.NotContains(t, string(good.body), "null")
			assert.InDeltaSlice(t, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, probsOf(t, good), 1e-6)
		})
	}
}
