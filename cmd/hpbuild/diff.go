package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/report"
	"github.com/urfave/cli/v2"
)

// diffOptions is what 'hpbuild diff' was asked to do, validated.
type diffOptions struct {
	Old, New string // the two builds of the image
	Format   string // "text", "json", "markdown" or "html"
	All      bool   // list unchanged functions too (text; JSON always lists every function)
	FailOn   string // "", "reboot-required" or "changed": the condition that makes the exit status 3
	Policy   string // path of a policy file, "" for none
	OldPDB   string // --old-pdb, "" to look for it
	NewPDB   string // --new-pdb, "" to look for it
	PDB      pdbSearch
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "compare two builds of a PE image function by function",
		UsageText: "hpbuild diff [--format text|json|markdown|html] [--all] [--fail-on reboot-required|changed] [--policy FILE] [--old-pdb FILE] [--new-pdb FILE] [--symbol-path DIRS] [--no-pdb] OLD NEW",
		Description: `Diff compares OLD and NEW by meaning, not by address: a function whose code
only moved is unchanged. Every changed, added or removed function gets a
verdict, hot-patchable or reboot-required, with the rules that decided it.
With --format json, stdout carries one JSON object (schema hpbuild.diff/v1)
and diagnostics go to stderr. --format markdown writes a summary for a CI
job page or a pull-request comment; --format html one self-contained page
with the changed functions' old and new code side by side.

--fail-on makes the exit status 3, after the full report, when NEW is
reboot-required (reboot-required) or differs from OLD at all (changed).

--policy FILE changes what rules do: one "RULE ACTION" per line, RULE a
rule id or a prefix ending in "*", ACTION ignore, warn (never blocks) or
block (reboot-required); "#" starts a comment. See docs/rules.md.

PDBs name and delimit every function exactly and pair functions by their
decorated names: --old-pdb/--new-pdb, else the file named by each image's
CodeView record next to it, else a symbol store from --symbol-path or
$HPBUILD_SYMBOL_PATH. A PDB whose GUID or age does not match its image is
refused with a warning naming both GUIDs, and the diff goes on without it.
--no-pdb looks for none.

Examples:
  hpbuild diff old/app.dll new/app.dll
  hpbuild diff --all old/app.dll new/app.dll
  hpbuild diff old/app.dll new/app.dll --format json > report.json
  hpbuild diff --format markdown old/app.dll new/app.dll >> "$GITHUB_STEP_SUMMARY"
  hpbuild diff --format html old/app.dll new/app.dll > report.html
  hpbuild diff --fail-on reboot-required old/app.dll new/app.dll
  hpbuild diff --policy team.policy --fail-on reboot-required old/app.dll new/app.dll
  hpbuild diff --old-pdb old/app.pdb --new-pdb new/app.pdb old/app.dll new/app.dll`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text, json, markdown or html"},
			&cli.BoolFlag{Name: "all", Usage: "list unchanged functions too", DisableDefaultText: true},
			&cli.StringFlag{Name: "fail-on", Usage: "exit with status 3 when `CONDITION` is met: reboot-required or changed"},
			&cli.StringFlag{Name: "policy", Usage: "apply the rule policy in `FILE` (ignore / warn / block per rule)"},
			&cli.StringFlag{Name: "old-pdb", Usage: "read OLD's procedures and data objects from the PDB `FILE`"},
			&cli.StringFlag{Name: "new-pdb", Usage: "read NEW's procedures and data objects from the PDB `FILE`"},
		}, pdbFlags()...),
		Action: func(c *cli.Context) error {
			opts, err := diffOptionsFrom(c)
			if err != nil {
				return err
			}
			return runDiff(opts, c.App.Writer)
		},
	}
}

// diffOptionsFrom validates the command line of 'hpbuild diff'.
func diffOptionsFrom(c *cli.Context) (diffOptions, error) {
	if err := exactArgs(c, "OLD", "NEW"); err != nil {
		return diffOptions{}, err
	}
	format, err := oneOf(c, "format", false, "text", "json", "markdown", "html")
	if err != nil {
		return diffOptions{}, err
	}
	failOn, err := oneOf(c, "fail-on", true, "reboot-required", "changed")
	if err != nil {
		return diffOptions{}, err
	}
	search, err := pdbSearchFrom(c, "old-pdb", "new-pdb")
	if err != nil {
		return diffOptions{}, err
	}
	return diffOptions{
		OldPDB: c.String("old-pdb"),
		NewPDB: c.String("new-pdb"),
		PDB:    search,
		Old:    c.Args().Get(0),
		New:    c.Args().Get(1),
		Format: format,
		All:    c.Bool("all"),
		FailOn: failOn,
		Policy: c.String("policy"),
	}, nil
}

// runDiff compares opts.Old with opts.New and prints the report to stdout.
// When the --fail-on condition is met it returns a *failOnError after
// printing the whole report.
func runDiff(opts diffOptions, stdout io.Writer) error {
	policy, err := loadPolicy(opts.Policy)
	if err != nil {
		return err
	}
	defer memoryBudget(opts.Old, opts.New).Release()
	oldF, newF, err := openPair(opts.Old, opts.New, opts.PDB.options(opts.OldPDB), opts.PDB.options(opts.NewPDB))
	if err != nil {
		return err
	}
	defer oldF.Close()
	defer newF.Close()
	r := diff.Compare(oldF, newF)
	r.ApplyPolicy(policy)
	switch opts.Format {
	case "json":
		if err := r.WriteJSON(stdout); err != nil {
			return err
		}
	case "markdown", "html":
		title := fmt.Sprintf("hpbuild diff %s %s", opts.Old, opts.New)
		w := report.NewMarkdown(stdout, title)
		if opts.Format == "html" {
			w = report.NewHTML(stdout, title)
		}
		if err := w.Add(report.Binary{Path: filepath.Base(opts.New), Report: r, Old: oldF, New: newF}); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	default:
		if err := report.WriteText(stdout, r, oldF, newF, report.TextOptions{All: opts.All, Color: useColor(stdout)}); err != nil {
			return err
		}
	}
	switch {
	case opts.FailOn == "reboot-required" && r.Verdict == diff.VerdictRebootRequired:
		return &failOnError{err: fmt.Errorf("--fail-on=reboot-required: the update is reboot-required")}
	case opts.FailOn == "changed" && r.Verdict != diff.VerdictIdentical:
		return &failOnError{err: fmt.Errorf("--fail-on=changed: the images differ (%s)", r.Verdict)}
	}
	return nil
}
