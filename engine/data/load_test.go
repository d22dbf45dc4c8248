package data

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeCIFARDir writes the six CIFAR-10 batches (one record each) into dir.
func writeCIFARDir(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, f := range CIFAR10TrainFiles {
		writeFile(t, dir, f, cifarBytes(1))
	}
	writeFile(t, dir, CIFAR10TestFile, cifarBytes(1))
}

// TestDirectoryDatasetNames: a directory given as the dataset is named
// after the directory, CIFAR-10 batches as IDX files, so a model trained on
// it never records a built-in name (eval would then evaluate it on
// whatever $KILN_DATA_DIR/cifar10 holds); the built-in names keep theirs.
func TestDirectoryDatasetNames(t *testing.T) {
	root := t.TempDir()
	photos := filepath.Join(root, "photos")
	writeCIFARDir(t, photos)
	named := filepath.Join(root, "cifar10")
	writeCIFARDir(t, named)
	parent := filepath.Join(root, "download")
	writeCIFARDir(t, filepath.Join(parent, "cifar-10-batches-bin"))
	digits := filepath.Join(root, "digits")
	require.NoError(t, os.Mkdir(digits, 0o755))
	writeFile(t, digits, "train-images-idx3-ubyte", idxBytes(t, []int{2, 2, 2}, pixels(2, 2, 2), false))
	writeFile(t, digits, "train-labels-idx1-ubyte", idxBytes(t, []int{2}, []byte{1, 2}, false))

	tests := []struct {
		name, data, dir string
		train           bool
		want            string
	}{
		{"cifar directory, train", photos, "", true, "photos/train"},
		{"cifar directory, test", photos, "", false, "photos/test"},
		{"cifar directory named cifar10", named, "", true, "./cifar10/train"},
		{"cifar parent directory", parent, "", false, "download/test"},
		{"idx directory", digits, "", true, "digits/train"},
		{"built-in cifar10 with a data dir", "cifar10", photos, true, "cifar10/train"},
		{"built-in cifar10 spelled otherwise", "CIFAR-10", photos, false, "cifar10/test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := Load(tc.data, tc.dir, tc.train)
			require.NoError(t, err)
			assert.Equal(t, tc.want, ds.Name)
			if tc.dir == "" {
				assert.Empty(t, Builtin(ds.Name), "a directory's data is not taken for a built-in dataset")
			}
		})
	}
}

// TestDataDirOnlyForBuiltins: --data-dir with a --data that is not a
// built-in name says that --data-dir only applies to those, instead of
// calling a directory an unknown dataset.
func TestDataDirOnlyForBuiltins(t *testing.T) {
	root := t.TempDir()
	digits := filepath.Join(root, "digits")
	require.NoError(t, os.Mkdir(digits, 0o755))
	other := t.TempDir()
	tests := []struct {
		name, data, dir string
		want            []string
	}{
		{"directory", digits, other, []string{"--data-dir " + other + " applies only to the built-in datasets (mnist, fashion-mnist and cifar10)", "dataset " + digits + " is a directory, which is read by itself: leave out --data-dir"}},
		{"directory with a missing data dir", digits, filepath.Join(other, "gone"), []string{"applies only to the built-in datasets", "leave out --data-dir"}},
		{"missing directory", filepath.Join(root, "nope"), other, []string{"applies only to the built-in datasets", `dataset "` + filepath.Join(root, "nope") + `" is not one of them`}},
		{"unknown name", "imagenet", other, []string{`unknown dataset "imagenet": --data-dir ` + other + " applies only to the built-in datasets"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, train := range []bool{true, false} {
				_, err := Load(tc.data, tc.dir, train)
				require.Error(t, err)
				for _, w := range tc.want {
					assert.Contains(t, err.Error(), w)
				}
				assert.NotContains(t, err.Error(), "(want mnist, fashion-mnist, cifar10 or a directory)")
			}
		})
	}
}
