package main

import (
	"errors"
	"flag"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/script/*.txtar from the actual output (cmp only)")

// TestMain makes this test binary double as the hpbuild command: scripts run
// 'exec hpbuild ...' and get main, exit status and all.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"hpbuild": main})
}

// TestScripts runs the end-to-end scripts in testdata/script. Besides the
// standard commands they can use
//
//	exitcode N program [args...]
//
// which runs program like exec and fails unless it exits with status N.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Cmds:                map[string]func(*testscript.TestScript, bool, []string){"exitcode": cmdExitcode},
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			fixtures, err := filepath.Abs("../../testdata")
			if err != nil {
				return err
			}
			env.Setenv("FIXTURES", fixtures)
			return nil
		},
	})
}

// cmdExitcode implements 'exitcode N program [args...]'. Like exec, it sets
// the stdout and stderr that the next stdout, stderr and cmp commands see.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode (use exitcode N with the status expected)")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil || want < 0 {
		ts.Fatalf("usage: exitcode N program [args...]: bad status %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}
