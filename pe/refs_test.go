package pe

import (
	"bufio"
	"bytes"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestFixtureRefsResolve: in every unstripped fixture, every call resolves
// to a function, and every RIP-relative or relocated absolute reference
// resolves to something inside the image; every base relocation inside a
// function is covered by one of its references.
func TestFixtureRefsResolve(t *testing.T) {
	for _, path := range append(fixtureDLLs(t, "*/x64/old.dll"), fixtureDLLs(t, "*/x86/old.dll")...) {
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		covered := map[uint32]bool{}
		for _, fn := range f.Functions() {
			for _, r := range fn.Refs {
				covered[r.At] = true
				tg := f.Resolve(r.Target)
				switch r.Kind {
				case RefCall:
					if tg.Kind != TargetFunction {
						t.Errorf("%s: %s calls %s (%s), want a function", path, fn.DisplayName(), tg, tg.Kind)
					}
				case RefRIP, RefAbs32, RefAbs64:
					if tg.Kind == TargetUnknown {
						t.Errorf("%s: %s references %#x (%s) outside the image", path, fn.DisplayName(), r.Target, r.Kind)
					}
				}
			}
		}
		for _, fn := range f.Functions() {
			for _, rl := range f.Relocs {
				if fn.Contains(rl.RVA) && !covered[rl.RVA] {
					t.Errorf("%s: relocation at %#x in %s is not a reference", path, rl.RVA, fn.DisplayName())
				}
			}
		}
	}
}

var objdumpCall = regexp.MustCompile(`^\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*call\s+([0-9a-f]+) <`)

// TestCallRefsAgainstObjdump compares the direct calls the image model
// found with those objdump disassembles, on the fixtures.
func TestCallRefsAgainstObjdump(t *testing.T) {
	for arch, tool := range map[string]string{"x64": "x86_64-w64-mingw32-objdump", "x86": "i686-w64-mingw32-objdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package binutils-mingw-w64)", tool)
		}
		for _, path := range fixtureDLLs(t, "*/"+arch+"/old.dll") {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(tool, "-d", "--no-show-raw-insn=false", path).Output()
			if err != nil {
				out, err = exec.Command(tool, "-d", path).Output()
				if err != nil {
					t.Fatalf("%s -d %s: %v", tool, path, err)
				}
			}
			want := map[uint32]uint32{} // call site field RVA -> target RVA
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				m := objdumpCall.FindStringSubmatch(sc.Text())
				if m == nil || !strings.HasPrefix(m[2], "e8 ") {
					continue
				}
				site, _ := strconv.ParseUint(m[1], 16, 64)
				target, _ := strconv.ParseUint(m[3], 16, 64)
				want[uint32(site-f.ImageBase)+1] = uint32(target - f.ImageBase)
			}
			got := map[uint32]uint32{}
			for _, fn := range f.Functions() {
				for _, r := range fn.Refs {
					if r.Kind == RefCall {
						got[r.At] = r.Target
					}
				}
			}
			missing := 0
			for at, tgt := range want {
				if _, inFn := f.FunctionContaining(at); !inFn {
					continue // objdump also decodes padding and data
				}
				if got[at] != tgt {
					missing++
					if missing <= 5 {
						t.Errorf("%s: call at %#x to %#x: image model has %#x", path, at-1, tgt, got[at])
					}
				}
			}
			for at := range got {
				if _, ok := want[at]; !ok {
					t.Errorf("%s: image model has a call at %#x that objdump does not show", path, at-1)
				}
			}
		}
	}
}

// TestLocalExtent: branches inside a function's extent are local (not kept
// as references) unless they reach the first 8 bytes of another function
// that starts inside the extent; other kinds and targets outside are kept.
func TestLocalExtent(t *testing.T) {
	e := localExtent{start: 0x1000, end: 0x1400, inner: []uint32{0x1100, 0x1200}}
	for _, c := range []struct {
		kind   RefKind
		target uint32
		local  bool
	}{
		{RefBranch8, 0x1000, true},
		{RefBranch32, 0x10ff, true},
		{RefBranch32, 0x1100, false},
		{RefBranch8, 0x1107, false},
		{RefBranch8, 0x1108, true},
		{RefBranch32, 0x1203, false},
		{RefBranch32, 0x13ff, true},
		{RefBranch32, 0x1400, false},
		{RefBranch32, 0x0fff, false},
		{RefCall, 0x1010, false},
		{RefRIP, 0x1010, false},
	} {
		r := Ref{At: 0x1004, Kind: c.kind, Target: c.target, Width: 4}
		if got := e.local(&r); got != c.local {
			t.Errorf("%v to %#x: local = %v, want %v", c.kind, c.target, got, c.local)
		}
	}
	refs := []Ref{{At: 0x1000, Kind: RefBranch8, Target: 0x1003, Width: 1}, {At: 0x1010, Kind: RefCall, Target: 0x5000, Width: 4}}
	kept, entry := e.appendKept(nil, refs)
	if len(kept) != 1 || kept[0].Kind != RefCall || entry != 1<<3 || e.kept(refs) != 1 {
		t.Errorf("appendKept = %v, entry %08b, kept %d; want the call only and bit 3", kept, entry, e.kept(refs))
	}
}
