package pe

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/" + rel)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenRejectsNonPE: empty and text input are refused as not PE.
func TestOpenRejectsNonPE(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty": {},
		"text":  []byte("hello, this is not a DLL\n"),
		"mz":    []byte("MZ"),
	} {
		_, err := OpenBytes(data)
		if err == nil {
			t.Errorf("%s: OpenBytes succeeded", name)
			continue
		}
		if name != "mz" && !errors.Is(err, ErrNotPE) {
			t.Errorf("%s: error %v does not wrap ErrNotPE", name, err)
		}
	}
}

// TestOpenTruncatedHeaders: every truncation of a fixture inside its
// headers and section table gives an error, never a panic.
func TestOpenTruncatedHeaders(t *testing.T) {
	for _, rel := range []string{"body_change/x64/old.dll", "body_change/x86/old.dll"} {
		data := readFixture(t, rel)
		f, err := OpenBytes(data, HeadersOnly())
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < int(f.SizeOfHeaders); n++ {
			if _, err := OpenBytes(data[:n]); err == nil {
				t.Fatalf("%s truncated to %d bytes: OpenBytes succeeded", rel, n)
			}
		}
	}
}

// TestOpenTruncatedBody: truncations past the headers are refused with an
// error naming the section whose raw data is cut.
func TestOpenTruncatedBody(t *testing.T) {
	data := readFixture(t, "body_change/x64/old.dll")
	f, err := OpenBytes(data, HeadersOnly())
	if err != nil {
		t.Fatal(err)
	}
	cut := f.Sections[0].PointerToRawData + f.Sections[0].SizeOfRawData/2
	_, err = OpenBytes(data[:cut])
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "extends past end of file") {
		t.Fatalf("OpenBytes(truncated in %s) = %v, want a FormatError about the section's raw data", f.Sections[0].Name, err)
	}
}

func peOffsets(t *testing.T, data []byte) (fileHdr, optHdr int) {
	lfanew := int(binary.LittleEndian.Uint32(data[0x3c:]))
	return lfanew + 4, lfanew + 24
}

// TestOpenAbsurdCounts: absurd section, relocation and symbol counts give
// clear errors or warnings and bounded work.
func TestOpenAbsurdCounts(t *testing.T) {
	orig := readFixture(t, "body_change/x64/old.dll")
	clone := func() []byte { return append([]byte(nil), orig...) }

	data := clone()
	fh, _ := peOffsets(t, data)
	binary.LittleEndian.PutUint16(data[fh+2:], 0xffff)
	_, err := OpenBytes(data)
	if err == nil || !strings.Contains(err.Error(), "NumberOfSections") {
		t.Errorf("NumberOfSections=0xffff: %v", err)
	}

	data = clone()
	binary.LittleEndian.PutUint32(data[fh+12:], 0xfffffff0) // NumberOfSymbols
	f, err := OpenBytes(data)
	if err != nil {
		t.Fatalf("absurd NumberOfSymbols: %v", err)
	}
	if !hasWarning(f, "COFF symbol table") {
		t.Errorf("absurd NumberOfSymbols: no warning, got %q", f.Warnings)
	}

	data = clone()
	_, opt := peOffsets(t, data)
	// Base relocation directory (index 5) of a PE32+ header: size huge.
	// The table must not grow past what the file holds: either an error,
	// or the relocations of the real table and nothing invented.
	binary.LittleEndian.PutUint32(data[opt+112+5*8+4:], 0x7fffffff)
	want, err := OpenBytes(orig)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := OpenBytes(data); err == nil && len(f.Relocs) != len(want.Relocs) {
		t.Errorf("huge relocation directory: %d relocations, the real table has %d", len(f.Relocs), len(want.Relocs))
	}

	data = clone()
	binary.LittleEndian.PutUint32(data[opt+56:], 0xffffffff) // SizeOfImage
	if _, err := OpenBytes(data); err == nil || !strings.Contains(err.Error(), "SizeOfImage") {
		t.Errorf("SizeOfImage=0xffffffff: %v", err)
	}
}

