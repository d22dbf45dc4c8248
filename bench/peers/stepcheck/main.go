// Command stepcheck is the kiln half of a step-by-step cross-check against
// PyTorch (bench/peers/stepcheck.py runs the other half): it builds the
// reference CNN on the CPU backend, writes its initial weights, trains it
// for a number of Adam steps on batches in a fixed, written-down order, and
// writes the loss of every step and the final weights. The Python half
// loads the same weights, trains on the same batches and compares. The
// two then differ only by float32 rounding, so a bug in any kiln op or in
// its optimizer shows as losses and weights that drift apart.
//
//	go run ./bench/peers/stepcheck --data mnist --steps 300 --out out/stepcheck
//
// Files written to --out: params.json (names and shapes, in order),
// init.bin and final.bin (every parameter, float32 little-endian, in that
// order, kiln's layout: conv kernels KH×KW×C×F, dense kernels in×out),
// order.bin (the training image indices, int32 little-endian, one batch
// after another) and kiln.json (per-step mean loss and the settings).
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/kiln-ml/kiln/backend/cpu"
	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
	"github.com/kiln-ml/kiln/internal/atomicfile"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "stepcheck:", err)
		os.Exit(1)
	}
}

type param struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

func run() error {
	dataName := flag.String("data", "mnist", "dataset: mnist, fashion-mnist or an IDX directory")
	dataDir := flag.String("data-dir", "", "directory of the dataset's files (default: where kiln train finds them)")
	steps := flag.Int("steps", 300, "Adam steps to take")
	batch := flag.Int("batch", 32, "batch size")
	seed := flag.Uint64("seed", 1, "seed of the weights and of the batch order")
	out := flag.String("out", "out/stepcheck", "directory for the files this writes")
	flag.Parse()
	if *steps < 1 || *batch < 1 {
		return fmt.Errorf("--steps and --batch must be positive, got %d and %d", *steps, *batch)
	}

	ds, err := data.Load(*dataName, *dataDir, true)
	if err != nil {
		return err
	}
	if *steps**batch > ds.N {
		return fmt.Errorf("%d steps of %d need %d images; %s has %d", *steps, *batch, *steps**batch, ds.Name, ds.N)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	b := cpu.New()
	defer b.Close()
	m, err := engine.New(b, engine.ReferenceSpec(ds.H, ds.W, ds.C, ds.Classes), *seed)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Setup(*batch); err != nil {
		return err
	}
	opt, err := engine.NewOptimizer(b, engine.OptimizerConfig{Name: "adam", LR: 1e-3}, m.Params())
	if err != nil {
		return err
	}
	defer opt.Close()

	var params []param
	for _, p := range m.Params() {
		params = append(params, param{p.Name, p.Shape})
	}
	if err := writeJSON(filepath.Join(*out, "params.json"), params); err != nil {
		return err
	}
	if err := writeParams(b, m, filepath.Join(*out, "init.bin")); err != nil {
		return err
	}

	order := data.Permutation(ds.N, data.NewRand(*seed))[:*steps**batch]
	idx := make([]int32, len(order))
	for i, o := range order {
		idx[i] = int32(o)
	}
	if err := writeFile(filepath.Join(*out, "order.bin"), idx); err != nil {
		return err
	}

	images := make([]float32, *batch*ds.ImageSize())
	labels := make([]float32, *batch)
	losses := make([]float64, *steps)
	for s := range *steps {
		if err := data.Batch(ds, order[s**batch:(s+1)**batch], images, labels); err != nil {
			return err
		}
		sum, _, err := m.TrainStep(images, labels, *batch, opt, 0)
		if err != nil {
			return fmt.Errorf("step %d: %w", s+1, err)
		}
		losses[s] = sum / float64(*batch)
		if (s+1)%50 == 0 || s+1 == *steps {
			fmt.Printf("kiln step %d/%d: loss %.5f\n", s+1, *steps, losses[s])
		}
	}
	if err := writeParams(b, m, filepath.Join(*out, "final.bin")); err != nil {
		return err
	}
	return writeJSON(filepath.Join(*out, "kiln.json"), map[string]any{
		"data": ds.Name, "steps": *steps, "batch": *batch, "seed": *seed,
		"optimizer": "adam lr 1e-3 beta1 0.9 beta2 0.999 eps 1e-7 (Keras form)", "loss": losses,
	})
}

// writeParams downloads every parameter and writes them one after another.
func writeParams(b *cpu.Backend, m *engine.Model, path string) error {
	var all []float32
	for _, p := range m.Params() {
		host := make([]float32, p.Len())
		if err := b.Download(host, p.W); err != nil {
			return fmt.Errorf("download %s: %w", p.Name, err)
		}
		for _, v := range host {
			if math.IsNaN(float64(v)) {
				return fmt.Errorf("%s holds NaN", p.Name)
			}
		}
		all = append(all, host...)
	}
	return writeFile(path, all)
}

// writeFile writes v (a slice of fixed-size values) little-endian to path
// atomically (atomicfile.Write: a synced temporary file renamed over
// path).
func writeFile(path string, v any) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		return binary.Write(w, binary.LittleEndian, v)
	})
}

// writeJSON writes v as indented JSON to path atomically, like writeFile.
func writeJSON(path string, v any) error {
	buf, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(append(buf, '\n'))
		return err
	})
}
