package disasm

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// This file runs x86_64-w64-mingw32-objdump (GNU libopcodes) as an
// oracle. Tests that need it skip when it is not on PATH.

const objdumpName = "x86_64-w64-mingw32-objdump"

func needObjdump(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath(objdumpName)
	if err != nil {
		t.Skipf("%s not on PATH (install binutils-mingw-w64-x86-64); skipping the objdump oracle", objdumpName)
	}
	return p
}

// odInst is one line of objdump's listing.
type odInst struct {
	addr int
	text string // mnemonic and operands, as printed (-M intel)
}

// objdumpBinary disassembles raw bytes as a flat binary in the given mode
// and returns the listing, in address order.
func objdumpBinary(t testing.TB, tool string, code []byte, mode int) []odInst {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "code.bin")
	if err := os.WriteFile(bin, code, 0o644); err != nil {
		t.Fatal(err)
	}
	arch := "i386:x86-64"
	if mode == 32 {
		arch = "i386"
	}
	cmd := exec.Command(tool, "-D", "-z", "--insn-width=16", "-b", "binary", "-m", arch, "-M", "intel", bin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return parseObjdump(out)
}

// parseObjdump parses "  addr:\tbytes\ttext" lines.
func parseObjdump(out []byte) []odInst {
	var list []odInst
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.SplitN(line, "\t", 3)
		if len(f) < 2 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		a, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(f[0], ":")), 16, 64)
		if err != nil {
			continue
		}
		text := ""
		if len(f) == 3 {
			text = strings.TrimSpace(f[2])
		}
		list = append(list, odInst{addr: int(a), text: text})
	}
	return list
}

// odPrefixWords are words objdump prints in front of a mnemonic.
var odPrefixWords = map[string]bool{
	"rex": true, "rex.w": true, "rex.b": true, "rex.x": true, "rex.r": true, "rex.wb": true, "rex.wx": true,
	"rex.wr": true, "rex.rb": true, "rex.rx": true, "rex.xb": true, "rex.wrx": true, "rex.wrb": true,
	"rex.wxb": true, "rex.rxb": true, "rex.wrxb": true,
	"data16": true, "data32": true, "addr16": true, "addr32": true,
	"cs": true, "ds": true, "es": true, "ss": true, "fs": true, "gs": true,
	"lock": true, "rep": true, "repz": true, "repe": true, "repnz": true, "repne": true,
	"bnd": true, "notrack": true, "xacquire": true, "xrelease": true,
	"{vex}": true, "{vex3}": true, "{evex}": true,
}

// odMnemonic returns objdump's mnemonic for a listing text, without
// prefixes, or "" when objdump considers the bytes invalid (or printed a
// lone prefix).
func odMnemonic(text string) string {
	f := strings.Fields(text)
	for len(f) > 0 && odPrefixWords[strings.ToLower(f[0])] {
		f = f[1:]
	}
	if len(f) == 0 || f[0] == "(bad)" || strings.HasPrefix(f[0], ".byte") || strings.Contains(text, "(bad)") {
		return ""
	}
	return strings.ToLower(f[0])
}

// odSlots disassembles cases placed in fixed slots: each case is padded
// with filler to slot bytes and followed by 16 NOPs so that objdump
// resynchronises before the next slot. It returns objdump's length and
// text for the instruction at the start of each case (length 0 when
// objdump did not decode an instruction starting there).
func odSlots(t testing.TB, tool string, cases [][]byte, mode int) (lens []int, texts []string) {
	t.Helper()
	const slot = 32
	buf := make([]byte, 0, len(cases)*slot)
	for _, c := range cases {
		s := make([]byte, slot)
		copy(s, c)
		for k := len(c); k < 16; k++ {
			s[k] = fillByte(k)
		}
		for k := 16; k < slot; k++ {
			s[k] = 0x90
		}
		buf = append(buf, s...)
	}
	list := objdumpBinary(t, tool, buf, mode)
	lens = make([]int, len(cases))
	texts = make([]string, len(cases))
	j := 0
	for i := range cases {
		start := i * slot
		for j < len(list) && list[j].addr < start {
			j++
		}
		if j >= len(list) || list[j].addr != start {
			continue
		}
		next := len(buf)
		if j+1 < len(list) {
			next = list[j+1].addr
		}
		lens[i] = next - start
		texts[i] = list[j].text
	}
	return lens, texts
}

// fillByte is the filler after a test case: distinct bytes that are
// neither prefixes nor zero, so that displacements and immediates are
// visible in listings.
func fillByte(k int) byte {
	return [...]byte{0x11, 0x22, 0x33, 0x12, 0x34, 0x56, 0x78}[k%7]
}

func hexBytes(b []byte) string {
	var sb strings.Builder
	for k, c := range b {
		if k > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}
