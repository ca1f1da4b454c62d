package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// run runs hpbuild with the command line args (args[0] is the program name)
// and returns the process exit status. It owns no global state: everything it
// reads and writes goes through its arguments, so tests call it directly.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runApp(newApp(stdin, stdout, stderr), args)
}

// runApp runs app with the command line args, reports the error on
// app.ErrWriter and returns the exit status.
func runApp(app *cli.App, args []string) int {
	argv := []string{"hpbuild"}
	if len(args) > 0 {
		argv = append([]string{args[0]}, reorderArgs(app.Flags, app.Commands, args[1:])...)
	}
	err := app.Run(argv)
	if err != nil {
		printError(app.ErrWriter, err)
	}
	return exitCode(err)
}

// newApp returns the hpbuild command line application. urfave/cli never
// prints errors or exits on its own: every error comes back from App.Run and
// run prints it and picks the exit status.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "hpbuild",
		Usage:     "diff two builds of a Windows PE image and build hot patches",
		UsageText: "hpbuild COMMAND [options] ARGS...\nhpbuild --version",
		Description: `hpbuild compares an old and a new build of a DLL or EXE function by function,
says for every change whether it can be applied to a running process
(hot-patchable) or needs a restart (reboot-required) and why.

Flags may come before or after the arguments. Exit status: 0 success,
1 error, 2 usage, 3 --fail-on condition met, 4 verification failed.

Examples:
  hpbuild info app.dll
  hpbuild info --functions --format json app.dll
  hpbuild diff old/app.dll new/app.dll
  hpbuild diff --fail-on reboot-required old/app.dll new/app.dll
  hpbuild help diff`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "version", Usage: "print the version and exit", DisableDefaultText: true},
		},
		Commands: []*cli.Command{
			infoCommand(),
			diffCommand(),
			buildCommand(),
			inspectCommand(),
			verifyCommand(),
			signCommand(),
			applyCommand(),
			rollbackCommand(),
			statusCommand(),
			bundleCommand(),
			completionCommand(),
			manCommand(),
			keygenCommand(),
			helpCommand(),
		},
		Action:               rootAction,
		OnUsageError:         onUsageError,
		ExitErrHandler:       func(*cli.Context, error) {}, // run reports errors; never os.Exit
		EnableBashCompletion: true,
		// urfave/cli's help command and flag are package variables that it
		// mutates while running; every App and Command here gets its own
		// --help flag instead, and helpCommand replaces its help command.
		HideHelp:  true,
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
	}
	app.Flags = append(app.Flags, helpFlag())
	for _, c := range app.Commands {
		c.OnUsageError = onUsageError
		// No "help" subcommand: 'hpbuild info help' names a file called
		// help. --help still works.
		c.HideHelp = true
		c.Flags = append(c.Flags, helpFlag())
	}
	return app
}

// helpFlag returns a new --help flag. urfave/cli finds it by name.
func helpFlag() cli.Flag {
	return &cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help", DisableDefaultText: true}
}

// rootAction runs when no command is named: --version, an unknown command or
// nothing at all.
func rootAction(c *cli.Context) error {
	if c.Bool("version") {
		_, err := fmt.Fprintf(c.App.Writer, "hpbuild %s\n", version())
		return err
	}
	if c.Args().Present() {
		return unknownCommand(c, c.Args().First())
	}
	cli.HelpPrinter(c.App.ErrWriter, cli.AppHelpTemplate, c.App)
	fmt.Fprintln(c.App.ErrWriter)
	return &usageError{err: errors.New("no command given")}
}

// helpCommand replaces urfave/cli's help command so that an unknown topic is
// a usage error in our voice.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show the list of commands or the help of one command",
		UsageText: "hpbuild help [COMMAND]",
		Description: `Examples:
  hpbuild help
  hpbuild help diff`,
		Action: func(c *cli.Context) error {
			switch c.NArg() {
			case 0:
				return cli.ShowAppHelp(c)
			case 1:
				name := c.Args().First()
				cmd := c.App.Command(name)
				if cmd == nil {
					return unknownCommand(c, name)
				}
				if len(cmd.Subcommands) > 0 {
					// urfave/cli shows such a command's subcommands and
					// flags only through its own --help.
					return c.App.RunContext(c.Context, []string{c.App.Name, name, "--help"})
				}
				return cli.ShowCommandHelp(c, name)
			default:
				return usageErrorf(c, "unexpected argument %q", c.Args().Get(1))
			}
		},
	}
}

func unknownCommand(c *cli.Context, name string) error {
	hint := "run 'hpbuild help' for the list of commands"
	var names []string
	for _, cmd := range c.App.Commands {
		if !cmd.Hidden {
			names = append(names, cmd.Names()...)
		}
	}
	if s := closest(name, names); s != "" {
		hint = fmt.Sprintf("did you mean 'hpbuild %s'?", s)
	}
	return &usageError{err: fmt.Errorf("unknown command %q", name), hint: hint}
}

// onUsageError turns urfave/cli's flag parsing errors (the messages of Go's
// flag package) into usage errors in our voice.
func onUsageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	hint := helpHint(c)
	switch {
	case strings.HasPrefix(msg, "flag provided but not defined: -"):
		name := strings.TrimPrefix(msg, "flag provided but not defined: -")
		msg = "unknown flag " + dashed(name)
		var names []string
		for _, f := range c.Command.Flags {
			names = append(names, f.Names()...)
		}
		if s := closest(name, names); s != "" {
			hint = fmt.Sprintf("did you mean %s? %s", dashed(s), hint)
		}
	case strings.HasPrefix(msg, "flag needs an argument: -"):
		name := strings.TrimPrefix(msg, "flag needs an argument: -")
		msg = "flag " + dashed(name) + " needs a value"
	}
	return &usageError{err: errors.New(msg), hint: hint}
}

// usageErrorf returns a usage error with a hint pointing at the help of the
// command that c runs.
func usageErrorf(c *cli.Context, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), hint: helpHint(c)}
}

func helpHint(c *cli.Context) string {
	name := "hpbuild"
	if c != nil && c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	return fmt.Sprintf("run '%s --help'", name)
}

// exactArgs checks that c has one positional argument for each of names
// (upper case placeholders such as "OLD" and "NEW").
func exactArgs(c *cli.Context, names ...string) error {
	n := c.NArg()
	switch {
	case n < len(names):
		missing := names[n:]
		if len(missing) == 1 {
			return usageErrorf(c, "missing %s argument", missing[0])
		}
		return usageErrorf(c, "missing %s arguments", orList(missing, "and"))
	case n > len(names):
		return usageErrorf(c, "unexpected argument %q", c.Args().Get(len(names)))
	}
	return nil
}

// oneOf returns the value of the string flag name, which must be one of
// values (or empty, if allowEmpty).
func oneOf(c *cli.Context, name string, allowEmpty bool, values ...string) (string, error) {
	v := c.String(name)
	if slices.Contains(values, v) || (allowEmpty && v == "") {
		return v, nil
	}
	return "", &usageError{
		err:  fmt.Errorf("invalid value %q for --%s", v, name),
		hint: fmt.Sprintf("--%s takes %s", name, orList(values, "or")),
	}
}

// orList joins words as "a", "a or b", "a, b or c" (with conj for "or").
func orList(words []string, conj string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// closest returns the candidate nearest to s, if it is close enough to be a
// typo of it (edit distance at most 2, and less than half of s), or "".
func closest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist && 2*d < len(s) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
