//go:build opencl

package opencl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	clb "github.com/kiln-ml/kiln/bindings/opencl"
)

// cacheMagic starts every cache file; a SHA-256 of the binary follows it.
const cacheMagic = "KILNCLB1"

// ProgramLoad says how one kernel program was obtained at Open.
type ProgramLoad struct {
	Program string // the .cl file
	// FromCache is true when the cached binary was loaded.
	FromCache bool
	// CacheFile is the cache file used or written ("" without a cache).
	CacheFile string
	// Note explains why the cache was not used or not written, if so.
	Note string
}

// cacheKey hashes everything a compiled binary depends on.
func cacheKey(src, options string, d clb.Device) string {
	h := sha256.New()
	for _, s := range []string{"kiln-opencl-cache-v1", src, options, d.Name, d.Vendor, d.Version, d.Driver,
		d.Platform.Name, d.Platform.Vendor, d.Platform.Version} {
		fmt.Fprintf(h, "%d:%s\x00", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cachePath is the file for a program: readable name, then the key.
func cachePath(dir, program, key string) string {
	base := strings.NewReplacer("/", "_", string(os.PathSeparator), "_").Replace(program)
	return filepath.Join(dir, base+"-"+key+".bin")
}

// readCache returns the verified binary in path; fs.ErrNotExist when absent.
func readCache(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < len(cacheMagic)+sha256.Size || string(data[:len(cacheMagic)]) != cacheMagic {
		return nil, errors.New("not a kiln kernel cache file")
	}
	sum := data[len(cacheMagic) : len(cacheMagic)+sha256.Size]
	bin := data[len(cacheMagic)+sha256.Size:]
	if got := sha256.Sum256(bin); !bytes.Equal(got[:], sum) {
		return nil, errors.New("checksum mismatch (corrupt cache file)")
	}
	if len(bin) == 0 {
		return nil, errors.New("empty binary")
	}
	return bin, nil
}

// writeCache stores bin in path atomically: a temporary file in the same
// folder, fsync, rename, then fsync of the folder.
func writeCache(path string, bin []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sum := sha256.Sum256(bin)
	for _, part := range [][]byte{[]byte(cacheMagic), sum[:], bin} {
		if _, err = f.Write(part); err != nil {
			return err
		}
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // best effort: the rename is already visible
		d.Close()
	}
	return nil
}

// loadProgram returns the program built for the context's device, from the
// cache in dir when it holds a valid binary, else from source (then caching
// the binary). dir "" disables the cache.
func loadProgram(ctx *clb.Context, dir, name, src, options string) (*clb.Program, ProgramLoad, error) {
	ld := ProgramLoad{Program: name}
	var path string
	if dir != "" {
		path = cachePath(dir, name, cacheKey(src, options, ctx.Device()))
		ld.CacheFile = path
		bin, err := readCache(path)
		switch {
		case err == nil:
			p, perr := ctx.ProgramFromBinary(name, bin, options)
			if perr == nil {
				ld.FromCache = true
				return p, ld, nil
			}
			ld.Note = fmt.Sprintf("cached binary rejected by the driver (%v); rebuilt from source", perr)
		case errors.Is(err, fs.ErrNotExist):
			ld.Note = "not cached yet; built from source"
		default:
			ld.Note = fmt.Sprintf("cache file unusable (%v); rebuilt from source", err)
		}
	} else {
		ld.Note = "no cache directory; built from source"
	}
	p, err := ctx.BuildProgram(name, src, options)
	if err != nil {
		return nil, ld, err
	}
	if path == "" {
		return p, ld, nil
	}
	bin, err := p.Binary()
	if err == nil {
		err = writeCache(path, bin)
	}
	if err != nil {
		ld.Note += fmt.Sprintf("; binary not cached: %v", err)
	}
	return p, ld, nil
}
