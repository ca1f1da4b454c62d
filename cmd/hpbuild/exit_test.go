package main

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestExitCode(t *testing.T) {
	usage := &usageError{err: errors.New("missing FILE argument")}
	failOn := &failOnError{err: errors.New("reboot required")}
	verify := &verifyError{err: errors.New("bad signature")}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"plain", errors.New("open x.dll: no such file"), exitError},
		{"hinted", withHint(errors.New("not a PE image"), "try --map"), exitError},
		{"usage", usage, exitUsage},
		{"wrapped usage", fmt.Errorf("info: %w", usage), exitUsage},
		{"hinted usage", withHint(usage, "run 'hpbuild --help'"), exitUsage},
		{"fail-on", failOn, exitFailOn},
		{"wrapped fail-on", fmt.Errorf("diff: %w", failOn), exitFailOn},
		{"verify", verify, exitVerify},
		{"wrapped verify", fmt.Errorf("apply: %w", verify), exitVerify},
		// Verification failures win over everything else.
		{"joined", errors.Join(usage, verify, failOn), exitVerify},
		{"joined usage fail-on", errors.Join(usage, failOn), exitFailOn},
		// urfave/cli's exit coders do not decide our exit status.
		{"cli exit", cli.Exit("no help topic", 3), exitError},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestPrintError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("boom"), "hpbuild: error: boom\n"},
		{
			&usageError{err: errors.New("missing FILE argument"), hint: "run 'hpbuild info --help'"},
			"hpbuild: error: missing FILE argument\nhpbuild: hint: run 'hpbuild info --help'\n",
		},
		{
			fmt.Errorf("diff: %w", withHint(errors.New("no functions"), "pass --map")),
			"hpbuild: error: diff: no functions\nhpbuild: hint: pass --map\n",
		},
		{
			errors.Join(errors.New("first"), errors.New("second")),
			"hpbuild: error: first\nhpbuild: error: second\n",
		},
		{errors.New(""), "hpbuild: error: unknown error\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		printError(&buf, tt.err)
		if got := buf.String(); got != tt.want {
			t.Errorf("printError(%q):\ngot  %q\nwant %q", tt.err, got, tt.want)
		}
	}
}
