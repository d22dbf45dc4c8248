package main

import (
	"errors"
	"io"
)

func runServe(args []string, stdout, stderr io.Writer) error {
	return errors.New("serve is not built yet")
}
