package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	app := newApp(nil, io.Discard, io.Discard)
	tests := []struct {
		args string
		want string
	}{
		{"", ""},
		{"info FILE --format json", "info --format json FILE"},
		{"info --format json FILE", "info --format json FILE"},
		{"info FILE --format=json --functions", "info --format=json --functions FILE"},
		{"info FILE -format json", "info -format json FILE"},
		{"info FILE --map app.map --functions", "info --map app.map --functions FILE"},
		// A value is the next argument, whatever it looks like.
		{"info FILE --map -odd.map", "info --map -odd.map FILE"},
		{"info FILE --map --", "info --map -- FILE"},
		{"diff OLD NEW --fail-on changed --all", "diff --fail-on changed --all OLD NEW"},
		{"diff OLD --all NEW --format json", "diff --all --format json OLD NEW"},
		// Positional arguments keep their order, and so do flags.
		{"diff NEW OLD --format text --format json", "diff --format text --format json NEW OLD"},
		// "-" is a positional argument (stdin).
		{"info - --functions", "info --functions -"},
		// "--" ends the flags.
		{"info FILE -- --format", "info -- FILE --format"},
		{"info --format json -- -odd.dll", "info --format json -- -odd.dll"},
		{"diff OLD --all -- -NEW --all", "diff --all -- OLD -NEW --all"},
		// Unknown flags stay flags, without a value, for parsing to report.
		{"info FILE --bogus value", "info --bogus FILE value"},
		// A missing value: the flag goes last so parsing reports it.
		{"info FILE --format", "info --format"},
		// Help drops the positional arguments, which urfave/cli would
		// take as a help topic.
		{"info FILE --help", "info --help"},
		{"diff OLD NEW -h", "diff -h"},
		{"info FILE -h -- x", "info -h"},
		{"info FILE --help=false", "info --help=false FILE"},
		{"-h info", "-h info"},
		// Top level flags before the command.
		{"--version", "--version"},
		{"--version info FILE --functions", "--version info --functions FILE"},
		// Unknown commands are left alone.
		{"bogus FILE --format json", "bogus FILE --format json"},
		{"help info", "help info"},
		{"help info -h", "help -h"},
		// Shell completion keeps its flag last.
		{"info FILE --functions --generate-bash-completion", "info --functions FILE --generate-bash-completion"},
		{"info FILE --format --generate-bash-completion", "info --format --generate-bash-completion"},
	}
	for _, tt := range tests {
		got := reorderArgs(app.Flags, app.Commands, strings.Fields(tt.args))
		if want := strings.Fields(tt.want); !slices.Equal(got, want) {
			t.Errorf("reorderArgs(%q) = %q, want %q", tt.args, got, want)
		}
	}
}

// FuzzReorderArgs checks that reordering never invents arguments and that a
// reordered command line stays as it is when reordered again.
func FuzzReorderArgs(f *testing.F) {
	f.Add("info FILE --format json")
	f.Add("diff OLD --all -- -NEW --all --fail-on")
	f.Add("info FILE --map -- x --help=false --generate-bash-completion")
	f.Add("--version bogus --format")
	app := newApp(nil, io.Discard, io.Discard)
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		got := reorderArgs(app.Flags, app.Commands, args)
		if len(got) > len(args) {
			t.Fatalf("reorderArgs(%q) = %q: longer than its input", args, got)
		}
		for _, a := range got {
			if !slices.Contains(args, a) {
				t.Fatalf("reorderArgs(%q) = %q: %q is not in the input", args, got, a)
			}
		}
		if again := reorderArgs(app.Flags, app.Commands, got); !slices.Equal(again, got) {
			t.Fatalf("reorderArgs(%q) = %q, but reordering that gives %q", args, got, again)
		}
	})
}
