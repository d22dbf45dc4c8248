package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-ml/kiln/backend"
	"github.com/kiln-ml/kiln/engine"
	"github.com/kiln-ml/kiln/engine/modelfile"
)

// ModelFileName is the file each version directory of a repository holds.
const ModelFileName = "model.kiln"

// validName restricts model names to what is safe in URLs, paths and logs.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// fileStamp identifies one state of a model file.
type fileStamp struct {
	size    int64
	modTime time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileStamp{}, fmt.Errorf("%s is not a regular file", path)
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

// loadVersion loads, sizes and warms up one model version. Loading holds
// the backend lock, so serving pauses meanwhile. A version it returns is
// a load in progress (see beginLoad) until install ends it.
func (s *Server) loadVersion(name string, num int64, path string) (*modelVersion, error) {
	stamp, err := stampOf(path)
	if err != nil {
		return nil, err
	}
	if !s.beginLoad() {
		return nil, errShutDown
	}
	s.bmu.Lock()
	m, meta, err := engine.Load(s.b, path)
	if err == nil {
		err = warmUp(m, s.cfg.MaxBatch)
		if in := m.Spec.Input; err == nil && len(in) != 3 {
			err = fmt.Errorf("%s: input shape %v is not [H, W, C]", path, in)
		}
		if err != nil {
			m.Close()
		}
	}
	if err != nil {
		s.endLoadLocked()
		return nil, err
	}
	s.bmu.Unlock()
	in := m.Spec.Input
	return &modelVersion{
		name: name, version: strconv.FormatInt(num, 10), num: num, path: path, stamp: stamp,
		model: m, meta: meta, h: in[0], w: in[1], c: in[2], inLen: m.InputLen(), classes: m.Classes(),
		maxBatch: s.cfg.MaxBatch, delay: s.cfg.MaxQueueDelay, loadedAt: time.Now(), rest: s.rest, log: s.cfg.Log, bwait: &s.bwait,
		queue: make(chan *task, s.cfg.QueueSize),
		idle:  make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
		qObs: s.met.queue.WithLabelValues(name), cObs: s.met.compute.WithLabelValues(name),
		bObs: s.met.batch.WithLabelValues(name), dObs: s.met.duration.WithLabelValues(name),
	}, nil
}

// beginLoad counts a model load in progress, unless Shutdown has given
// up waiting (returned past its deadline): it then reports false and the
// load must not start.
func (s *Server) beginLoad() bool {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.abandoned {
		return false
	}
	s.loads++
	return true
}

// endLoad ends a load counted by beginLoad; the caller does not hold the
// backend lock. When Shutdown gave up waiting while loads were in
// progress, the last of them to end takes the backend lock for good, as
// Shutdown would have: nothing runs on the backend after it.
func (s *Server) endLoad() {
	if s.lastAbandonedLoad() {
		s.bmu.Lock()
	}
}

// endLoadLocked is endLoad for a caller holding the backend lock: it
// releases it, unless the load was the last one Shutdown gave up waiting
// for, which keeps it for good.
func (s *Server) endLoadLocked() {
	if !s.lastAbandonedLoad() {
		s.bmu.Unlock()
	}
}

// lastAbandonedLoad ends a load counted by beginLoad and reports whether
// it was the last load in progress after Shutdown gave up waiting.
func (s *Server) lastAbandonedLoad() bool {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.loads--
	return s.abandoned && s.loads == 0
}

// fileContentError reports whether err, a model load's failure, is about
// the model file's contents: a file that is no model file, of an
// unsupported format version, truncated or failing its checksum
// (modelfile's sentinel errors), a spec that does not parse or fit its
// tensors, metadata that does not decode, a model that is no image
// classifier, or one whose warm-up gives non-finite outputs. Such a
// failure is remembered and not retried until the file changes. The
// others are about the moment, not the file: reading it (a permission
// since fixed with chmod, an I/O error: *fs.PathError, syscall.Errno) or
// the device (out of memory, a device error: *backend.Error), and a later
// scan retries them. engine.Load reports spec, tensor shape and metadata
// problems as plain errors, as the server does the last two above, so an
// error of none of these kinds counts as one about the contents.
func fileContentError(err error) bool {
	for _, e := range []error{modelfile.ErrNotModelFile, modelfile.ErrVersion, modelfile.ErrCorrupt, modelfile.ErrTensorNotFound} {
		if errors.Is(err, e) {
			return true
		}
	}
	var pe *fs.PathError
	var be *backend.Error
	var errno syscall.Errno
	return !errors.As(err, &pe) && !errors.As(err, &be) && !errors.As(err, &errno)
}

// install makes v, just loaded by loadVersion, the serving version of its
// model and retires the one it replaces once that one's last request is
// answered. It ends v's load. Once Shutdown has begun it frees v instead
// and returns errShutDown.
func (s *Server) install(v *modelVersion) error {
	s.mu.Lock()
	if s.shut.Load() {
		s.mu.Unlock()
		s.bmu.Lock()
		v.model.Close()
		s.endLoadLocked()
		return fmt.Errorf("model %s: version %s loaded but not served: %w", v.name, v.version, errShutDown)
	}
	defer s.endLoad()
	old := s.models[v.name]
	s.models[v.name] = v
	delete(s.broken, v.name)
	go v.run(&s.bmu)
	s.mu.Unlock()
	s.met.reloads.WithLabelValues(v.name).Inc()
	if old != nil {
		fmt.Fprintf(s.cfg.Log, "model %s: version %s (%s) now serving, replacing version %s\n", v.name, v.version, v.path, old.version)
		warnInterfaceChange(s.cfg.Log, old, v)
		s.retires.Go(func() { old.retire(&s.bmu) })
		s.warnBodyLimit(v)
		return nil
	}
	fmt.Fprintf(s.cfg.Log, "model %s: version %s (%s) loaded and serving (input %dx%dx%d, %d classes)\n", v.name, v.version, v.path, v.h, v.w, v.c, v.classes)
	s.warnBodyLimit(v)
	return nil
}

// warnInterfaceChange logs a warning when version v of a model takes a
// different input shape or gives a different number of classes than old,
// the version it replaces: clients built for old then get errors (400 for
// the input shape) or outputs they do not expect.
func warnInterfaceChange(log io.Writer, old, v *modelVersion) {
	var what []string
	if old.h != v.h || old.w != v.w || old.c != v.c {
		what = append(what, fmt.Sprintf("input %dx%dx%d (version %s: %dx%dx%d)", v.h, v.w, v.c, old.version, old.h, old.w, old.c))
	}
	if old.classes != v.classes {
		what = append(what, fmt.Sprintf("%d classes (version %s: %d)", v.classes, old.version, old.classes))
	}
	if len(what) == 0 {
		return
	}
	fmt.Fprintf(log, "warning: model %s: version %s changes what the model takes or gives: %s; clients built for version %s will break\n",
		v.name, v.version, strings.Join(what, ", "), old.version)
}

// minHeaderBytes is about the smallest JSON header of a binary infer
// request for one input.
const minHeaderBytes = 100

// warnBodyLimit logs a warning when the request body limit is smaller than
// one input of v in its most compact form (binary UINT8, a byte a value):
// every infer request for v would then be refused (413).
func (s *Server) warnBodyLimit(v *modelVersion) {
	// one input as binary UINT8 after the smallest JSON header that can
	// announce it ({"inputs":[{"name":…,"shape":[1,H,W,C],…}]}, ~100 bytes)
	if s.cfg.MaxBodyBytes < v.inLen+minHeaderBytes {
		fmt.Fprintf(s.cfg.Log, "warning: model %s: one input is %d values (%d bytes as binary UINT8 plus a JSON header of ~%d, more in any other form) but the request body limit is %d bytes: every infer request for it will be refused (413); raise the limit (kiln serve --max-body-bytes)\n",
			v.name, v.inLen, v.inLen, minHeaderBytes, s.cfg.MaxBodyBytes)
	}
}

// remove stops serving a model.
func (s *Server) remove(name string) {
	s.mu.Lock()
	old := s.models[name]
	delete(s.models, name)
	s.mu.Unlock()
	if old != nil {
		fmt.Fprintf(s.cfg.Log, "model %s: removed from the repository, unloading version %s\n", name, old.version)
		s.retires.Go(func() { old.retire(&s.bmu) })
	}
}

// acquire finds the serving version of name (and checks ver when given)
// and takes a reference on it.
func (s *Server) acquire(name, ver string) (*modelVersion, error) {
	for range 1000 {
		s.mu.RLock()
		v, why := s.models[name], s.broken[name]
		s.mu.RUnlock()
		if v == nil && why != "" {
			return nil, fmt.Errorf("model %q is not loaded: %s", name, why)
		}
		if v == nil {
			return nil, fmt.Errorf("unknown model %q", name)
		}
		if ver != "" && ver != v.version {
			return nil, fmt.Errorf("model %q has no version %q loaded (serving version %s)", name, ver, v.version)
		}
		if v.acquire() {
			return v, nil
		}
		// v is being replaced; its successor is already installed.
		runtime.Gosched()
	}
	return nil, fmt.Errorf("model %q is being reloaded; retry", name)
}

// serving lists the serving versions sorted by name.
func (s *Server) serving() []*modelVersion {
	s.mu.RLock()
	vs := make([]*modelVersion, 0, len(s.models))
	for _, v := range s.models {
		vs = append(vs, v)
	}
	s.mu.RUnlock()
	sort.Slice(vs, func(i, j int) bool { return vs[i].name < vs[j].name })
	return vs
}

// CheckModelName reports whether name can name a served model (it appears
// in URLs and metric labels): letters, digits, '_', '.' and '-'.
func CheckModelName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid model name %q (letters, digits, '_', '.', '-')", name)
	}
	return nil
}

