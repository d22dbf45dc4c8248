package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
)

func runPredict(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("predict", "--model FILE [--top K] IMAGE...", stdout, stderr)
	var bf backendFlags
	bf.register(fs)
	modelFile := fs.String("model", "", "model file written by kiln train (required)")
	top := fs.Int("top", 3, "how many classes to print per image")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if *modelFile == "" {
		return fmt.Errorf("--model is required")
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("no images given (pass one or more PNG or JPEG files)")
	}
	if *top <= 0 {
		return fmt.Errorf("--top must be positive, got %d", *top)
	}
	b, err := bf.open(stderr)
	if err != nil {
		return err
	}
	defer b.Close()
	m, meta, err := engine.Load(b, *modelFile)
	if err != nil {
		return err
	}
	defer m.Close()
	in := m.Spec.Input
	probs := make([]float32, m.Classes())
	for _, path := range fs.Args() {
		img, err := decodeFile(path, in[0], in[1], in[2])
		if err != nil {
			return err
		}
		if err := m.Predict(img, 1, probs); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		idx := make([]int, len(probs))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
		fmt.Fprintf(stdout, "%s:", path)
		for _, c := range idx[:min(*top, len(idx))] {
			label := fmt.Sprint(c)
			if c < len(meta.ClassNames) {
				label = meta.ClassNames[c]
			}
			fmt.Fprintf(stdout, "  %s %.4f", label, probs[c])
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

func decodeFile(path string, h, w, c int) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := data.DecodeImage(f, h, w, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}