func hasWarning(f *File, sub string) bool {
	for _, w := range f.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

// TestOpenRefusesOtherMachines: the machine field decides support, with
// the machine named in the error.
func TestOpenRefusesOtherMachines(t *testing.T) {
	data := append([]byte(nil), readFixture(t, "body_change/x64/old.dll")...)
	fh, _ := peOffsets(t, data)
	for m, want := range map[uint16]string{
		0xaa64: "unsupported machine ARM64 (0xaa64)",
		0x01c4: "unsupported machine ARM Thumb-2 (0x1c4)",
		0x0200: "unsupported machine IA64 (0x200)",
		0xa641: "unsupported machine ARM64EC (0xa641)",
		0x1234: "unsupported machine unknown (0x1234)",
	} {
		binary.LittleEndian.PutUint16(data[fh:], m)
		_, err := OpenBytes(data)
		var ue *UnsupportedError
		if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("machine %#x: %v, want %q", m, err, want)
		}
	}
}

// TestOpenRefusesILOnly: an IL-only CLR header is refused.
func TestOpenRefusesILOnly(t *testing.T) {
	data := append([]byte(nil), readFixture(t, "body_change/x86/old.dll")...)
	f, err := OpenBytes(data, HeadersOnly())
	if err != nil {
		t.Fatal(err)
	}
	// Point the CLR directory at 72 bytes of the first data section and
	// mark it COMIMAGE_FLAGS_ILONLY.
	var sec *Section
	for i := range f.Sections {
		if !f.Sections[i].Executable() && f.Sections[i].SizeOfRawData >= 72 {
			sec = &f.Sections[i]
			break
		}
	}
	_, opt := peOffsets(t, data)
	dir := opt + 96 + 14*8
	binary.LittleEndian.PutUint32(data[dir:], sec.VirtualAddress)
	binary.LittleEndian.PutUint32(data[dir+4:], 72)
	hdr := int(sec.PointerToRawData)
	binary.LittleEndian.PutUint32(data[hdr:], 72)
	binary.LittleEndian.PutUint32(data[hdr+16:], 1)
	_, err = OpenBytes(data)
	if err == nil || err.Error() != ".NET IL-only assembly: no native code to patch" {
		t.Fatalf("IL-only image: %v", err)
	}
}

// TestPDBGUIDKeepsLeadingZeros: GUIDs are formatted with every field
// zero-padded (saferwall drops leading zeros).
func TestPDBGUIDKeepsLeadingZeros(t *testing.T) {
	g := []byte{0x01, 0, 0, 0, 0x02, 0, 0x03, 0, 0, 0x04, 0, 0, 0, 0, 0, 0x05}
	if got, want := formatGUID(g), "{00000001-0002-0003-0004-000000000005}"; got != want {
		t.Fatalf("formatGUID = %s, want %s", got, want)
	}
}

// FuzzOpen: arbitrary bytes never panic Open; whatever opens has a
// consistent function table.
func FuzzOpen(f *testing.F) {
	for _, p := range fixtureDLLs(f, "*/*/*.dll") {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) <= 64<<10 { // small seeds keep the fuzzer fast
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := OpenBytes(data)
		if err != nil {
			return
		}
		for _, fn := range pf.Functions() {
			_ = fn.DisplayName()
			for _, r := range fn.Refs {
				_ = pf.Resolve(r.Target).String()
			}
		}
		_ = pf.Warnings
	})
}

// TestOpenMatchesOpenBytes: Open (which maps the file where it can) models
// the same image as OpenBytes on the file's contents, and Close releases it
// once, a second Close being a no-op.
func TestOpenMatchesOpenBytes(t *testing.T) {
	const rel = "body_change/x64/new.dll"
	data := readFixture(t, rel)
	want, err := OpenBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open("../testdata/" + rel)
	if err != nil {
		t.Fatal(err)
	}
	if f.SHA256 != want.SHA256 || len(f.Functions()) != len(want.Functions()) {
		t.Errorf("Open: sha %x, %d functions; OpenBytes: sha %x, %d functions",
			f.SHA256[:4], len(f.Functions()), want.SHA256[:4], len(want.Functions()))
	}
	for i, fn := range f.Functions() {
		if w := want.Functions()[i]; fn.RVA != w.RVA || fn.Size != w.Size || len(fn.Refs) != len(w.Refs) {
			t.Errorf("function %d: Open %#x+%d (%d refs), OpenBytes %#x+%d (%d refs)",
				i, fn.RVA, fn.Size, len(fn.Refs), w.RVA, w.Size, len(w.Refs))
		}
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestOpenEmptyAndDirectory: an empty file is not PE, a directory is not a
// regular file; neither is mapped or read.
func TestOpenEmptyAndDirectory(t *testing.T) {
	dir := t.TempDir()
	empty := dir + "/empty.dll"
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty); !errors.Is(err, ErrNotPE) {
		t.Errorf("empty file: %v, want ErrNotPE", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v, want 'not a regular file'", err)
	}
}
