package disasm

import (
	"bufio"
	"debug/pe"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// codeSection is one executable section of a PE file.
type codeSection struct {
	name string
	va   uint64 // ImageBase + VirtualAddress
	data []byte // raw data, at most VirtualSize bytes
}

// peCode returns the executable sections of a PE file and its mode.
func peCode(path string) (mode int, secs []codeSection, err error) {
	f, err := pe.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	var base uint64
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader32:
		mode, base = 32, uint64(oh.ImageBase)
	case *pe.OptionalHeader64:
		mode, base = 64, oh.ImageBase
	default:
		return 0, nil, fmt.Errorf("%s: no optional header", path)
	}
	switch f.Machine {
	case pe.IMAGE_FILE_MACHINE_I386, pe.IMAGE_FILE_MACHINE_AMD64:
	default:
		return 0, nil, fmt.Errorf("%s: machine %#x is not x86", path, f.Machine)
	}
	for _, s := range f.Sections {
		if s.Characteristics&pe.IMAGE_SCN_MEM_EXECUTE == 0 {
			continue
		}
		d, err := s.Data()
		if err != nil {
			return 0, nil, fmt.Errorf("%s: section %s: %w", path, s.Name, err)
		}
		if s.VirtualSize != 0 && uint32(len(d)) > s.VirtualSize {
			d = d[:s.VirtualSize]
		}
		secs = append(secs, codeSection{name: s.Name, va: base + uint64(s.VirtualAddress), data: d})
	}
	return mode, secs, nil
}

// fixturePEs returns the committed fixture DLLs (testdata/<case>/{x64,x86}/*.dll
// at the module root) and any files named in $DISASM_PE_FILES
// (colon-separated), sorted.
func fixturePEs(t testing.TB) []string {
	var files []string
	for _, pat := range []string{"../testdata/*/x64/*.dll", "../testdata/*/x86/*.dll"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	sort.Strings(files)
	if extra := os.Getenv("DISASM_PE_FILES"); extra != "" {
		files = append(files, filepath.SplitList(extra)...)
	}
	return files
}

// TestSweepRealCode decodes every executable section of every fixture DLL
// end to end, linearly, as a caller would: every success must have a
// length in 1..15 with its refs inside the instruction, every failure a
// zero length and a *DecodeError, and the sweep must always advance.
func TestSweepRealCode(t *testing.T) {
	files := fixturePEs(t)
	if len(files) == 0 {
		t.Skip("no fixture DLLs under ../testdata/*/{x64,x86}/ yet")
	}
	for _, path := range files {
		mode, secs, err := peCode(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		var ninst, nerr int
		for _, s := range secs {
			for off := 0; off < len(s.data); {
				pc := s.va + uint64(off)
				inst, err := Decode(s.data[off:], pc, mode)
				step := checkDecode(t, s.data[off:], pc, mode, inst, err)
				if err != nil {
					nerr++
				} else {
					ninst++
				}
				off += step
			}
		}
		if testing.Verbose() {
			t.Logf("%s: %d-bit, %d instructions, %d undecodable positions", path, mode, ninst, nerr)
		}
	}
}

// checkDecode asserts the Decode contract for one result and returns how
// far a linear sweep advances.
func checkDecode(t testing.TB, code []byte, pc uint64, mode int, inst Inst, err error) int {
	t.Helper()
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("%d-bit %#x: error %T (%v), want *DecodeError", mode, pc, err, err)
		}
		if inst.Len != 0 {
			t.Fatalf("%d-bit %#x: error with Len %d", mode, pc, inst.Len)
		}
		if len(de.Bytes) > MaxInstLen || de.Len < 0 || de.Len > MaxInstLen || de.Len > len(code) {
			t.Fatalf("%d-bit %#x: bad DecodeError %+v", mode, pc, de)
		}
		return max(1, de.Len)
	}
	if inst.Len < 1 || inst.Len > MaxInstLen || inst.Len > len(code) {
		t.Fatalf("%d-bit %#x (% x): Len %d", mode, pc, code[:min(len(code), 15)], inst.Len)
	}
	if inst.NRefs > 2 {
		t.Fatalf("%d-bit %#x: NRefs %d", mode, pc, inst.NRefs)
	}
	end := 0
	for _, r := range inst.RefList() {
		if r.Width != 1 && r.Width != 4 && r.Width != 8 {
			t.Fatalf("%d-bit %#x (% x): ref %v has width %d", mode, pc, code[:inst.Len], r, r.Width)
		}
		if int(r.Off) < end || int(r.Off)+int(r.Width) > inst.Len {
			t.Fatalf("%d-bit %#x (% x): ref %v outside the instruction or out of order", mode, pc, code[:inst.Len], r)
		}
		end = int(r.Off) + int(r.Width)
	}
	return inst.Len
}

