package apply

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hpbuild/hpbuild/assemble"
	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/disasm"
	"github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/pkgformat"
	"github.com/hpbuild/hpbuild/signing"
)

// fixturePackage builds the package of a fixture pair, or returns nil when
// the update is not hot-patchable.
func fixturePackage(t *testing.T, dir string) (*pkgformat.Package, *pe.File) {
	t.Helper()
	o, err := pe.Open(filepath.Join(dir, "old.dll"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	n, err := pe.Open(filepath.Join(dir, "new.dll"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	key, err := signing.FromSeed(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	p, err := assemble.BuildSigned(o, n, diff.Compare(o, n), assemble.Options{Sequence: 1, Tool: "hpbuild test"}, key)
	if err != nil {
		return nil, nil
	}
	b, err := p.Marshal()
	if err == nil {
		p, err = pkgformat.Read(b)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p, o
}

// TestLinkEveryFixture links every hot-patchable fixture's package (x64
// and x86) for a rebased module and checks what the platform code would
// write: every fixup field, decoded back from the linked code, reaches the
// address its target names; every site jumps to its function's new code;
// the sites' original bytes are the file's, relocated; the regions fit.
func TestLinkEveryFixture(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/*/expect.json")
	linked := 0
	for _, d := range dirs {
		for _, arch := range []string{"x64", "x86"} {
			dir := filepath.Join(filepath.Dir(d), arch)
			p, old := fixturePackage(t, dir)
			if p == nil {
				continue
			}
			t.Run(filepath.Base(filepath.Dir(d))+"/"+arch, func(t *testing.T) {
				l, err := Plan(p)
				if err != nil {
					if bytes.Contains([]byte(err.Error()), []byte("exception handler")) {
						t.Skipf("refused as documented: %v", err)
					}
					t.Fatal(err)
				}
				// Rebased by 16 MiB, the area 64 MiB above the module.
				base := old.ImageBase + 0x1000000
				area := base + 0x4000000
				imports := map[string]uint64{}
				k, err := l.Link(base, old.ImageBase, area, func(imp string) (uint64, error) {
					a := uint64(0x70000000 + 0x100*len(imports))
					imports[imp] = a
					return a, nil
				})
				if err != nil {
					t.Fatal(err)
				}
				linked++
				checkLinked(t, p, l, k, old)
			})
		}
	}
	if linked < 20 {
		t.Errorf("only %d fixture packages linked", linked)
	}
}

func checkLinked(t *testing.T, p *pkgformat.Package, l *Layout, k *Linked, old *pe.File) {
	m := &p.Manifest
	mode := 32
	if l.is64 {
		mode = 64
	}
	if uint32(len(k.Header)) != l.HeaderSize || uint32(len(k.Text)) != l.TextSize || uint32(len(k.Data)) != l.DataSize {
		t.Fatalf("regions %d/%d/%d, layout %d/%d/%d", len(k.Header), len(k.Text), len(k.Data), l.HeaderSize, l.TextSize, l.DataSize)
	}
	if r, ok, err := ParseRecord(k.Header); !ok || err != nil || r.Area != k.Area || len(r.Sites) != len(k.Sites) {
		t.Fatalf("header record: ok %v, err %v, %+v", ok, err, r)
	}
	funcAt := map[uint32]uint64{}
	for i, fn := range m.Functions {
		funcAt[fn.NewRVA] = k.TextAddr() + uint64(l.funcs[i].off)
	}
	for i, fn := range m.Functions {
		at := funcAt[fn.NewRVA]
		code := k.Text[l.funcs[i].off : l.funcs[i].off+uint32(len(l.funcs[i].code))]
		for _, x := range fn.Fixups {
			// What the field reaches, read back from the linked bytes.
			var got uint64
			field := code[x.Off:]
			v := uint64(0)
			for b := 0; b < int(x.Width); b++ {
				v |= uint64(field[b]) << (8 * b)
			}
			switch x.Kind {
			case "rel8", "rel32", "call32", "rip32":
				end, ok := instEnd(l.funcs[i].insts, x.Off, x.Width)
				if !ok {
					t.Fatalf("%s +%#x: no instruction", fn.Name, x.Off)
				}
				// The decoder agrees on where the field is.
				start := sortSearchStart(l.funcs[i].insts, x.Off)
				in, err := disasm.Decode(code[start:], at+uint64(start), mode)
				if err != nil {
					t.Fatalf("%s +%#x: %v", fn.Name, start, err)
				}
				found := false
				for _, r := range in.RefList() {
					if uint32(start)+uint32(r.Off) == x.Off && r.Width == x.Width {
						found = true
					}
				}
				if !found {
					t.Errorf("%s +%#x: the instruction at +%#x has no %d-byte address field there", fn.Name, x.Off, start, x.Width)
				}
				sext := int64(v)
				if x.Width == 4 {
					sext = int64(int32(uint32(v)))
				} else if x.Width == 1 {
					sext = int64(int8(uint8(v)))
				}
				got = at + uint64(end) + uint64(sext)
			case "abs32", "abs64":
				got = v
			case "imagebase32":
				got = k.Base + uint64(int64(int32(uint32(v))))
			}
			var want uint64
			switch x.Target {
			case "old":
				want = k.Base + uint64(x.RVA)
			case "patch-code":
				want = funcAt[x.Ref] + uint64(x.Sub)
			case "import":
				if x.RVA != 0 {
					want = k.Base + uint64(x.RVA)
				} else {
					want = k.TextAddr() + uint64(l.slots[x.Import])
				}
			case "patch-data":
				d, ok := l.data[x.Ref]
				if !ok {
					t.Fatalf("%s +%#x: no carried data at %#x", fn.Name, x.Off, x.Ref)
				}
				region := k.DataAddr()
				if d.text {
					region = k.TextAddr()
				}
				want = region + uint64(d.off) + uint64(x.Sub)
			case "jump-table":
				want = tableAddr(l, k, m, i, int(x.Sub), funcAt)
			}
			if got != want {
				t.Errorf("%s +%#x (%s to %s %#x): reaches %#x, want %#x", fn.Name, x.Off, x.Kind, x.Target, x.RVA, got, want)
			}
		}
	}
	for i, fn := range m.Functions {
		for ti, tb := range fn.Tables {
			at := tableAddr(l, k, m, i, ti, funcAt)
			off := int(at - k.TextAddr())
			for e, to := range tb.Targets {
				raw := uint64(0)
				for b := 0; b < int(tb.Entry); b++ {
					raw |= uint64(k.Text[off+e*int(tb.Entry)+b]) << (8 * b)
				}
				var got uint64
				switch tb.Kind {
				case "absolute":
					got = raw
				case "rva":
					got = k.Base + raw
				default:
					got = at + uint64(int64(int32(uint32(raw))))
				}
				if want := funcAt[fn.NewRVA] + uint64(to); got != want {
					t.Errorf("%s: jump table %d entry %d reaches %#x, want %#x", fn.Name, ti, e, got, want)
				}
			}
		}
	}
	for _, s := range k.Sites {
		var fn *pkgformat.Function
		for i := range m.Functions {
			if m.Functions[i].Name == s.Func && m.Functions[i].Site != nil {
				fn = &m.Functions[i]
			}
		}
		if fn == nil {
			t.Fatalf("site of %s has no function", s.Func)
		}
		jmpAt := s.Addr
		if s.Method == "hotpatch-pad" {
			if !bytes.Equal(s.New[5:], []byte{0xEB, 0xF9}) || s.Addr+5 != k.Base+uint64(fn.OldRVA) {
				t.Errorf("%s: hotpatch-pad entry bytes %x at %#x", s.Func, s.New[5:], s.Addr+5)
			}
		} else if s.Addr != k.Base+uint64(fn.OldRVA) {
			t.Errorf("%s: jmp-rel32 site at %#x, entry %#x", s.Func, s.Addr, k.Base+uint64(fn.OldRVA))
		}
		if s.New[0] != 0xE9 || jmpAt+5+uint64(int64(int32(binary.LittleEndian.Uint32(s.New[1:])))) != funcAt[fn.NewRVA] {
			t.Errorf("%s: site jump %x does not reach the new code at %#x", s.Func, s.New, funcAt[fn.NewRVA])
		}
		// The original bytes as the rebased module holds them.
		file := old.Data()
		off, ok := rvaToOffset(old, uint32(s.Addr-k.Base))
		if !ok {
			t.Fatalf("%s: site outside the file", s.Func)
		}
		want := append([]byte(nil), file[off:off+len(s.Old)]...)
		delta := k.Base - old.ImageBase
		for _, r := range old.RelocsOverlapping(uint32(s.Addr-k.Base), uint32(len(want))) {
			o := int(r.RVA) - int(s.Addr-k.Base)
			var f [8]byte
			for b := 0; b < r.Width(); b++ {
				if o+b >= 0 && o+b < len(want) {
					f[b] = want[o+b]
				} else if fo, ok := rvaToOffset(old, uint32(int(r.RVA)+b)); ok {
					f[b] = file[fo]
				}
			}
			nv := binary.LittleEndian.Uint64(f[:]) + delta
			for b := 0; b < r.Width(); b++ {
				if o+b >= 0 && o+b < len(want) {
					want[o+b] = byte(nv >> (8 * b))
				}
			}
		}
		if !bytes.Equal(s.Old, want) {
			t.Errorf("%s: expected original %x, the rebased module holds %x", s.Func, s.Old, want)
		}
	}
}

// tableAddr is where table ti of function i is in the linked area.
func tableAddr(l *Layout, k *Linked, m *pkgformat.Manifest, i, ti int, funcAt map[uint32]uint64) uint64 {
	fn := &m.Functions[i]
	t := fn.Tables[ti]
	if t.InCode {
		off, _ := codeOffset(fn, t.NewRVA)
		return funcAt[fn.NewRVA] + uint64(off)
	}
	return k.TextAddr() + uint64(l.tables[[2]int{i, ti}])
}

func sortSearchStart(insts []instSpan, off uint32) uint32 {
	for _, in := range insts {
		if off >= in.start && off < in.end {
			return in.start
		}
	}
	panic(fmt.Sprintf("no instruction at %#x", off))
}

func rvaToOffset(f *pe.File, rva uint32) (int, bool) {
	for _, s := range f.Sections {
		if rva >= s.VirtualAddress && rva < s.VirtualAddress+s.SizeOfRawData {
			return int(s.PointerToRawData + rva - s.VirtualAddress), true
		}
	}
	return 0, false
}

// FuzzParseRecord: a patch record read from a process never panics, and
// what parses marshals back to a record that parses the same.
func FuzzParseRecord(f *testing.F) {
	r := Record{Format: RecordFormat, Package: strings.Repeat("ab", 32), Sites: []RecordSite{{Func: "f", Addr: 1, Old: "90", New: "e9"}}}
	b, _ := r.Marshal()
	f.Add(b)
	f.Add([]byte(RecordMagic + "\xff\xff\xff\xff{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok, err := ParseRecord(b)
		if !ok || err != nil {
			return
		}
		again, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, _, err := ParseRecord(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("record does not round-trip: %v", err)
		}
	})
}

// TestReturnOffsets: the return addresses rollback looks for on the
// stacks are the ends of the carried code's calls (live_patch: mix calls
// the new bump), and stackRefers finds one in a pointer-sized slot only.
func TestReturnOffsets(t *testing.T) {
	p, _ := fixturePackage(t, "../testdata/live_patch/x64")
	if p == nil {
		t.Fatal("live_patch/x64 is not hot-patchable")
	}
	l, err := Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	offs := l.ReturnOffsets()
	if len(offs) == 0 {
		t.Fatal("no return offsets in code that calls bump and lstrlenA")
	}
	for _, off := range offs {
		found := false
		for _, f := range l.funcs {
			for _, in := range f.insts {
				if f.off+in.end == off {
					d, err := disasm.Decode(f.code[in.start:in.end], 0, 64)
					found = err == nil && (d.Flow == disasm.FlowCall || d.Flow == disasm.FlowIndirectCall)
				}
			}
		}
		if !found {
			t.Errorf("return offset %#x does not follow a call", off)
		}
	}
	ret := map[uint64]bool{0x1122334455667788: true}
	stack := make([]byte, 64)
	binary.LittleEndian.PutUint64(stack[24:], 0x1122334455667788)
	if a, ok := stackRefers(stack, ret, true); !ok || a != 0x1122334455667788 {
		t.Errorf("stackRefers missed the slot: %#x %v", a, ok)
	}
	binary.LittleEndian.PutUint64(stack[24:], 0)
	binary.LittleEndian.PutUint64(stack[28:], 0x1122334455667788) // not slot-aligned
	if _, ok := stackRefers(stack, ret, true); ok {
		t.Error("stackRefers matched an unaligned value")
	}
}
