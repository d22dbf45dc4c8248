package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kiln-ml/kiln/backend"
)

func runDevices(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devices", "(no arguments: lists every backend kiln knows, compiled into this binary or not, whether it is usable here, and why not)", stdout, stderr)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tSTATUS\tDEVICE\tMEMORY\tCOMPUTE UNITS")
	for _, r := range backend.ProbeAll() {
		switch {
		case r.Err != nil:
			fmt.Fprintf(tw, "%s\tunusable\t%v\t\t\n", r.Name, r.Err)
		case len(r.Devices) == 0:
			fmt.Fprintf(tw, "%s\tunusable\tno devices found\t\t\n", r.Name)
		default:
			for i, d := range r.Devices {
				name := d.Name
				if d.Features != "" {
					name += " (" + d.Features + ")"
				}
				fmt.Fprintf(tw, "%s\tusable\t[%d] %s\t%s\t%d\n", r.Name, i, name, humanBytes(d.MemoryBytes), d.ComputeUnits)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	warnCPUKernelEnv(stderr)
	b, rep, err := backend.Open("auto", backend.Options{})
	if err != nil {
		fmt.Fprintf(stdout, "\n--backend auto: no usable backend: %v\n", err)
		return nil
	}
	defer b.Close()
	fmt.Fprintf(stdout, "\n--backend auto would choose %s:\n%s\n", rep.Chosen, rep)
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n <= 0:
		return "?"
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d B", n)
}
