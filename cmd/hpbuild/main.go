// Command hpbuild compares two builds of a Windows PE image (DLL or EXE)
// function by function, says for every change whether it can be applied to a
// running process or needs a restart, and builds signed hot patch packages.
//
// Usage:
//
//	hpbuild COMMAND [options] ARGS...
//
// Run 'hpbuild help' for the list of commands and 'hpbuild help COMMAND' for
// the options and examples of one command.
//
// # Exit status
//
//	0  success
//	1  error (bad input, I/O, internal)
//	2  usage (unknown flag or command, missing or extra arguments, bad flag value)
//	3  the condition named by --fail-on was met
//	4  verification failed (signature, identity, tampering)
//
// Flags may come before or after the positional arguments:
// 'hpbuild diff old.dll new.dll --format json' and
// 'hpbuild diff --format json old.dll new.dll' are the same command line.
// Everything after '--' is a positional argument.
package main

import "os"

func main() { os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
