package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func text(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	require.NoError(t, Write(p, text("one")))
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "one", string(got))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, DefaultMode, st.Mode().Perm(), "a new file")

	// An existing file keeps its permissions.
	require.NoError(t, os.Chmod(p, 0o600))
	require.NoError(t, Write(p, text("two")))
	st, err = os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	got, _ = os.ReadFile(p)
	assert.Equal(t, "two", string(got))

	// A failing writer leaves the old contents and no temporary file.
	err = Write(p, func(w io.Writer) error {
		_, _ = io.WriteString(w, "half")
		return errors.New("disk on fire")
	})
	require.ErrorContains(t, err, "write "+p+": disk on fire")
	got, _ = os.ReadFile(p)
	assert.Equal(t, "two", string(got))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "the temporary file is removed")
}

// TestWriteThroughSymlink: writing to a link (relative or absolute, in a
// chain) replaces its target's contents and keeps the link.
func TestWriteThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "models"), 0o755))
	target := filepath.Join(dir, "models", "v3.kiln")
	require.NoError(t, os.WriteFile(target, []byte("old"), 0o640))
	link := filepath.Join(dir, "current.kiln")
	require.NoError(t, os.Symlink(filepath.Join("models", "v3.kiln"), link))
	link2 := filepath.Join(dir, "latest.kiln")
	require.NoError(t, os.Symlink(link, link2))

	require.NoError(t, Write(link2, text("new")))
	st, err := os.Lstat(link2)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeSymlink, "the link stays a link")
	st, err = os.Lstat(link)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeSymlink)
	got, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	st, err = os.Stat(target)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())

	// A dangling link creates its target.
	dangling := filepath.Join(dir, "next.kiln")
	require.NoError(t, os.Symlink(filepath.Join(dir, "models", "v4.kiln"), dangling))
	require.NoError(t, Write(dangling, text("four")))
	got, err = os.ReadFile(filepath.Join(dir, "models", "v4.kiln"))
	require.NoError(t, err)
	assert.Equal(t, "four", string(got))
}

func TestWriteRefuses(t *testing.T) {
	dir := t.TempDir()
	loop := filepath.Join(dir, "loop")
	require.NoError(t, os.Symlink(loop, loop))
	assert.ErrorContains(t, Write(loop, text("x")), "too many levels of symbolic links")
	assert.ErrorContains(t, Write(dir, text("x")), "is not a regular file")
	assert.Error(t, Write(filepath.Join(dir, "missing", "a"), text("x")))
}
