package pdb

import "fmt"

// FormatError reports a malformed or unsupported PDB. Stream is the MSF
// stream the problem was found in (-1 for the container itself) and Off
// the offset in that stream (or in the file, for Stream -1).
type FormatError struct {
	Stream int    // MSF stream index, -1 for the container
	Off    int64  // offset of the offending field, -1 if unknown
	Msg    string // description of the problem, lower case
	Val    any    // the offending value, if any
}

func (e *FormatError) Error() string {
	msg := e.Msg
	if e.Val != nil {
		msg += fmt.Sprintf(" %#x", e.Val)
	}
	switch {
	case e.Stream < 0 && e.Off >= 0:
		msg += fmt.Sprintf(" at file offset %#x", e.Off)
	case e.Stream >= 0 && e.Off >= 0:
		msg += fmt.Sprintf(" at offset %#x of stream %d", e.Off, e.Stream)
	case e.Stream >= 0:
		msg += fmt.Sprintf(" in stream %d", e.Stream)
	}
	return "pdb: " + msg
}

func containerErr(off int64, msg string, val any) error {
	return &FormatError{Stream: -1, Off: off, Msg: msg, Val: val}
}

func streamErr(stream int, off int, msg string, val any) error {
	return &FormatError{Stream: stream, Off: int64(off), Msg: msg, Val: val}
}
