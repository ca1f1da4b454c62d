package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/hpbuild/hpbuild/bundle"
	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/report"
	"github.com/hpbuild/hpbuild/signing"
	"github.com/urfave/cli/v2"
)

func bundleCommand() *cli.Command {
	return &cli.Command{
		Name:      "bundle",
		Usage:     "diff two release trees and build a package for every hot-patchable binary",
		UsageText: "hpbuild bundle --key KEY -o OUT [--jobs N] [--shard I/N] [--sequence N] [--fail-on reboot-required] [--html FILE] [--quiet] OLD_DIR NEW_DIR\n   hpbuild bundle merge --key KEY [--pub KEY ...] [--fail-on reboot-required] -o OUT SHARD_OUT...",
		Description: `Bundle pairs the files of OLD_DIR and NEW_DIR by relative path and
compares the PE images among them, --jobs at a time (default: the number
of cores). For every hot-patchable binary it writes a signed package to
OUT/packages/PATH.hpkg. OUT/index.json (schema hpbuild.bundle/v1, signed
in OUT/index.json.sig) lists every path of both trees with its verdict:
hotpatchable, reboot-required, identical, added, removed, unsupported
(another machine, .NET, malformed) or not-pe; OUT/summary.md is a summary
for people. Files of one kind or another never stop the run. Output is
deterministic. A progress bar is drawn on a terminal unless --quiet.

--shard I/N processes every N-th path only (a CI matrix of N machines);
'hpbuild bundle merge' joins the N outputs into what one run gives.
With --fail-on reboot-required the exit status is 3 when any binary needs
a restart (the output is written in full first).

Examples:
  hpbuild bundle --key release.key -o out/ release-1.0/ release-1.1/
  hpbuild bundle --key release.key -o shard2/ --shard 2/4 release-1.0/ release-1.1/
  hpbuild bundle merge --key release.key --pub release.pub -o out/ shard1/ shard2/ shard3/ shard4/`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "sign packages and the index with the private key in `FILE`"},
			&cli.StringFlag{Name: "o", Aliases: []string{"output"}, Usage: "write the bundle to the empty or new directory `OUT`"},
			&cli.IntFlag{Name: "jobs", Usage: "compare `N` binaries at a time (default: the number of cores)"},
			&cli.StringFlag{Name: "shard", Usage: "process shard `I/N` of the paths only"},
			&cli.Uint64Flag{Name: "sequence", Value: 1, Usage: "sequence number `N` of the packages"},
			&cli.StringFlag{Name: "fail-on", Usage: "exit 3 when `CONDITION` holds: reboot-required"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
			&cli.StringFlag{Name: "html", Usage: "also write an HTML report with side-by-side disassembly to `FILE` (outside OUT)"},
		},
		Subcommands: []*cli.Command{bundleMergeCommand()},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "OLD_DIR", "NEW_DIR"); err != nil {
				return err
			}
			if c.String("key") == "" || c.String("o") == "" {
				return &usageError{err: errors.New("bundle needs --key KEY and -o OUT")}
			}
			failOn, err := bundleFailOn(c)
			if err != nil {
				return err
			}
			jobs := c.Int("jobs")
			if jobs == 0 {
				jobs = runtime.NumCPU()
			}
			if jobs < 0 {
				return &usageError{err: fmt.Errorf("--jobs must be positive, got %d", jobs)}
			}
			shard, shards, err := parseShard(c.String("shard"))
			if err != nil {
				return &usageError{err: err}
			}
			key, err := signing.LoadPrivate(c.String("key"))
			if err != nil {
				return err
			}
			opts := bundle.Options{Key: key, Jobs: jobs, Shard: shard, Shards: shards, Sequence: c.Uint64("sequence"), Tool: "hpbuild " + version()}
			bar := newProgress(c.App.ErrWriter, c.Bool("quiet"))
			opts.Progress = bar.update
			out := c.String("o")
			var html bytes.Buffer
			var hw report.Writer
			if c.String("html") != "" {
				hw = report.NewHTML(&html, fmt.Sprintf("hpbuild bundle %s %s", c.Args().Get(0), c.Args().Get(1)))
				opts.Report = func(e bundle.Entry, r *diff.Report, oldF, newF *pe.File) error {
					return hw.Add(report.Binary{Path: e.Path, Verdict: e.Verdict, Note: e.Reason, Package: e.Package, Report: r, Old: oldF, New: newF})
				}
			}
			ix, err := bundle.Run(c.Args().Get(0), c.Args().Get(1), out, opts)
			bar.finish()
			if err != nil {
				return err
			}
			if hw != nil {
				if err := hw.Close(); err != nil {
					return err
				}
				if err := writeFileAtomic(c.String("html"), html.Bytes(), 0o644); err != nil {
					return err
				}
			}
			return finishBundle(c.App.Writer, out, ix, failOn)
		},
	}
}

func bundleMergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "join the outputs of bundle --shard runs",
		UsageText: "hpbuild bundle merge --key KEY [--pub KEY ...] [--fail-on reboot-required] -o OUT SHARD_OUT...",
		Description: `Merge checks that the SHARD_OUT directories are every shard of one run
(each once; with --pub, each index signed by a trusted key), copies their
packages (checked against the SHA-256 their index gives) and writes the
index, its signature and the summary: byte for byte what one run gives.

Examples:
  hpbuild bundle merge --key release.key --pub release.pub -o out/ shard1/ shard2/`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "sign the merged index with the private key in `FILE`"},
			&cli.StringSliceFlag{Name: "pub", Usage: "require each shard's index to be signed by the key in `FILE` (repeatable)"},
			&cli.StringFlag{Name: "o", Aliases: []string{"output"}, Usage: "write the merged bundle to `OUT`"},
			&cli.StringFlag{Name: "fail-on", Usage: "exit 3 when `CONDITION` holds: reboot-required"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf(c, "missing SHARD_OUT arguments")
			}
			if c.String("key") == "" || c.String("o") == "" {
				return &usageError{err: errors.New("bundle merge needs --key KEY and -o OUT")}
			}
			failOn, err := bundleFailOn(c)
			if err != nil {
				return err
			}
			key, err := signing.LoadPrivate(c.String("key"))
			if err != nil {
				return err
			}
			keys, err := loadPublicKeys(c.StringSlice("pub"))
			if err != nil {
				return err
			}
			ix, err := bundle.Merge(c.String("o"), c.Args().Slice(), key, keys)
			if err != nil {
				return asVerify(err)
			}
			return finishBundle(c.App.Writer, c.String("o"), ix, failOn)
		},
	}
}

// bundleFailOn reads --fail-on of bundle and bundle merge.
func bundleFailOn(c *cli.Context) (string, error) {
	f := c.String("fail-on")
	if f != "" && f != "reboot-required" {
		return "", &usageError{err: fmt.Errorf("--fail-on: unknown condition %q (want reboot-required)", f)}
	}
	return f, nil
}

func parseShard(s string) (int, int, error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, fmt.Errorf("--shard %q: want I/N with 1 <= I <= N", s)
	}
	return i, n, nil
}

// finishBundle writes the summary and prints the counts.
func finishBundle(w io.Writer, out string, ix *bundle.Index, failOn string) error {
	var b bytes.Buffer
	if err := writeBundleSummary(&b, ix); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(out, "summary.md"), b.Bytes(), 0o644); err != nil {
		return err
	}
	var parts []string
	for _, v := range bundle.Verdicts {
		if n := ix.Summary[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	fmt.Fprintf(w, "wrote %s: %d paths (%s), index %s\n", out, len(ix.Binaries), strings.Join(parts, ", "), filepath.Join(out, "index.json"))
	if failOn == "reboot-required" && ix.Summary[bundle.RebootRequired] > 0 {
		return &failOnError{err: fmt.Errorf("%d binaries need a restart (--fail-on reboot-required)", ix.Summary[bundle.RebootRequired])}
	}
	return nil
}

// writeBundleSummary is the Markdown summary of a bundle, made from the
// index alone, so that a merge of shards writes the same one.
func writeBundleSummary(w io.Writer, ix *bundle.Index) error {
	md := report.NewMarkdown(w, "hpbuild bundle")
	for _, e := range ix.Binaries {
		note := e.Reason
		if len(e.Rules) > 0 {
			note = strings.TrimSuffix("rules "+strings.Join(e.Rules, ", ")+"; "+note, "; ")
		}
		if e.Verdict == bundle.Hotpatchable || e.Verdict == bundle.RebootRequired || e.Verdict == bundle.Identical {
			note = fmt.Sprintf("%d changed, %d added, %d removed functions; %s", e.Changed, e.Added, e.Removed, note)
			note = strings.TrimSuffix(note, "; ")
		}
		if err := md.Add(report.Binary{Path: e.Path, Verdict: e.Verdict, Note: note, Package: e.Package}); err != nil {
			return err
		}
	}
	return md.Close()
}

// progress is a one-line progress bar on a terminal.
type progress struct {
	w  io.Writer
	on bool
	n  int
}

func newProgress(w io.Writer, quiet bool) *progress {
	return &progress{w: w, on: !quiet && isTerminal(w)}
}

func (p *progress) update(done, total int, path string) {
	if !p.on {
		return
	}
	const width = 30
	fill := width * done / max(total, 1)
	line := fmt.Sprintf("\r[%s%s] %d/%d %s", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, total, shorten(path, 40))
	fmt.Fprintf(p.w, "%-*s", p.n, line)
	p.n = len(line)
}

func (p *progress) finish() {
	if p.on && p.n > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.n))
	}
}

// shorten keeps the last n bytes of a path, marked with "…".
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
