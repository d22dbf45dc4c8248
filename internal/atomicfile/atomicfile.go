// Package atomicfile writes files so that a reader, or a crash, never sees
// half of one and what was saved before is not lost: the new contents go
// to a temporary file in the same directory, which is fsynced and renamed
// over the old one, and the directory is synced.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultMode is the permission of a file Write creates.
const DefaultMode fs.FileMode = 0o644

// Write writes what write produces to path, atomically. A path that is a
// symbolic link is written through (the link stays, its target gets the
// new contents), and a file that exists keeps its permissions; a new one
// gets DefaultMode. On failure the old file is untouched and the
// temporary one removed; the error names path.
func Write(path string, write func(io.Writer) error) error {
	if err := writeFile(path, write); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeBuf is the buffer between write and the temporary file.
const writeBuf = 1 << 20

func writeFile(path string, write func(io.Writer) error) (err error) {
	target, err := resolve(path)
	if err != nil {
		return err
	}
	mode := DefaultMode
	if st, err := os.Stat(target); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", target)
		}
		mode = st.Mode().Perm()
	}
	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close() // may be closed already
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, writeBuf)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil { // CreateTemp makes it 0600
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory to sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// resolve follows path's symbolic links, if any, to the file they name
// (which need not exist yet).
func resolve(path string) (string, error) {
	for range 40 { // as the kernel's limit on links in a path
		st, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", fmt.Errorf("too many levels of symbolic links")
}
