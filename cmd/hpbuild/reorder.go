package main

import (
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionFlag is the flag urfave/cli's shell completion appends as the
// last argument.
const completionFlag = "--generate-bash-completion"

// reorderArgs returns the command line args (without the program name) with,
// at every level of the command path, the flags moved in front of the
// positional arguments. urfave/cli, like Go's flag package, stops parsing
// flags at the first positional argument, so without this
// 'hpbuild diff old.dll new.dll --format json' would see three arguments.
//
// flags and cmds are the flags and commands of the top level. The rules:
//   - At a level with commands, the first positional argument names the
//     command and the rest of the command line belongs to it (an unknown
//     command is left alone for parsing to report).
//   - At a level without commands, flags and positional arguments are
//     separated, each keeping its order.
//   - A flag that takes a value, not written as --flag=value, takes the next
//     argument as its value whatever it looks like, as Go's flag package does.
//     Unknown flags are kept as flags, without a value, for parsing to report.
//   - "--" ends the flags: it and everything after it follow the positional
//     arguments seen before it.
//   - A flag that needs a value but ends the command line is put last and the
//     positional arguments are dropped, so that parsing reports the missing
//     value rather than taking a positional argument as the value.
//   - With -h or --help at a level without commands the positional arguments
//     are dropped too, because urfave/cli would take the first one as a help
//     topic: 'hpbuild info app.dll --help' shows the help of info.
//   - A trailing --generate-bash-completion (shell completion) stays last.
func reorderArgs(flags []cli.Flag, cmds []*cli.Command, args []string) []string {
	out := make([]string, 0, len(args))
	complete := len(args) > 0 && args[len(args)-1] == completionFlag
	if complete {
		args = args[:len(args)-1]
	}
	out = reorderLevel(out, flags, cmds, args)
	if complete {
		out = append(out, completionFlag)
	}
	return out
}

func reorderLevel(out []string, flags []cli.Flag, cmds []*cli.Command, args []string) []string {
	takesValue := make(map[string]bool)
	for _, f := range flags {
		if df, ok := f.(cli.DocGenerationFlag); ok && df.TakesValue() {
			for _, name := range f.Names() {
				takesValue[name] = true
			}
		}
	}
	var flagArgs, posArgs []string
	help := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			out = append(out, flagArgs...)
			if help {
				return out
			}
			out = append(out, arg)
			out = append(out, posArgs...)
			return append(out, args[i+1:]...)
		case isFlagArg(arg):
			flagArgs = append(flagArgs, arg)
			name, value, hasValue := strings.Cut(trimDashes(arg), "=")
			if (name == "help" || name == "h") && len(cmds) == 0 {
				v, err := strconv.ParseBool(value)
				help = !hasValue || (err == nil && v)
			}
			if !hasValue && takesValue[name] {
				if i+1 == len(args) {
					// The value is missing. Put the flag last, so that
					// parsing fails with "flag needs an argument" rather
					// than taking a positional argument as its value.
					out = append(out, flagArgs...)
					return out
				}
				i++
				flagArgs = append(flagArgs, args[i])
			}
		case len(cmds) > 0:
			out = append(out, flagArgs...)
			out = append(out, arg)
			if cmd := findCommand(cmds, arg); cmd != nil {
				rest := args[i+1:]
				if cmd.Action != nil && len(cmd.Subcommands) > 0 && (len(rest) == 0 || findCommand(cmd.Subcommands, firstPositional(rest)) == nil) {
					// A command with subcommands that also takes
					// arguments itself (bundle OLD NEW, bundle merge ...):
					// without a subcommand its arguments are positional.
					return reorderLevel(out, cmd.Flags, nil, rest)
				}
				return reorderLevel(out, cmd.Flags, cmd.Subcommands, rest)
			}
			// An unknown command: leave the rest alone, parsing reports it.
			return append(out, args[i+1:]...)
		default:
			posArgs = append(posArgs, arg)
		}
	}
	out = append(out, flagArgs...)
	if help {
		return out
	}
	return append(out, posArgs...)
}

// isFlagArg reports whether Go's flag package would take arg as a flag: it
// starts with "-" and is not "-" alone (which conventionally names stdin).
func isFlagArg(arg string) bool {
	return len(arg) > 1 && arg[0] == '-'
}

// trimDashes removes the one or two leading dashes of a flag argument.
func trimDashes(arg string) string {
	arg = strings.TrimPrefix(arg, "-")
	return strings.TrimPrefix(arg, "-")
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// firstPositional returns the first argument that is not a flag (flag
// values are not told apart here: subcommand names never look like them).
func firstPositional(args []string) string {
	for _, a := range args {
		if !isFlagArg(a) {
			return a
		}
	}
	return ""
}
