//go:build linux

package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromium returns the path of Debian's chromium, skipping the test when
// it is not installed (CI installs it: .ci/run; there a missing browser
// fails the test instead).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HPBUILD_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found on PATH; .ci/run should have installed it")
		}
		t.Skip("chromium not installed: apt-get install chromium to run the HTML report in a browser (.ci/run does)")
	}
	return p
}

// browse loads page in headless Chromium and returns the DOM after its
// scripts ran and the console messages it logged (every level: Chromium
// logs console.log, console.error, uncaught exceptions and Content
// Security Policy violations alike as "CONSOLE" lines on stderr).
func browse(t *testing.T, page []byte) (dom string, console []string) {
	t.Helper()
	bin := chromium(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--enable-logging=stderr", "--v=0",
		"--dump-dom", "file://"+path)
	// Chromium starts helper processes: a timeout kills its whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, tail(stderr.String(), 3000))
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			console = append(console, line)
		}
	}
	if !strings.Contains(stdout.String(), "</html>") {
		t.Fatalf("chromium dumped no DOM\nstderr:\n%s", tail(stderr.String(), 3000))
	}
	return stdout.String(), console
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// TestChromiumReportsConsoleErrors makes sure the browser test can fail:
// a page with a console.error, an uncaught exception and a blocked
// external image under the report's Content Security Policy must log all
// three.
func TestChromiumReportsConsoleErrors(t *testing.T) {
	page := `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>canary</title></head><body><img src="https://example.invalid/x.png">
<script>console.error("canary-error");</script><script>canaryMissing();</script></body></html>`
	_, console := browse(t, []byte(page))
	all := strings.Join(console, "\n")
	for _, want := range []string{"canary-error", "canaryMissing", "Content Security Policy"} {
		if !strings.Contains(all, want) {
			t.Errorf("chromium did not report %q on stderr; console lines:\n%s", want, all)
		}
	}
}

// TestHTMLInChromium renders the fixture release's report and a page of
// hostile names in headless Chromium: no console message at all (no
// error, no blocked resource, no log), the report's script ran to its
// end, and the DOM holds what the report must show.
func TestHTMLInChromium(t *testing.T) {
	page := render(t, writers[1].new, release(t))
	dom, console := browse(t, page)
	if len(console) > 0 {
		t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
	}
	for _, want := range []string{
		`data-ready="yes"`,
		// body_change's compute: its first differing instruction, highlighted.
		`<tr class="diff"><td class="off">+0015</td><td class="old">lea edx, ptr [8*r9]</td><td class="off">+0015</td><td class="new">lea edx, ptr [r9+8*r9]</td></tr>`,
		`<td class="old">call clamp</td>`,
		`<span class="rule">RR-DATA-INIT</span> data <code>g_limit</code>`,
		`<code>geo::scale [?scale@geo@@YAHH@Z]</code>`,
		`<code>_ZNK5Codec10block_sizeEv</code>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered DOM lacks %s", want)
		}
	}

	var buf bytes.Buffer
	w := NewHTML(&buf, hostile)
	if err := w.Add(Binary{Path: "bin/" + hostile, Report: hostileReport()}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dom, console = browse(t, buf.Bytes())
	if len(console) > 0 {
		t.Errorf("hostile names: console messages:\n%s", strings.Join(console, "\n"))
	}
	if n := strings.Count(dom, "<script"); n != 1 {
		t.Errorf("hostile names: %d script elements in the DOM, want the report's one", n)
	}
	if !strings.Contains(dom, `data-ready="yes"`) {
		t.Error("hostile names: the report's script did not run to its end")
	}
	if !strings.Contains(dom, "&lt;/code&gt;&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("hostile names: the name is not text in the DOM")
	}
}
