package apply_test

// End-to-end tests of live apply and rollback under Wine: testdata/wine/
// host.exe loads testdata/live_patch/x64/old.dll and prints its exports'
// results every 50 ms; the Windows build of hpbuild patches the running
// host. They skip when Wine is not installed (.ci/run installs it).

import (
	"bufio"
	"bytes"
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hpbuild/hpbuild/assemble"
	"github.com/hpbuild/hpbuild/diff"
	hpe "github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/signing"
)

// wineEnv is the Wine prefix, the Windows hpbuild and the packages, made
// once for all the tests of the package.
type wineEnv struct {
	wine, dir string
	env       []string
	err       error
	skip      string
}

var (
	wineOnce sync.Once
	theWine  wineEnv
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theWine.dir != "" {
		kill := exec.Command(filepath.Join(filepath.Dir(theWine.wine), "wineserver"), "-k")
		kill.Env = theWine.env
		_ = kill.Run()
		os.RemoveAll(theWine.dir)
	}
	os.Exit(code)
}

func findWine() string {
	for _, p := range []string{"/usr/lib/wine/wine64", "wine64"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

func setupWine(t *testing.T) *wineEnv {
	t.Helper()
	wineOnce.Do(func() {
		w := &theWine
		if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
			w.skip = "the Wine tests run on linux/amd64"
			return
		}
		if w.wine = findWine(); w.wine == "" {
			w.skip = "Wine is not installed (apt-get install wine64; .ci/run does)"
			return
		}
		if w.dir, w.err = os.MkdirTemp("", "hpbuild-wine-"); w.err != nil {
			return
		}
		w.env = append(os.Environ(), "WINEPREFIX="+filepath.Join(w.dir, "prefix"), "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=")
		for i, e := range w.env {
			if strings.HasPrefix(e, "DISPLAY=") {
				w.env[i] = "DISPLAY="
			}
		}
		boot := exec.Command(w.wine, "wineboot", "-i")
		boot.Env = w.env
		if out, err := boot.CombinedOutput(); err != nil {
			w.err = fmt.Errorf("wineboot: %v\n%s", err, out)
			return
		}
		// Go programs need ProcessPrng, which Wine 8.0 lacks (DESIGN.md).
		sys32 := filepath.Join(w.dir, "prefix", "drive_c", "windows", "system32")
		if w.err = copyFile(filepath.Join("..", "testdata", "wine", "bcryptprimitives.dll"), filepath.Join(sys32, "bcryptprimitives.dll")); w.err != nil {
			return
		}
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		build := exec.Command(gobin, "build", "-o", filepath.Join(w.dir, "hpbuild.exe"), "../cmd/hpbuild")
		build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			w.err = fmt.Errorf("building hpbuild.exe: %v\n%s", err, out)
			return
		}
		for _, f := range []string{"wine/host.exe", "live_patch/x64/old.dll"} {
			if w.err = copyFile(filepath.Join("..", "testdata", f), filepath.Join(w.dir, filepath.Base(f))); w.err != nil {
				return
			}
		}
		key, err := signing.FromSeed(bytes.Repeat([]byte{1}, 32))
		if err != nil {
			w.err = err
			return
		}
		if w.err = os.WriteFile(filepath.Join(w.dir, "k.pub"), signing.MarshalPublic(key.Public()), 0o644); w.err != nil {
			return
		}
		other, _ := signing.FromSeed(bytes.Repeat([]byte{3}, 32))
		if w.err = os.WriteFile(filepath.Join(w.dir, "other.pub"), signing.MarshalPublic(other.Public()), 0o644); w.err != nil {
			return
		}
		for _, p := range []struct {
			name, pair string
			seq        uint64
		}{{"live.hpkg", "live_patch", 1}, {"live2.hpkg", "live_patch", 2}, {"other.hpkg", "body_change", 1}} {
			if w.err = buildPackage(key, p.pair, p.seq, filepath.Join(w.dir, p.name)); w.err != nil {
				return
			}
		}
	})
	if theWine.skip != "" {
		t.Skip(theWine.skip)
	}
	if theWine.err != nil {
		t.Fatal(theWine.err)
	}
	return &theWine
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

func buildPackage(key *signing.PrivateKey, pair string, seq uint64, out string) error {
	dir := filepath.Join("..", "testdata", pair, "x64")
	oldF, err := hpe.Open(filepath.Join(dir, "old.dll"))
	if err != nil {
		return err
	}
	defer oldF.Close()
	newF, err := hpe.Open(filepath.Join(dir, "new.dll"))
	if err != nil {
		return err
	}
	defer newF.Close()
	r := diff.Compare(oldF, newF)
	p, err := assemble.BuildSigned(oldF, newF, r, assemble.Options{Sequence: seq, Tool: "hpbuild test"}, key)
	if err != nil {
		return err
	}
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

// host is a running host.exe.
type host struct {
	t     *testing.T
	cmd   *exec.Cmd
	pid   int
	base  uint64
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startHost(t *testing.T, w *wineEnv, args ...string) *host {
	t.Helper()
	cmd := exec.Command(w.wine, append([]string{"host.exe", "old.dll"}, args...)...)
	cmd.Dir, cmd.Env = w.dir, w.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &host{t: t, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.mu.Lock()
			h.lines = append(h.lines, strings.TrimRight(sc.Text(), "\r"))
			h.mu.Unlock()
		}
		close(h.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	first := h.waitLine(t, "start", func(s string) bool { return strings.HasPrefix(s, "pid ") })
	var text, size uint64
	if _, err := fmt.Sscanf(first, "pid %d base %x text %x %x", &h.pid, &h.base, &text, &size); err != nil {
		t.Fatalf("host's first line %q: %v (stderr %s)", first, err, stderr.String())
	}
	return h
}

// waitLine returns the first line from now on (or, for "start", from the
// beginning) that satisfies ok, within 20 seconds.
func (h *host) waitLine(t *testing.T, what string, ok func(string) bool) string {
	t.Helper()
	h.mu.Lock()
	from := len(h.lines)
	if what == "start" {
		from = 0
	}
	h.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for ; from < len(h.lines); from++ {
			if ok(h.lines[from]) {
				l := h.lines[from]
				h.mu.Unlock()
				return l
			}
		}
		h.mu.Unlock()
		select {
		case <-h.done:
			t.Fatalf("host exited while waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no host line for %s within 20 s; last lines: %q", what, h.tail(3))
	return ""
}

func (h *host) tail(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lines[max(0, len(h.lines)-n):]
}

var resultLine = regexp.MustCompile(`^tick=(\d+) scale=(\d+) mix=(\d+) len=(\d+) text=([0-9a-f]{8})$`)

type results struct {
	tick, scale, mix, length int
	text                     string
}

func parse(l string) (results, bool) {
	m := resultLine.FindStringSubmatch(l)
	if m == nil {
		return results{}, false
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return results{n(m[1]), n(m[2]), n(m[3]), n(m[4]), m[5]}, true
}

// next waits for the next result line that satisfies ok.
func (h *host) next(t *testing.T, what string, ok func(results) bool) results {
	t.Helper()
	l := h.waitLine(t, what, func(s string) bool { r, good := parse(s); return good && ok(r) })
	r, _ := parse(l)
	return r
}

// The results of old.dll and new.dll for the host's arguments.
func isOld(r results) bool {
	return r.scale == 21 && r.mix == 4+r.tick && r.length == 0 && r.tick < 1000
}
func isNew(r results) bool { return r.scale == 35 && r.mix == 131 && r.length == 18 && r.tick > 1000 }

// hpbuild runs the Windows hpbuild under Wine and returns its exit code
// and output.
func (w *wineEnv) hpbuild(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(w.wine, append([]string{"hpbuild.exe"}, args...)...)
	cmd.Dir, cmd.Env = w.dir, w.env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, strings.ReplaceAll(string(out), "\r\n", "\n")
}

// fileTextHash is the host's FNV-1a of old.dll's .text as the file holds
// it (what the mapped section holds when the module is not rebased).
func fileTextHash(t *testing.T) string {
	f, err := pe.Open(filepath.Join("..", "testdata", "live_patch", "x64", "old.dll"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".text")
	b, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	b = b[:min(len(b), int(s.VirtualSize))]
	b = append(b, make([]byte, int(s.VirtualSize)-len(b))...)
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return fmt.Sprintf("%08x", h)
}

// TestWineApplyRollback: a running host picks up new.dll's behaviour when
// the package is applied and old.dll's again on rollback, without a
// restart; the counter in an old global keeps counting throughout; after
// rollback the module's code equals the file's and the area is gone.
func TestWineApplyRollback(t *testing.T) {
	w := setupWine(t)
	h := startHost(t, w)
	before := h.next(t, "old.dll's results", isOld)
	if h.base == 0x180000000 {
		if want := fileTextHash(t); before.text != want {
			t.Fatalf("the host's .text hash %s before apply is not the file's %s", before.text, want)
		}
	}
	code, out := w.hpbuild(t, "apply", "--pub", "k.pub", "--pid", strconv.Itoa(h.pid), "live2.hpkg")
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "5 sites") {
		t.Errorf("apply output %q does not report 5 sites", out)
	}
	after := h.next(t, "new.dll's results after apply", isNew)
	if after.tick-1000 <= before.tick {
		t.Errorf("counter did not keep counting across apply: %d before, %d (+1000) after", before.tick, after.tick)
	}
	if after.text == before.text {
		t.Errorf("the module's code did not change on apply")
	}
	code, out = w.hpbuild(t, "status", "--pid", strconv.Itoa(h.pid))
	if code != 0 || !regexp.MustCompile(`(?m)^old\.dll at 0x[0-9a-f]+: sequence 2 \(package [0-9a-f]{16}\), 5 sites`).MatchString(out) {
		t.Errorf("status after apply: exit %d\n%s", code, out)
	}
	// The same package again, and an older one, are refused.
	if code, out = w.hpbuild(t, "apply", "--pub", "k.pub", "--pid", strconv.Itoa(h.pid), "live2.hpkg"); code == 0 || !strings.Contains(out, "already applied") {
		t.Errorf("applying twice: exit %d\n%s", code, out)
	}
	if code, out = w.hpbuild(t, "apply", "--pub", "k.pub", "--pid", strconv.Itoa(h.pid), "live.hpkg"); code == 0 || !strings.Contains(out, "package sequence 1 is not newer than sequence 2") {
		t.Errorf("applying an older sequence: exit %d\n%s", code, out)
	}

	code, out = w.hpbuild(t, "rollback", "--pub", "k.pub", "--pid", strconv.Itoa(h.pid), "live2.hpkg")
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s", code, out)
	}
	back := h.next(t, "old.dll's results after rollback", isOld)
	if back.tick <= after.tick-1000 {
		t.Errorf("counter did not keep counting across rollback: %d (+1000) before, %d after", after.tick, back.tick)
	}
	if back.text != before.text {
		t.Errorf("after rollback the module's .text hashes to %s, before apply %s", back.text, before.text)
	}
	code, out = w.hpbuild(t, "status", "--pid", strconv.Itoa(h.pid))
	if code != 0 || !strings.Contains(out, "no hpbuild packages applied") {
		t.Errorf("status after rollback (the patch area must be gone): exit %d\n%s", code, out)
	}
	// Rolling back what is not applied is refused.
	if code, out = w.hpbuild(t, "rollback", "--pub", "k.pub", "--pid", strconv.Itoa(h.pid), "live2.hpkg"); code == 0 || !strings.Contains(out, "not applied") {
		t.Errorf("second rollback: exit %d\n%s", code, out)
	}
}

// TestWineRefusals: each failure is refused with its reason, nothing is
// written and the host keeps running the old code.
func TestWineRefusals(t *testing.T) {
	w := setupWine(t)
	check := func(h *host, before results) {
		t.Helper()
		r := h.next(t, "old.dll's results after a refusal", isOld)
		if r.text != before.text {
			t.Errorf("a refused apply changed the module's code: .text %s, was %s", r.text, before.text)
		}
		if code, out := w.hpbuild(t, "status", "--pid", strconv.Itoa(h.pid)); !strings.Contains(out, "no hpbuild packages applied") {
			t.Errorf("a refused apply left a patch area: exit %d\n%s", code, out)
		}
	}
	h := startHost(t, w, "park")
	before := h.next(t, "old.dll's results", isOld)
	pid := strconv.Itoa(h.pid)
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad signature", []string{"--pub", "other.pub", "--pid", pid, "live.hpkg"}, 4, "no signature by a trusted key"},
		{"wrong base build", []string{"--pub", "k.pub", "--pid", pid, "--module", "old.dll", "other.hpkg"}, 4, "is another build"},
		{"thread parked inside a site", []string{"--pub", "k.pub", "--pid", pid, "live.hpkg"}, 1, "a thread is executing the entry of park"},
	} {
		code, out := w.hpbuild(t, append([]string{"apply"}, c.args...)...)
		if code != c.code || !strings.Contains(out, c.msg) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, code, c.code, c.msg, out)
		}
		check(h, before)
	}

	h2 := startHost(t, w, "scribble")
	before2 := h2.next(t, "old.dll's results", isOld)
	code, out := w.hpbuild(t, "apply", "--pub", "k.pub", "--pid", strconv.Itoa(h2.pid), "live.hpkg")
	if code != 1 || !strings.Contains(out, "function scale: site at") || !strings.Contains(out, "nothing written") {
		t.Errorf("modified site bytes: exit %d\n%s", code, out)
	}
	check(h2, before2)
}
