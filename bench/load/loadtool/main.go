// Command loadtool supports the server load test without going through the
// kiln CLI: it writes a reference model with random weights, and it
// measures the engine's own inference speed on a model file so that the
// served figures can be compared with it in the same run.
//
//	loadtool model OUT.kiln            reference CNN (MNIST shape), random weights
//	loadtool engine MODEL.kiln [SECS]  batch-64 throughput and batch-1 latency
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/backend"
	_ "github.com/kiln-ml/kiln/backend/cpu" // registers "cpu"
	"github.com/kiln-ml/kiln/engine"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadtool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: loadtool model OUT.kiln | loadtool engine MODEL.kiln [SECONDS]")
	}
	name := os.Getenv("KILN_BACKEND")
	if name == "" {
		name = "cpu"
	}
	b, _, err := backend.Open(name, backend.Options{})
	if err != nil {
		return err
	}
	defer b.Close()
	switch args[0] {
	case "model":
		m, err := engine.New(b, engine.ReferenceSpec(28, 28, 1, 10), 1)
		if err != nil {
			return err
		}
		defer m.Close()
		names := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
		return m.Save(args[1], engine.ModelMeta{ClassNames: names, Scale: 1.0 / 255, Dataset: "untrained"})
	case "engine":
		secs := 10.0
		if len(args) > 2 {
			if secs, err = strconv.ParseFloat(args[2], 64); err != nil {
				return fmt.Errorf("seconds: %w", err)
			}
		}
		m, _, err := engine.Load(b, args[1])
		if err != nil {
			return err
		}
		defer m.Close()
		if err := m.Setup(64); err != nil {
			return err
		}
		images := make([]float32, 64*m.InputLen())
		for i := range images {
			images[i] = float32(i%251) / 255
		}
		probs := make([]float32, 64*m.Classes())
		measure := func(n int, d time.Duration) (int, time.Duration, error) {
			calls := 0
			start := time.Now()
			for time.Since(start) < d {
				if err := m.Predict(images, n, probs); err != nil {
					return 0, 0, err
				}
				calls++
			}
			return calls, time.Since(start), nil
		}
		if _, _, err := measure(64, 200*time.Millisecond); err != nil { // warm-up
			return err
		}
		calls, el, err := measure(64, time.Duration(secs*float64(time.Second)))
		if err != nil {
			return err
		}
		fmt.Printf("engine batch-64: %d calls in %.2fs = %.0f images/s (%.2f ms per call)\n",
			calls, el.Seconds(), float64(64*calls)/el.Seconds(), el.Seconds()*1e3/float64(calls))
		calls, el, err = measure(1, time.Duration(secs*float64(time.Second)/2))
		if err != nil {
			return err
		}
		fmt.Printf("engine batch-1: %d calls in %.2fs = %.1f us per call\n", calls, el.Seconds(), el.Seconds()*1e6/float64(calls))
		return nil
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}
