package pe

import (
	"testing"
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
			for _, c := range fn.Chunks {
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