// AddModel loads the model file at path as version 1 of model name and
// serves it.
func (s *Server) AddModel(name, path string) error {
	if err := CheckModelName(name); err != nil {
		return err
	}
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	if s.shut.Load() {
		return fmt.Errorf("model %s: %w", name, errShutDown)
	}
	v, err := s.loadVersion(name, 1, path)
	if err != nil {
		if !errors.Is(err, errShutDown) {
			s.met.loadFailures.WithLabelValues(name).Inc()
		}
		return fmt.Errorf("model %s: %w", name, err)
	}
	return s.install(v)
}

// Poll rescans the model repository: for every model directory it serves
// the highest-numbered version whose model file loads and warms up. A new
// or changed version is loaded beside the serving one and swapped in
// without dropping requests; a version that fails is reported and the
// next lower version is tried, so when the serving version's own file
// turns bad an older good version takes over, or, if none loads, the copy
// already in memory keeps serving. A failure about the file's contents is
// not retried until the file changes; one of the moment (the device out
// of memory, a file that cannot be read) is retried at every scan, and
// logged again only when its message changes (fileContentError). When
// the serving version's directory is there but its model file is not
// (removed to be replaced, or renamed), its copy in memory keeps serving,
// without falling back to an older version, until a scan finds the file
// again and loads it. Models whose directory disappeared, or whose
// serving version's directory did with no other version left, are
// unloaded. Entries that do not fit the layout
// DIR/<name>/<version>/model.kiln are skipped and logged once. The
// returned error joins every failure of this scan.
func (s *Server) Poll() error {
	if s.repo == "" {
		return nil
	}
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	if s.shut.Load() {
		return fmt.Errorf("model repository: %w", errShutDown)
	}
	entries, err := os.ReadDir(s.repo)
	if err != nil {
		return repoDirError{err}
	}
	var errs []error
	seen, skipped := map[string]bool{}, map[string]bool{}
	for _, e := range entries {
		if s.shut.Load() {
			break
		}
		name := e.Name()
		dir := filepath.Join(s.repo, name)
		if why := s.notADir(e, "model"); why != "" {
			s.skip(skipped, dir, why)
			continue
		}
		if err := CheckModelName(name); err != nil {
			s.skip(skipped, dir, err.Error())
			continue
		}
		cands, bare, err := s.versionsIn(dir, skipped)
		if err != nil {
			seen[name] = true // unreadable for now: what is loaded keeps serving
			err = fmt.Errorf("model %s: %w", name, err)
			fmt.Fprintf(s.cfg.Log, "%v\n", err)
			errs = append(errs, err)
			continue
		}
		s.mu.RLock()
		cur := s.models[name]
		s.mu.RUnlock()
		keep := cur != nil && slices.Contains(bare, cur.num)
		if keep {
			s.logOnce(skipped, fmt.Sprintf("model %s: version %s keeps serving the copy loaded before its file %s was removed; a scan loads the file once it is there again",
				name, cur.version, cur.path))
		}
		if len(cands) == 0 && !keep {
			continue
		}
		seen[name] = true
		errs = append(errs, s.pollModel(name, cur, cands, keep, skipped)...)
	}
	if s.shut.Load() { // nothing is unloaded: Shutdown frees what serves
		return errors.Join(append(errs, fmt.Errorf("model repository: %w", errShutDown))...)
	}
	s.skipped = skipped // forget entries that are gone, to report them again if they come back
	for _, v := range s.serving() {
		if !seen[v.name] {
			s.remove(v.name)
		}
	}
	s.mu.Lock()
	for name := range s.broken {
		if !seen[name] {
			delete(s.broken, name)
		}
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// pollModel serves the highest-numbered of the candidate versions cands
// (highest first) whose file loads, unless the serving version cur
// already is that one; with keep (cur's directory is there without its
// file), no version below cur is tried: cur keeps serving. It logs every
// failure together with what serves after it (a failure that is retried
// at every scan only when its line differs from the previous scan's) and
// returns the failures.
func (s *Server) pollModel(name string, cur *modelVersion, cands []int64, keep bool, skipped map[string]bool) []error {
	type failure struct {
		err   error
		retry bool // not about the file's contents: tried again next scan
	}
	var fails []failure
	var next *modelVersion
	for _, num := range cands {
		if keep && num < cur.num {
			break
		}
		path := filepath.Join(s.repo, name, strconv.FormatInt(num, 10), ModelFileName)
		stamp, err := stampOf(path)
		if err != nil { // vanished meanwhile
			if cur != nil && cur.num == num {
				break // its copy in memory keeps serving
			}
			continue
		}
		if cur != nil && cur.num == num && cur.stamp == stamp {
			break // the serving version is the newest good one
		}
		if bad, ok := s.failed[path]; ok && bad == stamp {
			continue
		}
		v, err := s.loadVersion(name, num, path)
		if errors.Is(err, errShutDown) {
			break
		}
		if err != nil {
			retry := !fileContentError(err)
			if !retry {
				s.failed[path] = stamp
			}
			s.met.loadFailures.WithLabelValues(name).Inc()
			if cur == nil && next == nil && len(fails) == 0 { // the newest failing version; clients get no paths
				s.mu.Lock()
				s.broken[name] = fmt.Sprintf("version %d failed to load (the server log says why)", num)
				s.mu.Unlock()
			}
			fails = append(fails, failure{fmt.Errorf("model %s version %d: %w", name, num, err), retry})
			continue
		}
		delete(s.failed, path)
		next = v
		break
	}
	errs := make([]error, len(fails))
	if len(fails) > 0 {
		outcome := s.outcome(name, cur, next)
		for i, f := range fails {
			errs[i] = f.err
			if f.retry {
				s.logOnce(skipped, fmt.Sprintf("%v; %s; retried at every scan (not a problem of the file's contents)", f.err, outcome))
				continue
			}
			fmt.Fprintf(s.cfg.Log, "%v; %s\n", f.err, outcome)
		}
	}
	if next != nil {
		if err := s.install(next); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// outcome says which version of model name serves after a scan that
// replaced cur (nil when none served) with next (nil when none loaded).
func (s *Server) outcome(name string, cur, next *modelVersion) string {
	switch {
	case next != nil:
		return fmt.Sprintf("version %s serves instead", next.version)
	case cur == nil:
		return fmt.Sprintf("no version of model %s is serving", name)
	}
	stamp, err := stampOf(cur.path)
	switch {
	case err != nil:
		return fmt.Sprintf("version %s keeps serving the copy loaded before its file was removed", cur.version)
	case stamp != cur.stamp:
		return fmt.Sprintf("version %s keeps serving the copy loaded before its file changed", cur.version)
	}
	return fmt.Sprintf("version %s keeps serving", cur.version)
}

// repoDirError is Poll's error when the repository directory itself
// cannot be read.
type repoDirError struct{ err error }

func (e repoDirError) Error() string { return "model repository: " + e.err.Error() }
func (e repoDirError) Unwrap() error { return e.err }

// skip reports once that the repository entry at path is skipped, and
// why, and records it in skipped (this scan's skipped entries): an entry
// skipped scan after scan for the same reason is reported once, and again
// when the reason changes or it comes back after it was gone or fixed.
func (s *Server) skip(skipped map[string]bool, path, why string) {
	key := path + "\x00" + why
	skipped[key] = true
	if !s.skipped[key] {
		fmt.Fprintf(s.cfg.Log, "model repository: skipping %s: %s\n", path, why)
	}
}

// logOnce logs line unless the previous scan logged it too, and records it
// in skipped (this scan's set, as skip does): a line repeated scan after
// scan is logged once, and again after a scan without it.
func (s *Server) logOnce(skipped map[string]bool, line string) {
	key := "\x00" + line // no skip key starts so
	skipped[key] = true
	if !s.skipped[key] {
		fmt.Fprintln(s.cfg.Log, line)
	}
}

// layout is the repository layout, for messages.
func (s *Server) layout() string {
	return filepath.Join(s.repo, "<name>", "<version>", ModelFileName)
}

// incomplete skips the repository directory at path, which lacks what it
// needs to serve (why): a version directory without its model file, or a
// model directory without any entry. It is reported (once, as skip does)
// when the first scan finds it, and on a later scan only when the previous
// scan found it so too: a directory a deployment has just created and is
// still copying the model file into is not reported.
func (s *Server) incomplete(skipped map[string]bool, path, why string) {
	pending := path + "\x00pending"
	if s.skipped == nil || s.skipped[pending] || s.skipped[path+"\x00"+why] { // first scan, or still so
		s.skip(skipped, path, why)
		return
	}
	skipped[pending] = true // perhaps still being written: report it if the next scan finds it so
}

// otherModelFiles lists the *.kiln files in the directory dir other than
// ModelFileName: a model file under another name, which is not served.
func otherModelFiles(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if n := e.Name(); n != ModelFileName && strings.EqualFold(filepath.Ext(n), ".kiln") {
			names = append(names, n)
		}
	}
	return names
}

// notADir says why the repository entry e, which should be a directory
// of the kind what ("model" or "version"), is not one, or returns "" when
// it is.
func (s *Server) notADir(e os.DirEntry, what string) string {
	why := fmt.Sprintf("not a %s directory", what)
	switch {
	case e.IsDir():
		return ""
	case e.Type()&os.ModeSymlink != 0:
		why = fmt.Sprintf("a symbolic link, not a %s directory (links to directories are not followed)", what)
	}
	return fmt.Sprintf("%s; the layout is %s", why, s.layout())
}

// versionsIn lists the numeric version directories of a model that hold a
// model file, highest first, and (bare) those that do not. Entries that
// are not version directories are reported (once) through skip; a version
// directory without its model file is reported at once when it holds a
// *.kiln file of another name, and otherwise as incomplete says (it may be
// being written), as is a model directory with nothing in it.
func (s *Server) versionsIn(dir string, skipped map[string]bool) (nums, bare []int64, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(entries) == 0 {
		s.incomplete(skipped, dir, "no version directory in it; the layout is "+s.layout())
		return nil, nil, nil
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if why := s.notADir(e, "version"); why != "" {
			s.skip(skipped, path, why)
			continue
		}
		n, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || n <= 0 || strconv.FormatInt(n, 10) != e.Name() {
			s.skip(skipped, path, fmt.Sprintf("version directory name %q is not a positive integer without leading zeros", e.Name()))
			continue
		}
		st, err := os.Stat(filepath.Join(path, ModelFileName))
		if err == nil && !st.Mode().IsRegular() {
			s.skip(skipped, path, fmt.Sprintf("its %s is not a regular file; the layout is %s", ModelFileName, s.layout()))
			bare = append(bare, n)
			continue
		}
		if err != nil {
			switch others := otherModelFiles(path); {
			case !errors.Is(err, fs.ErrNotExist):
				s.skip(skipped, path, err.Error())
			case len(others) > 0:
				s.skip(skipped, path, fmt.Sprintf("no %s, but %s; the layout is %s (rename the file to %s)",
					ModelFileName, strings.Join(others, ", "), s.layout(), ModelFileName))
			default:
				s.incomplete(skipped, path, fmt.Sprintf("no %s in it (yet); the layout is %s (it is loaded once the file is there)", ModelFileName, s.layout()))
			}
			bare = append(bare, n)
			continue
		}
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] > nums[j] })
	return nums, bare, nil
}

// pollLoop rescans the repository every interval until stop closes, and
// closes done when it returns.
func (s *Server) pollLoop(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	dirFailing := false // the repository directory could not be read last time
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			// Poll logs the failures of models; an unreadable repository
			// is logged here, once, and again when it is readable.
			err := s.Poll()
			var de repoDirError
			switch failing := errors.As(err, &de); {
			case failing && !dirFailing:
				fmt.Fprintf(s.cfg.Log, "%v; the loaded models keep serving\n", de)
			case !failing && dirFailing:
				fmt.Fprintf(s.cfg.Log, "model repository %s is readable again\n", s.repo)
			}
			dirFailing = errors.As(err, &de)
		}
	}
}

// ModelInfo describes a serving model version.
type ModelInfo struct {
	Name, Version string
	// Input is the per-sample shape [H, W, C].
	Input   []int
	Classes int
	Path    string
}

// Models lists the serving model versions sorted by name.
func (s *Server) Models() []ModelInfo {
	var out []ModelInfo
	for _, v := range s.serving() {
		out = append(out, ModelInfo{Name: v.name, Version: v.version, Input: []int{v.h, v.w, v.c}, Classes: v.classes, Path: v.path})
	}
	return out
}
