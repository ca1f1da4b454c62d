package main

import (
	"bytes"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// parseInfo runs 'hpbuild ARGS' with the info action replaced by one that
// records the options it would run with.
func parseInfo(t *testing.T, args string) (infoOptions, int, string) {
	t.Helper()
	var stderr bytes.Buffer
	app := newApp(nil, io.Discard, &stderr)
	var got infoOptions
	app.Command("info").Action = func(c *cli.Context) error {
		opts, err := infoOptionsFrom(c)
		got = opts
		return err
	}
	code := runApp(app, append([]string{"hpbuild"}, strings.Fields(args)...))
	return got, code, stderr.String()
}

func parseDiff(t *testing.T, args string) (diffOptions, int, string) {
	t.Helper()
	var stderr bytes.Buffer
	app := newApp(nil, io.Discard, &stderr)
	var got diffOptions
	app.Command("diff").Action = func(c *cli.Context) error {
		opts, err := diffOptionsFrom(c)
		got = opts
		return err
	}
	code := runApp(app, append([]string{"hpbuild"}, strings.Fields(args)...))
	return got, code, stderr.String()
}

func TestInfoOptions(t *testing.T) {
	tests := []struct {
		args string
		want infoOptions
	}{
		{"info a.dll", infoOptions{File: "a.dll", Format: "text"}},
		{"info a.dll --format json", infoOptions{File: "a.dll", Format: "json"}},
		{"info --format json a.dll", infoOptions{File: "a.dll", Format: "json"}},
		{"info --format=json a.dll", infoOptions{File: "a.dll", Format: "json"}},
		{"info a.dll --functions --map a.map", infoOptions{File: "a.dll", Format: "text", Functions: true, Map: "a.map"}},
		{"info --functions a.dll --map=a.map --format json", infoOptions{File: "a.dll", Format: "json", Functions: true, Map: "a.map"}},
		{"info --format json -- --functions", infoOptions{File: "--functions", Format: "json"}},
		{"info a.dll -- --functions", infoOptions{}}, // two arguments
		{"info a.dll --functions --pdb a.pdb", infoOptions{File: "a.dll", Format: "text", Functions: true, PDBFile: "a.pdb"}},
		{"info --no-pdb a.dll", infoOptions{File: "a.dll", Format: "text", PDB: pdbSearch{Off: true}}},
		{"info a.dll --symbol-path s1" + string(os.PathListSeparator) + "s2", infoOptions{File: "a.dll", Format: "text", PDB: pdbSearch{SymbolPath: []string{"s1", "s2"}}}},
		{"info --no-pdb --pdb a.pdb a.dll", infoOptions{}}, // contradiction
	}
	t.Setenv(symbolPathEnv, "")
	for _, tt := range tests {
		got, code, stderr := parseInfo(t, tt.args)
		wantCode := exitOK
		if reflect.DeepEqual(tt.want, infoOptions{}) {
			wantCode = exitUsage
		}
		if wantCode == exitUsage {
			got = infoOptions{}
		}
		if code != wantCode || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("hpbuild %s: exit %d, options %+v; want exit %d, options %+v\nstderr:\n%s", tt.args, code, got, wantCode, tt.want, stderr)
		}
	}
}

func TestDiffOptions(t *testing.T) {
	tests := []struct {
		args string
		want diffOptions
	}{
		{"diff a b", diffOptions{Old: "a", New: "b", Format: "text"}},
		{"diff a b --format json", diffOptions{Old: "a", New: "b", Format: "json"}},
		{"diff --format json a b", diffOptions{Old: "a", New: "b", Format: "json"}},
		{"diff a --all b --fail-on reboot-required", diffOptions{Old: "a", New: "b", Format: "text", All: true, FailOn: "reboot-required"}},
		{"diff --fail-on=changed a b --format=json", diffOptions{Old: "a", New: "b", Format: "json", FailOn: "changed"}},
		{"diff --fail-on= a b", diffOptions{Old: "a", New: "b", Format: "text"}},
		{"diff a b --old-pdb a.pdb --new-pdb b.pdb", diffOptions{Old: "a", New: "b", Format: "text", OldPDB: "a.pdb", NewPDB: "b.pdb"}},
		{"diff --no-pdb a b", diffOptions{Old: "a", New: "b", Format: "text", PDB: pdbSearch{Off: true}}},
	}
	t.Setenv(symbolPathEnv, "")
	for _, tt := range tests {
		got, code, stderr := parseDiff(t, tt.args)
		if code != exitOK || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("hpbuild %s: exit %d, options %+v; want exit 0, options %+v\nstderr:\n%s", tt.args, code, got, tt.want, stderr)
		}
	}
}

