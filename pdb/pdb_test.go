package pdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// fixturePDBs lists the PDBs of the committed MSVC-ABI fixtures.
func fixturePDBs(t testing.TB) []string {
	t.Helper()
	m, _ := filepath.Glob("../testdata/msvc/*/*/*/*.pdb")
	if len(m) == 0 {
		t.Fatal("no MSVC-ABI fixture PDBs under testdata/msvc (run make -C testdata msvc)")
	}
	sort.Strings(m)
	return m
}

func mustOpen(t *testing.T, path string) *File {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFixtureBodyChange checks what the PDB of the body_change fixture must
// say, from its source (testdata/src/msvc/body_change).
func TestFixtureBodyChange(t *testing.T) {
	for _, arch := range []string{"x64", "x86"} {
		t.Run(arch, func(t *testing.T) {
			f := mustOpen(t, "../testdata/msvc/body_change/"+arch+"/new/body_change.pdb")
			if len(f.Warnings) != 0 {
				t.Errorf("warnings: %q", f.Warnings)
			}
			wantMachine := uint16(0x8664)
			ptr := uint32(8)
			if arch == "x86" {
				wantMachine, ptr = 0x14c, 4
			}
			if f.Machine != wantMachine {
				t.Errorf("machine %#x, want %#x", f.Machine, wantMachine)
			}
			procs := map[string][]Proc{}
			for _, p := range f.Procs {
				procs[p.Name] = append(procs[p.Name], p)
				if p.Size == 0 || p.Kind != ProcFunction {
					t.Errorf("procedure %+v: want a sized S_GPROC32/S_LPROC32", p)
				}
			}
			for _, name := range []string{"_DllMainCRTStartup", "memset", "memcpy", "record", "stats_add", "stats_mean", "level_name",
				"callback_sum", "compute", "saturate", "normalize", "util_mix", "util_calls"} {
				if len(procs[name]) != 1 {
					t.Errorf("procedure %s: %d records, want 1", name, len(procs[name]))
				}
			}
			if h := procs["helper"]; len(h) != 2 || h[0].Module == h[1].Module || h[0].Global || h[1].Global {
				t.Errorf("helper: %+v; want two file-local procedures in different modules", h)
			} else if a, b := f.Modules[h[0].Module].ShortName(), f.Modules[h[1].Module].ShortName(); a+","+b != "body_change.o,util.o" && a+","+b != "util.o,body_change.o" {
				t.Errorf("helper modules %s, %s", a, b)
			}
			if len(procs) != 14 {
				t.Errorf("%d distinct procedure names, want 14", len(procs))
			}
			if g := procs["saturate"]; len(g) == 1 && g[0].Global {
				t.Errorf("static saturate is global")
			}
			// Procedures do not overlap and lie in .text.
			for i, p := range f.Procs {
				if f.Sections[0].Name != ".text" || p.RVA < f.Sections[0].VirtualAddress || p.RVA+p.Size > f.Sections[0].VirtualAddress+f.Sections[0].VirtualSize {
					t.Errorf("%s [%#x,+%d) outside .text", p.Name, p.RVA, p.Size)
				}
				if i > 0 && f.Procs[i-1].RVA+f.Procs[i-1].Size > p.RVA {
					t.Errorf("%s overlaps %s", f.Procs[i-1].Name, p.Name)
				}
			}
			pubs := map[string]Public{}
			for _, p := range f.Publics {
				pubs[p.Name] = p
			}
			wantPub := map[string]string{"x64": "callback_sum", "x86": "_callback_sum@8"}[arch]
			if p, ok := pubs[wantPub]; !ok || !p.Function || p.RVA != procs["callback_sum"][0].RVA {
				t.Errorf("public %s: %+v, want a function at the procedure's RVA", wantPub, p)
			}
			data := map[string]Data{}
			for _, d := range f.Data {
				data[d.Name] = d
			}
			for name, size := range map[string]uint32{"g_limit": 4, "g_util_table": 32, "g_level_names": 4 * ptr, "g_util_calls": 4, "g_attached": 4} {
				if d, ok := data[name]; !ok || d.Size != size {
					t.Errorf("data %s: %+v, want size %d", name, d, size)
				}
			}
			if d := data["g_util_calls"]; d.Global || d.Module < 0 || f.Modules[d.Module].ShortName() != "util.o" {
				t.Errorf("g_util_calls: %+v, want file-local in util.o", d)
			}
			// Globals come from the global symbol stream; their module
			// from the section contributions.
			for name, mod := range map[string]string{"g_util_table": "util.o", "g_limit": "body_change.o", "g_attached": "runtime.o"} {
				if d := data[name]; !d.Global || d.Module < 0 || f.Modules[d.Module].ShortName() != mod {
					t.Errorf("%s: %+v, want a global of %s", name, d, mod)
				}
			}
			seen := map[Public]bool{}
			for _, p := range f.Publics {
				if seen[p] {
					t.Errorf("public %s at %#x listed twice", p.Name, p.RVA)
				}
				seen[p] = true
			}
		})
	}
}

// TestFixtureGUIDMatchesImage: the PDB's GUID and age are the ones the
// DLL's CodeView record names (read here from the raw bytes).
func TestFixtureGUIDMatchesImage(t *testing.T) {
	for _, p := range fixturePDBs(t) {
		if strings.Contains(p, "pdb_mismatch/") && strings.Contains(p, "/new/") {
			continue // deliberately another build's PDB
		}
		dll, err := os.ReadFile(strings.TrimSuffix(p, ".pdb") + ".dll")
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(dll, []byte("RSDS"))
		if i < 0 || len(dll) < i+24 {
			t.Fatalf("%s: no RSDS record in the DLL", p)
		}
		var g [16]byte
		copy(g[:], dll[i+4:])
		f := mustOpen(t, p)
		if f.GUID != g || f.Age != binary.LittleEndian.Uint32(dll[i+20:]) {
			t.Errorf("%s: PDB %s age %d, DLL wants %s age %d", p, f.GUIDString(), f.Age, FormatGUID(g), binary.LittleEndian.Uint32(dll[i+20:]))
		}
	}
}

// TestProcsMatchLLVMPdbutil compares every procedure, public and data
// record with llvm-pdbutil's dump of the same PDB (skipped without it).
func TestProcsMatchLLVMPdbutil(t *testing.T) {
	tool, err := exec.LookPath("llvm-pdbutil")
	if err != nil {
		if m, _ := filepath.Glob("/usr/lib/llvm-*/bin/llvm-pdbutil"); len(m) > 0 {
			tool = m[len(m)-1]
		} else {
			t.Skip("llvm-pdbutil not installed (Debian: llvm)")
		}
	}
	procRE := regexp.MustCompile("S_[GL]PROC32(?:_ID)? \\[size = \\d+\\] `([^`]*)`\\s+parent = \\d+, end = \\d+, addr = (\\d+):(\\d+), code size = (\\d+)")
	for _, p := range fixturePDBs(t) {
		out, err := exec.Command(tool, "dump", "-symbols", p).Output()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		f := mustOpen(t, p)
		var want, got []string
		for _, m := range procRE.FindAllStringSubmatch(string(out), -1) {
			seg, _ := strconv.Atoi(m[2])
			off, _ := strconv.Atoi(m[3])
			want = append(want, m[1]+"@"+strconv.FormatUint(uint64(f.Sections[seg-1].VirtualAddress)+uint64(off), 16)+"+"+m[4])
		}
		for _, pr := range f.Procs {
			got = append(got, pr.Name+"@"+strconv.FormatUint(uint64(pr.RVA), 16)+"+"+strconv.FormatUint(uint64(pr.Size), 10))
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(want, "\n") != strings.Join(got, "\n") || len(want) == 0 {
			t.Errorf("%s: procedures\n got %q\nwant %q", p, got, want)
		}
	}
}

// corrupt returns a copy of data with b written at off.
func corrupt(data []byte, off int, b ...byte) []byte {
	out := append([]byte(nil), data...)
	copy(out[off:], b)
	return out
}

// TestHostilePDB: damaged copies of a real PDB give a *FormatError that
// says what is wrong, never a panic.
func TestHostilePDB(t *testing.T) {
	good, err := os.ReadFile("../testdata/msvc/body_change/x64/old/body_change.pdb")
	if err != nil {
		t.Fatal(err)
	}
	bs := int(binary.LittleEndian.Uint32(good[32:]))
	blockMap := int(binary.LittleEndian.Uint32(good[52:]))
	dirBlock := int(binary.LittleEndian.Uint32(good[blockMap*bs:]))
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "too short"},
		{"pdb 2.0", append([]byte("Microsoft C/C++ program database 2.00\r\n\x1aJG"), make([]byte, 64)...), "PDB 2.0"},
		{"bad magic", corrupt(good, 0, 'X'), "not an MSF 7.0 file"},
		{"block size", corrupt(good, 32, u32(1000)...), "invalid block size"},
		{"too many blocks", corrupt(good, 40, u32(1<<30)...), "do not fit in the file"},
		{"directory size", corrupt(good, 44, u32(0)...), "invalid stream directory size"},
		{"block map", corrupt(good, 52, u32(1<<20)...), "block map address"},
		{"stream count", corrupt(good, dirBlock*bs, u32(1<<28)...), "cannot list"},
		{"stream block", corrupt(good, dirBlock*bs+4+4*int(binary.LittleEndian.Uint32(good[dirBlock*bs:])), u32(0x7fffffff)...), ""},
		{"truncated", good[:len(good)/2], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("parsed: %d procedures", len(f.Procs))
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FormatError", err, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

// TestSharedBlocksBounded: a directory that lists the whole file for many
// streams is refused instead of read once per stream.
func TestSharedBlocksBounded(t *testing.T) {
	good, err := os.ReadFile("../testdata/msvc/body_change/x64/old/body_change.pdb")
	if err != nil {
		t.Fatal(err)
	}
	m, err := openMSF(good)
	if err != nil {
		t.Fatal(err)
	}
	big := int(m.numBlocks) - 1
	blocks := make([]uint32, big)
	for i := range blocks {
		blocks[i] = uint32(i + 1)
	}
	n := 0
	for ; n < 100; n++ {
		if _, err := m.gather(99, blocks, uint32(big*int(m.blockSize))); err != nil {
			break
		}
	}
	if n >= 4 {
		t.Errorf("read the whole file %d times before refusing", n)
	}
}

// TestMutatedFixtures: thousands of randomly damaged copies of the fixture
// PDBs (fixed seed, so any failure reproduces) either parse or fail with a
// *FormatError; none panics. FuzzPDB explores further under make fuzz.
func TestMutatedFixtures(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for _, p := range fixturePDBs(t) {
		good, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 300; i++ {
			b := append([]byte(nil), good...)
			switch i % 3 {
			case 0: // a few random bytes anywhere
				for k := 0; k < 1+r.IntN(8); k++ {
					b[r.IntN(len(b))] = byte(r.IntN(256))
				}
			case 1: // a 32-bit field somewhere set to an extreme
				off := r.IntN(len(b)-4) &^ 3
				binary.LittleEndian.PutUint32(b[off:], []uint32{0, 0xffffffff, 0x7fffffff, 0x10000, uint32(len(b))}[r.IntN(5)])
			case 2: // truncated
				b = b[:r.IntN(len(b))]
			}
			if _, err := Parse(b); err != nil {
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("%s mutation %d: error %v (%T) is not a *FormatError", p, i, err, err)
				}
			}
		}
	}
}

// TestTypeCycle: type records that refer to each other (a modifier of a
// modifier of the first) end in "size unknown", not in a loop.
func TestTypeCycle(t *testing.T) {
	rec := func(kind uint16, body ...byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, uint16(2+len(body)))
		b = binary.LittleEndian.AppendUint16(b, kind)
		return append(b, body...)
	}
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	var recs []byte
	recs = append(recs, rec(LF_MODIFIER, append(u32(0x1001), 0, 0)...)...)         // 0x1000 -> 0x1001
	recs = append(recs, rec(LF_MODIFIER, append(u32(0x1000), 0, 0)...)...)         // 0x1001 -> 0x1000
	recs = append(recs, rec(LF_MODIFIER, append(u32(0x0074), 0, 0)...)...)         // 0x1002: const int
	recs = append(recs, rec(LF_POINTER, append(u32(0x1002), u32(8<<13)...)...)...) // 0x1003: 8-byte pointer
	hdr := make([]byte, 56)
	binary.LittleEndian.PutUint32(hdr[4:], 56)
	binary.LittleEndian.PutUint32(hdr[8:], 0x1000)
	binary.LittleEndian.PutUint32(hdr[12:], 0x1004)
	binary.LittleEndian.PutUint32(hdr[16:], uint32(len(recs)))
	tt, err := newTypeTable(append(hdr, recs...))
	if err != nil {
		t.Fatal(err)
	}
	for ti, want := range map[uint32]uint32{0x1000: 0, 0x1001: 0, 0x1002: 4, 0x1003: 8, 0x1004: 0, 0x0603: 8} {
		if got := tt.sizeOf(ti); got != want {
			t.Errorf("sizeOf(%#x) = %d, want %d", ti, got, want)
		}
	}
}
