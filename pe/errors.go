package pe

import (
	"errors"
	"fmt"
)

// FormatError reports a malformed or unsupported PE image. Off is the file
// offset at which the problem was found, or -1 when it has none.
type FormatError struct {
	Off int64  // file offset of the offending field, -1 if unknown
	Msg string // description of the problem, lower case
	Val any    // the offending value, if any
}

func (e *FormatError) Error() string {
	msg := e.Msg
	if e.Val != nil {
		msg += fmt.Sprintf(" %#x", e.Val)
	}
	if e.Off >= 0 {
		msg += fmt.Sprintf(" at offset %#x", e.Off)
	}
	return msg
}

// UnsupportedError reports an image that is a valid PE file but cannot be
// patched by hpbuild: another machine, or an IL-only .NET assembly.
type UnsupportedError struct {
	What string // e.g. "unsupported machine ARM64 (0xaa64)"
}

func (e *UnsupportedError) Error() string { return e.What }

// ErrNotPE is wrapped by the error returned for input that is not a PE
// image at all (no MZ or PE signature).
var ErrNotPE = errors.New("not a PE image")

func formatErr(off int64, msg string, val any) error {
	return &FormatError{Off: off, Msg: msg, Val: val}
}
