package pe

import (
	"testing"
	"time"
)

// TestEHFrameFixture: the FDEs read from the x86 C++ fixture's .eh_frame
// (i686 mingw: DWARF-2 exception handling) describe the image's code: each
// lies in an executable section, most start where a code symbol or a
// function or part of the image model starts (the model does not split
// every run of gcc's 5-byte .cold call stubs, which have FDEs of their
// own), and the function that catches (parse_number) has
// language-specific data (landing pads).
func TestEHFrameFixture(t *testing.T) {
	for _, v := range []string{"old.dll", "old.stripped.dll"} {
		f, err := Open("../testdata/cxx_exceptions/x86/" + v)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.EHFrame) < 100 {
			t.Fatalf("%s: %d FDEs, want the fixture's and libstdc++'s (over 100)", v, len(f.EHFrame))
		}
		starts := map[uint32]bool{}
		for _, s := range f.Symbols {
			if f.IsCode(s.RVA) {
				starts[s.RVA] = true
			}
		}
		for _, fn := range f.Functions() {
			starts[fn.RVA] = true
			for _, c := range fn.Chunks() {
				starts[c.RVA] = true
			}
		}
		aligned, lsda := 0, 0
		for _, e := range f.EHFrame {
			if s := f.Section(e.Begin); s == nil || !s.Executable() || e.End > s.End() {
				t.Errorf("%s: FDE %#x..%#x is not inside code", v, e.Begin, e.End)
			}
			if starts[e.Begin] {
				aligned++
			}
			if e.LSDA != 0 {
				lsda++
			}
		}
		if aligned*100 < len(f.EHFrame)*85 {
			t.Errorf("%s: only %d of %d FDEs start at a function or part", v, aligned, len(f.EHFrame))
		}
		if lsda == 0 {
			t.Errorf("%s: no FDE has an LSDA, but the fixture catches exceptions", v)
		}
		if v == "old.dll" {
			found := false
			for _, s := range f.Symbols {
				if s.Name == "_parse_number" {
					found = true
					if e, ok := f.FDEAt(s.RVA); !ok || e.LSDA == 0 {
						t.Errorf("parse_number at %#x: FDE %+v, want one with an LSDA", s.RVA, e)
					}
				}
			}
			if !found {
				t.Error("no _parse_number symbol")
			}
		}
	}
	// x64 mingw unwinds with .pdata (SEH): no .eh_frame is needed.
	f, err := Open("../testdata/cxx_exceptions/x64/old.dll")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Unwind) == 0 {
		t.Error("x64 fixture has no .pdata")
	}
}

// TestEHFrameHostile: hostile .eh_frame entries (a 64-bit length that
// would wrap around, an entry too short for its id, an FDE naming no CIE)
// end the walk with a warning; nothing hangs or panics. The section of a
// real fixture is overwritten in a copy of the file.
func TestEHFrameHostile(t *testing.T) {
	base := readFixture(t, "cxx_exceptions/x86/old.dll")
	f, err := OpenBytes(base, HeadersOnly())
	if err != nil {
		t.Fatal(err)
	}
	s := f.SectionByName(".eh_fram")
	if s == nil {
		t.Fatal("no .eh_fram section")
	}
	off := int(s.PointerToRawData)
	for name, entry := range map[string][]byte{
		"wrapping 64-bit length": {0xff, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"too short for its id":   {0x02, 0, 0, 0, 0, 0},
		"FDE without CIE":        {0x0c, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"length past the end":    {0xf0, 0xff, 0xff, 0x7f},
	} {
		b := append([]byte(nil), base...)
		copy(b[off:], entry)
		done := make(chan error, 1)
		go func() {
			_, err := OpenBytes(b)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v (a bad .eh_frame must not make the image unreadable)", name, err)
			}
		case <-time.After(time.Minute): // a hang guard, not a speed limit
			t.Fatalf("%s: OpenBytes does not return", name)
		}
	}
}