// TestRunErrors checks the exit status and the message of command lines that
// fail before any work is done.
func TestRunErrors(t *testing.T) {
	tests := []struct {
		args   string
		code   int
		stderr string // regexp
	}{
		{"", exitUsage, `(?m)^COMMANDS:\n(.|\n)*^hpbuild: error: no command given\n\z`},
		{"bogus", exitUsage, `^hpbuild: error: unknown command "bogus"\nhpbuild: hint: run 'hpbuild help' for the list of commands\n\z`},
		{"dif a b", exitUsage, `^hpbuild: error: unknown command "dif"\nhpbuild: hint: did you mean 'hpbuild diff'\?\n\z`},
		{"--bogus", exitUsage, `^hpbuild: error: unknown flag --bogus\nhpbuild: hint: run 'hpbuild --help'\n\z`},
		{"info --bogus a.dll", exitUsage, `^hpbuild: error: unknown flag --bogus\nhpbuild: hint: run 'hpbuild info --help'\n\z`},
		{"info a.dll -x", exitUsage, `^hpbuild: error: unknown flag -x\nhpbuild: hint: run 'hpbuild info --help'\n\z`},
		{"info a.dll --fromat json", exitUsage, `^hpbuild: error: unknown flag --fromat\nhpbuild: hint: did you mean --format\? run 'hpbuild info --help'\n\z`},
		{"info", exitUsage, `^hpbuild: error: missing FILE argument\nhpbuild: hint: run 'hpbuild info --help'\n\z`},
		{"info a.dll b.dll", exitUsage, `^hpbuild: error: unexpected argument "b.dll"\n`},
		{"info a.dll --format xml", exitUsage, `^hpbuild: error: invalid value "xml" for --format\nhpbuild: hint: --format takes text or json\n\z`},
		{"info a.dll --format", exitUsage, `^hpbuild: error: flag --format needs a value\nhpbuild: hint: run 'hpbuild info --help'\n\z`},
		{"info a.dll --functions=maybe", exitUsage, `^hpbuild: error: invalid boolean value "maybe" for -functions`},
		{"diff", exitUsage, `^hpbuild: error: missing OLD and NEW arguments\n`},
		{"diff a.dll", exitUsage, `^hpbuild: error: missing NEW argument\nhpbuild: hint: run 'hpbuild diff --help'\n\z`},
		{"diff a b c", exitUsage, `^hpbuild: error: unexpected argument "c"\n`},
		{"diff a b --fail-on always", exitUsage, `^hpbuild: error: invalid value "always" for --fail-on\nhpbuild: hint: --fail-on takes reboot-required or changed\n\z`},
		{"diff a b --format pdf", exitUsage, `^hpbuild: error: invalid value "pdf" for --format\n`},
		{"help bogus", exitUsage, `^hpbuild: error: unknown command "bogus"\n`},
		{"help info diff", exitUsage, `^hpbuild: error: unexpected argument "diff"\n`},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"hpbuild"}, strings.Fields(tt.args)...), strings.NewReader(""), &stdout, &stderr)
		if code != tt.code {
			t.Errorf("hpbuild %s: exit %d, want %d\nstderr:\n%s", tt.args, code, tt.code, stderr.String())
		}
		if !regexp.MustCompile(tt.stderr).MatchString(stderr.String()) {
			t.Errorf("hpbuild %s: stderr does not match %s:\n%s", tt.args, tt.stderr, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("hpbuild %s: unexpected stdout:\n%s", tt.args, stdout.String())
		}
	}
}

func TestRunHelp(t *testing.T) {
	for _, args := range []string{"--help", "-h", "help"} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"hpbuild", args}, nil, &stdout, &stderr)
		if code != exitOK || stderr.Len() != 0 || !strings.Contains(stdout.String(), "COMMANDS:") {
			t.Errorf("hpbuild %s: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout.String(), stderr.String())
		}
	}
	// The help of every command has examples and is the same whichever way
	// it is asked for. ('hpbuild help --help' shows the list of commands.)
	for _, cmd := range newApp(nil, io.Discard, io.Discard).Commands {
		var want string
		variants := [][]string{
			{"help", cmd.Name},
			{cmd.Name, "--help"},
			{cmd.Name, "ARG", "-h"},
		}
		if cmd.Name == "help" {
			variants = variants[:1]
		}
		for i, args := range variants {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"hpbuild"}, args...), nil, &stdout, &stderr)
			if code != exitOK || stderr.Len() != 0 {
				t.Errorf("hpbuild %s: exit %d\nstderr:\n%s", strings.Join(args, " "), code, stderr.String())
			}
			if i == 0 {
				want = stdout.String()
				if !strings.Contains(want, "Examples:\n     hpbuild "+cmd.Name) {
					t.Errorf("hpbuild %s: no examples:\n%s", strings.Join(args, " "), want)
				}
			} else if stdout.String() != want {
				t.Errorf("hpbuild %s:\n%s\nwant the same as 'hpbuild help %s':\n%s", strings.Join(args, " "), stdout.String(), cmd.Name, want)
			}
		}
	}
}

func TestRunNoArgs(t *testing.T) {
	// os.Args is never empty, but run must not depend on it.
	if code := run(nil, nil, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("run(nil) = %d, want %d", code, exitUsage)
	}
}
