package data

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// CIFAR-10 binary-format constants.
const (
	// CIFARSide is the height and width of a CIFAR-10 image.
	CIFARSide = 32
	// CIFARRecordSize is the size of one record: 1 label byte and three
	// 32×32 planes (R, G, B).
	CIFARRecordSize = 1 + 3*CIFARSide*CIFARSide
	// maxCIFARFileBytes bounds one batch file (a real one is 30,730,000 bytes).
	maxCIFARFileBytes = 1 << 30
)

// CIFAR10ClassNames are the standard CIFAR-10 class names, in label order.
var CIFAR10ClassNames = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// CIFAR10TrainFiles and CIFAR10TestFile name the batch files of the binary
// version of CIFAR-10.
var (
	CIFAR10TrainFiles = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	CIFAR10TestFile   = "test_batch.bin"
)

// ReadCIFAR10 reads one CIFAR-10 binary batch file (records of 1 label byte
// followed by the R, G and B 32×32 planes) from r and converts it to an NHWC
// Dataset scaled to [0,1]. name is used in error messages and as the
// dataset name.
func ReadCIFAR10(r io.Reader, name string) (*Dataset, error) {
	buf, err := io.ReadAll(io.LimitReader(r, maxCIFARFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("CIFAR-10 file %s: %w", name, err)
	}
	if len(buf) > maxCIFARFileBytes {
		return nil, fmt.Errorf("CIFAR-10 file %s is larger than %d bytes", name, maxCIFARFileBytes)
	}
	n, err := cifarRecords(len(buf), name)
	if err != nil {
		return nil, err
	}
	ds := &Dataset{
		Name: name, N: n, H: CIFARSide, W: CIFARSide, C: 3,
		Images:     make([]float32, n*CIFARSide*CIFARSide*3),
		Labels:     make([]int32, n),
		Classes:    10,
		ClassNames: append([]string(nil), CIFAR10ClassNames...),
	}
	if err := decodeCIFAR(buf, ds.Images, ds.Labels, name); err != nil {
		return nil, err
	}
	return ds, nil
}

func cifarRecords(size int, name string) (int, error) {
	if size == 0 {
		return 0, fmt.Errorf("CIFAR-10 file %s is empty", name)
	}
	if size%CIFARRecordSize != 0 {
		return 0, fmt.Errorf("CIFAR-10 file %s has %d bytes, not a multiple of the %d-byte record (1 label + 3072 pixels); is it the binary version?", name, size, CIFARRecordSize)
	}
	return size / CIFARRecordSize, nil
}

// decodeCIFAR converts whole records in buf into images (HWC) and labels.
func decodeCIFAR(buf []byte, images []float32, labels []int32, name string) error {
	const plane = CIFARSide * CIFARSide
	for i := range len(buf) / CIFARRecordSize {
		rec := buf[i*CIFARRecordSize : (i+1)*CIFARRecordSize]
		if rec[0] >= 10 {
			return fmt.Errorf("CIFAR-10 file %s: record %d has label %d, want 0..9", name, i, rec[0])
		}
		labels[i] = int32(rec[0])
		r, g, b := rec[1:1+plane], rec[1+plane:1+2*plane], rec[1+2*plane:1+3*plane]
		img := images[i*3*plane : (i+1)*3*plane]
		for p := 0; p < plane; p++ {
			img[3*p] = byteScale[r[p]]
			img[3*p+1] = byteScale[g[p]]
			img[3*p+2] = byteScale[b[p]]
		}
	}
	return nil
}

// resolveCIFARDir accepts either the folder holding the batch files or its
// parent holding the extracted cifar-10-batches-bin folder.
func resolveCIFARDir(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, CIFAR10TestFile)); err == nil {
		return dir
	}
	if _, err := os.Stat(filepath.Join(dir, CIFAR10TrainFiles[0])); err == nil {
		return dir
	}
	sub := filepath.Join(dir, "cifar-10-batches-bin")
	if st, err := os.Stat(sub); err == nil && st.IsDir() {
		return sub
	}
	return dir
}

// LoadCIFAR10 loads the binary version of CIFAR-10 from dir (or from its
// cifar-10-batches-bin subfolder): data_batch_1.bin … data_batch_5.bin when
// train is true, test_batch.bin otherwise. Class names come from
// batches.meta.txt when present, else the standard ten. Missing files are
// listed by name. The dataset is named cifar10/train or cifar10/test, the
// built-in dataset's names; Load renames a directory given as the dataset
// itself after that directory, as it does IDX directories.
func LoadCIFAR10(dir string, train bool) (*Dataset, error) {
	dir = resolveCIFARDir(dir)
	files := []string{CIFAR10TestFile}
	split := "test"
	if train {
		files, split = CIFAR10TrainFiles, "train"
	}
	var missing []string
	sizes := make([]int, len(files))
	total := 0
	for i, f := range files {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				missing = append(missing, f)
				continue
			}
			return nil, err
		}
		if st.Size() > maxCIFARFileBytes {
			return nil, fmt.Errorf("CIFAR-10 file %s is larger than %d bytes", filepath.Join(dir, f), maxCIFARFileBytes)
		}
		n, err := cifarRecords(int(st.Size()), filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		sizes[i] = n
		total += n
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("CIFAR-10 directory %s is missing %s (expected the binary version: data_batch_1.bin … data_batch_5.bin, test_batch.bin)", dir, strings.Join(missing, ", "))
	}
	names, err := readCIFARMeta(dir)
	if err != nil {
		return nil, err
	}
	const sz = CIFARSide * CIFARSide * 3
	ds := &Dataset{
		Name: "cifar10/" + split, N: total, H: CIFARSide, W: CIFARSide, C: 3,
		Images: make([]float32, total*sz), Labels: make([]int32, total),
		Classes: 10, ClassNames: names,
	}
	off := 0
	for i, f := range files {
		path := filepath.Join(dir, f)
		buf, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if len(buf) != sizes[i]*CIFARRecordSize {
			return nil, fmt.Errorf("CIFAR-10 file %s changed size while loading", path)
		}
		if err := decodeCIFAR(buf, ds.Images[off*sz:(off+sizes[i])*sz], ds.Labels[off:off+sizes[i]], path); err != nil {
			return nil, err
		}
		off += sizes[i]
	}
	return ds, nil
}

// readCIFARMeta reads class names from dir/batches.meta.txt (one a line),
// falling back to CIFAR10ClassNames when the file is absent.
func readCIFARMeta(dir string) ([]string, error) {
	path := filepath.Join(dir, "batches.meta.txt")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return append([]string(nil), CIFAR10ClassNames...), nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(io.LimitReader(f, 1<<16))
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(names) != 10 {
		return nil, fmt.Errorf("%s lists %d class names, want 10", path, len(names))
	}
	return names, nil
}
