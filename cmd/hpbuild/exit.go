package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Exit statuses of hpbuild, the same for every command (DESIGN.md, "Exit codes").
const (
	exitOK     = 0 // success
	exitError  = 1 // bad input, I/O, internal error
	exitUsage  = 2 // unknown flag or command, wrong arguments, bad flag value or combination
	exitFailOn = 3 // the condition named by --fail-on was met
	exitVerify = 4 // verification failed: signature, identity, tampering
)

// exitCode maps the error returned by a command to the process exit status.
// It is the only place that decides exit statuses: commands return a
// *usageError, *failOnError or *verifyError (possibly wrapped) and every other
// error means exitError.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var v *verifyError
	if errors.As(err, &v) {
		return exitVerify
	}
	var f *failOnError
	if errors.As(err, &f) {
		return exitFailOn
	}
	var u *usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitError
}

// usageError is a command line that hpbuild cannot act on: an unknown flag or
// command, missing or extra arguments, a bad flag value or an invalid
// combination of flags. Its exit status is exitUsage.
type usageError struct {
	err  error
	hint string // printed as "hpbuild: hint: ..." when not empty
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
func (e *usageError) Hint() string  { return e.hint }

// failOnError reports that the condition named by --fail-on was met. The
// report has been printed in full before it is returned. Its exit status is
// exitFailOn.
type failOnError struct {
	err error
}

func (e *failOnError) Error() string { return e.err.Error() }
func (e *failOnError) Unwrap() error { return e.err }

// verifyError reports a failed verification: a bad signature, a target image
// that is not the one a package was built for, tampered data. Its exit status
// is exitVerify.
type verifyError struct {
	err error
}

func (e *verifyError) Error() string { return e.err.Error() }
func (e *verifyError) Unwrap() error { return e.err }

// hintError adds a hint to any error without changing its exit status.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }

// withHint returns err with a hint for the user, e.g. which flag to use.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

// printError writes err to w in hpbuild's voice: every line of the message
// as "hpbuild: error: ...", then the first hint found in the chain as
// "hpbuild: hint: ...".
func printError(w io.Writer, err error) {
	msg := strings.TrimRight(err.Error(), "\n")
	if msg == "" {
		msg = "unknown error"
	}
	for _, line := range strings.Split(msg, "\n") {
		fmt.Fprintf(w, "hpbuild: error: %s\n", line)
	}
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(w, "hpbuild: hint: %s\n", h.Hint())
	}
}