// TestRealCodeAgainstObjdump decodes every instruction objdump lists in
// the fixture DLLs (and $DISASM_PE_FILES) at objdump's addresses and checks
// the length, the direct branch targets and the RIP-relative targets
// against objdump's listing.
func TestRealCodeAgainstObjdump(t *testing.T) {
	tool := needObjdump(t)
	files := fixturePEs(t)
	if len(files) == 0 {
		t.Skip("no fixture DLLs under ../testdata/*/{x64,x86}/ yet")
	}
	if testing.Short() && os.Getenv("DISASM_PE_FILES") == "" {
		files = files[:min(len(files), 8)]
	}
	for _, path := range files {
		mode, secs, err := peCode(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		cmd := exec.Command(tool, "-d", "-z", "-M", "intel", "--insn-width=16", path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		var (
			n, refused, skipped int
			refusedEx           []string
		)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			addr, nbytes, text, ok := parseObjdumpPELine(line)
			if !ok {
				continue
			}
			code := sectionBytes(secs, addr)
			if code == nil || nbytes > len(code) {
				continue
			}
			if odMnemonic(text) == "" {
				skipped++
				continue
			}
			n++
			inst, err := Decode(code, addr, mode)
			if err != nil {
				refused++
				if len(refusedEx) < 10 {
					refusedEx = append(refusedEx, fmt.Sprintf("%#x % x: %q: %v", addr, code[:nbytes], text, err))
				}
				continue
			}
			where := fmt.Sprintf("%s: %#x % x (%s)", filepath.Base(path), addr, code[:nbytes], text)
			if inst.Len != nbytes && isWaitPrefixed(&inst, code, addr, mode, nbytes) {
				continue
			}
			if inst.Len != nbytes {
				t.Errorf("%s: Len %d, objdump %d", where, inst.Len, nbytes)
				continue
			}
			if want, ok := objdumpTarget(text); ok {
				if !hasTarget(&inst, want) {
					t.Errorf("%s: refs %v, objdump target %#x", where, refsString(&inst), want)
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Errorf("%s: reading objdump output: %v", path, err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s %s: %v", tool, path, err)
		}
		if refused > 0 {
			t.Logf("%s: %d of %d objdump instructions refused (e.g. %s)", path, refused, n, strings.Join(refusedEx, "; "))
		}
		if testing.Verbose() {
			t.Logf("%s: %d instructions checked, %d objdump (bad)/prefix lines skipped", path, n, skipped)
		}
	}
}

// isWaitPrefixed reports whether objdump merged an fwait (9B) with the
// x87 instruction after it (fstsw = fwait; fnstsw) while we decoded the
// fwait on its own, as the processor executes it.
func isWaitPrefixed(inst *Inst, code []byte, addr uint64, mode, nbytes int) bool {
	off := 0
	for off < nbytes {
		next, err := Decode(code[off:], addr+uint64(off), mode)
		if err != nil {
			return false
		}
		off += next.Len
		if next.Op != x86asm.FWAIT {
			break
		}
	}
	return inst.Op == x86asm.FWAIT && off == nbytes
}

// parseObjdumpPELine parses "  addr:\tbytes\ttext" and returns the address,
// the number of bytes and the text.
func parseObjdumpPELine(line string) (addr uint64, nbytes int, text string, ok bool) {
	f := strings.SplitN(line, "\t", 3)
	if len(f) != 3 || !strings.HasSuffix(f[0], ":") {
		return 0, 0, "", false
	}
	a, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(f[0], ":")), 16, 64)
	if err != nil {
		return 0, 0, "", false
	}
	return a, len(strings.Fields(f[1])), strings.TrimSpace(f[2]), true
}

// sectionBytes returns up to 15 bytes at virtual address addr.
func sectionBytes(secs []codeSection, addr uint64) []byte {
	for _, s := range secs {
		if addr >= s.va && addr < s.va+uint64(len(s.data)) {
			d := s.data[addr-s.va:]
			return d[:min(len(d), MaxInstLen)]
		}
	}
	return nil
}

// objdumpTarget extracts the address objdump computed for a direct branch
// ("jne    0x18000102d") or a RIP-relative operand ("# 0x180017b00").
func objdumpTarget(text string) (uint64, bool) {
	if i := strings.Index(text, "# 0x"); i >= 0 && strings.Contains(text, "rip") {
		v, err := strconv.ParseUint(strings.Fields(text[i+4:])[0], 16, 64)
		return v, err == nil
	}
	f := strings.Fields(text)
	for len(f) > 0 && odPrefixWords[strings.ToLower(f[0])] {
		f = f[1:]
	}
	if len(f) >= 2 && (strings.HasPrefix(f[0], "j") || strings.HasPrefix(f[0], "call") || strings.HasPrefix(f[0], "loop") || f[0] == "xbegin") && strings.HasPrefix(f[1], "0x") {
		v, err := strconv.ParseUint(f[1][2:], 16, 64)
		return v, err == nil
	}
	return 0, false
}

func hasTarget(inst *Inst, want uint64) bool {
	for _, r := range inst.RefList() {
		switch r.Kind {
		case RefRel8, RefRel32, RefCall32, RefRIP:
			if r.Target == want {
				return true
			}
		}
	}
	return false
}

func refsString(inst *Inst) string {
	var s []string
	for _, r := range inst.RefList() {
		s = append(s, fmt.Sprintf("%v=%#x", r, r.Target))
	}
	return "[" + strings.Join(s, " ") + "]"
}
