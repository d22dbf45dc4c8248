package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/data"
)

func runPredict(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("predict", "--model FILE [--top K] [--invert] IMAGE...", stdout, stderr)
	var bf backendFlags
	bf.register(fs)
	modelFile := fs.String("model", "", "model file written by kiln train (required)")
	top := fs.Int("top", 3, "how many classes to print per image")
	invert := fs.Bool("invert", false, "the images are dark drawings on a light or transparent background: composite onto white and invert them (MNIST-style models were trained on light digits on black)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	// before --model is missing: `predict IMAGE --model FILE` gave --model
	for _, a := range fs.Args() {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && fs.Lookup(name) != nil {
			return fmt.Errorf("%q after the images: flags go before them (kiln predict --model FILE --top 2 IMAGE...)", a)
		}
	}
	if *modelFile == "" {
		return fmt.Errorf("--model is required")
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("no images given (pass one or more PNG or JPEG files)")
	}
	if err := checkOutputs([]namedPath{{"cpuprofile", bf.profile}}, []namedPath{{"model", *modelFile}}); err != nil {
		return err
	}
	if *top <= 0 {
		return fmt.Errorf("--top must be positive, got %d", *top)
	}
	if err := checkModelFile(*modelFile); err != nil {
		return err
	}
	if err := bf.check(); err != nil {
		return err
	}
	stopProfile, err := bf.startProfile(stderr)
	if err != nil {
		return err
	}
	defer stopProfile()
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
	// the decoded pixels are in [0,1]; the model takes raw 0..255 values
	// times its scale, as the server feeds it
	factor := float32(255 * meta.Scale)
	failed := 0
	for _, path := range fs.Args() {
		img, err := decodeFile(path, in[0], in[1], in[2], *invert)
		if err == nil && !*invert {
			switch {
			case flat(img, in[2]):
				// dark strokes on transparency composite onto black and vanish
				fmt.Fprintf(stderr, "kiln predict: %s is blank (one flat colour) as the model sees it: if it is a drawing on a transparent background, add --invert\n", path)
			case darkOnLightExpected(meta.Dataset) && mean(img) > 0.5:
				fmt.Fprintf(stderr, "kiln predict: %s is mostly light, and this model was trained on light shapes on black: if it is a dark drawing on a light background, add --invert\n", path)
			}
		}
		if err == nil {
			for i := range img {
				img[i] *= factor
			}
			if err = m.Predict(img, 1, probs); err != nil {
				err = fmt.Errorf("%s: %w", path, err)
			}
		}
		if err != nil {
			// the other images are still worth an answer
			fmt.Fprintf(stderr, "kiln predict: %v\n", err)
			failed++
			continue
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
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be classified (see above)", failed, fs.NArg())
	}
	return nil
}

func decodeFile(path string, h, w, c int, invert bool) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := data.DecodeImage(f, h, w, c, invert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// darkOnLightExpected reports whether a model trained on the recorded
// dataset expects light shapes on a black background (MNIST, Fashion-MNIST).
func darkOnLightExpected(dataset string) bool {
	switch data.Builtin(dataset) {
	case "mnist", "fashion-mnist":
		return true
	}
	return false
}

func mean(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s / float64(max(len(x), 1))
}

// flat reports whether every pixel of x (c values each) lies within 1/255
// of the first in every channel: an image of one colour.
func flat(x []float32, c int) bool {
	for i, v := range x {
		if d := v - x[i%c]; d > 1.0/255 || d < -1.0/255 {
			return false
		}
	}
	return true
}
