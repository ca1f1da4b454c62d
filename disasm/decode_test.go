package disasm

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// tablePC is the address every testdata/decode.txt case is decoded at.
const tablePC = 0x1000

// tableCase is one line of testdata/decode.txt.
type tableCase struct {
	line  int
	mode  int
	code  []byte
	len   int // -1: Decode must fail
	op    string
	refs  []tableRef
	ltext string
}

type tableRef struct {
	kind      RefKind
	based     bool
	off, w    int
	target    uint64
	hasTarget bool
}

func (r tableRef) String() string {
	s := r.kind.String()
	if r.based {
		s += "+base"
	}
	s += fmt.Sprintf("@%d/%d", r.off, r.w)
	if r.hasTarget {
		s += fmt.Sprintf("=%#x", r.target)
	}
	return s
}

func readTable(t *testing.T) []tableCase {
	t.Helper()
	cases, err := readTableFile("testdata/decode.txt")
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// readTableFile reads and parses a decode table.
func readTableFile(name string) ([]tableCase, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var cases []tableCase
	for n, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c, err := parseTableLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n+1, err)
		}
		c.line = n + 1
		cases = append(cases, c)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", name)
	}
	return cases, nil
}

func parseTableLine(line string) (tableCase, error) {
	var c tableCase
	c.ltext = line
	f := strings.Split(line, "\t")
	if len(f) != 5 {
		return c, fmt.Errorf("want 5 tab-separated fields, have %d", len(f))
	}
	switch f[0] {
	case "32":
		c.mode = 32
	case "64":
		c.mode = 64
	default:
		return c, fmt.Errorf("bad mode %q", f[0])
	}
	code, err := hex.DecodeString(strings.ReplaceAll(f[1], " ", ""))
	if err != nil || len(code) == 0 {
		return c, fmt.Errorf("bad hex %q", f[1])
	}
	c.code = code
	if f[2] == "err" {
		c.len = -1
	} else if c.len, err = strconv.Atoi(f[2]); err != nil || c.len < 1 || c.len > 15 {
		return c, fmt.Errorf("bad length %q", f[2])
	}
	c.op = f[3]
	if f[4] == "-" {
		return c, nil
	}
	for _, s := range strings.Split(f[4], ",") {
		var r tableRef
		kind, rest, ok := strings.Cut(s, "@")
		if !ok {
			return c, fmt.Errorf("bad ref %q", s)
		}
		kind, r.based = strings.CutSuffix(kind, "+base")
		for k := RefRel8; k <= RefImm64; k++ {
			if k.String() == kind {
				r.kind = k
			}
		}
		if r.kind == 0 {
			return c, fmt.Errorf("bad ref kind %q", kind)
		}
		pos, target, hasTarget := strings.Cut(rest, "=")
		if _, err := fmt.Sscanf(pos, "%d/%d", &r.off, &r.w); err != nil {
			return c, fmt.Errorf("bad ref %q: %v", s, err)
		}
		if hasTarget {
			r.target, err = strconv.ParseUint(strings.TrimPrefix(target, "0x"), 16, 64)
			if err != nil {
				return c, fmt.Errorf("bad ref target %q", target)
			}
			r.hasTarget = true
		}
		c.refs = append(c.refs, r)
	}
	return c, nil
}

func TestDecodeTable(t *testing.T) {
	for _, c := range readTable(t) {
		inst, err := Decode(c.code, tablePC, c.mode)
		where := fmt.Sprintf("decode.txt:%d: %d-bit % x", c.line, c.mode, c.code)
		if c.len < 0 {
			if err == nil {
				t.Errorf("%s: decoded as %s (len %d), want an error", where, inst.Mnemonic(), inst.Len)
			}
			var de *DecodeError
			if err != nil && !errors.As(err, &de) {
				t.Errorf("%s: error %T, want *DecodeError", where, err)
			}
			if inst.Len != 0 {
				t.Errorf("%s: error with Len %d, want 0", where, inst.Len)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if inst.Len != c.len {
			t.Errorf("%s: Len = %d, want %d", where, inst.Len, c.len)
		}
		if !mnemonicMatches(inst.Mnemonic(), c.op) {
			t.Errorf("%s: op = %s, want %s", where, inst.Mnemonic(), c.op)
		}
		var got, want []string
		for _, r := range inst.RefList() {
			tr := tableRef{kind: r.Kind, based: r.Based, off: int(r.Off), w: int(r.Width), target: r.Target, hasTarget: true}
			got = append(got, tr.String())
		}
		for k, r := range c.refs {
			if !r.hasTarget && k < len(inst.RefList()) {
				r.target, r.hasTarget = inst.Refs[k].Target, true // not checked
			}
			want = append(want, r.String())
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: refs = %v, want %v", where, got, want)
		}
	}
}

// TestDecodeTableAgainstObjdump checks the table itself: objdump must agree
// with every expected length and mnemonic.
func TestDecodeTableAgainstObjdump(t *testing.T) {
	tool := needObjdump(t)
	for _, mode := range []int{32, 64} {
		var cases []tableCase
		var codes [][]byte
		for _, c := range readTable(t) {
			if c.mode == mode && c.len > 0 {
				cases = append(cases, c)
				codes = append(codes, c.code)
			}
		}
		lens, texts := odSlots(t, tool, codes, mode)
		for i, c := range cases {
			where := fmt.Sprintf("decode.txt:%d: %d-bit % x", c.line, c.mode, c.code)
			if lens[i] != c.len {
				t.Errorf("%s: objdump length %d (%q), table says %d", where, lens[i], texts[i], c.len)
			}
			if m := odMnemonic(texts[i]); m != c.op {
				t.Errorf("%s: objdump mnemonic %q (%q), table says %q", where, m, texts[i], c.op)
			}
		}
	}
}

func TestFlow(t *testing.T) {
	tests := []struct {
		mode int
		hex  string
		want Flow
	}{
		{64, "90", FlowNone},
		{64, "eb fe", FlowJump},
		{64, "e9 00 00 00 00", FlowJump},
		{64, "f2 e9 00 00 00 00", FlowJump},
		{64, "74 00", FlowCondJump},
		{64, "0f 84 00 00 00 00", FlowCondJump},
		{64, "e3 00", FlowCondJump},
		{64, "e2 00", FlowCondJump},
		{64, "c7 f8 00 00 00 00", FlowCondJump},
		{64, "e8 00 00 00 00", FlowCall},
		{64, "ff e0", FlowIndirectJump},
		{64, "3e ff e0", FlowIndirectJump},
		{64, "ff 25 00 00 00 00", FlowIndirectJump},
		{64, "48 ff 25 00 00 00 00", FlowIndirectJump},
		{64, "ff 24 c5 00 20 00 00", FlowIndirectJump},
		{64, "ff 15 00 00 00 00", FlowIndirectCall},
		{64, "ff d0", FlowIndirectCall},
		{64, "c3", FlowRet},
		{64, "f3 c3", FlowRet},
		{64, "c2 08 00", FlowRet},
		{64, "48 cf", FlowRet},
		{64, "cc", FlowTrap},
		{64, "cd 03", FlowTrap},
		{64, "cd 29", FlowTrap},
		{64, "0f 0b", FlowTrap},
		{64, "f4", FlowTrap},
		{64, "cd 2c", FlowNone},
		{64, "0f 05", FlowSyscall},
		{64, "f3 0f 1e fa", FlowNone},
		{64, "c5 f8 77", FlowNone},
		{32, "ff 24 85 00 10 00 10", FlowIndirectJump},
		{32, "ff 15 00 50 00 10", FlowIndirectCall},
		{32, "cd 2e", FlowSyscall},
		{32, "e3 00", FlowCondJump},
		{32, "ea 00 00 00 00 08 00", FlowIndirectJump},
		{32, "9a 00 00 00 00 08 00", FlowIndirectCall},
		{32, "cb", FlowRet},
	}
	for _, tt := range tests {
		code, _ := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
		inst, err := Decode(code, 0x1000, tt.mode)
		if err != nil {
			t.Errorf("%d-bit %s: %v", tt.mode, tt.hex, err)
			continue
		}
		if inst.Flow != tt.want {
			t.Errorf("%d-bit %s (%s): Flow = %v, want %v", tt.mode, tt.hex, inst.Mnemonic(), inst.Flow, tt.want)
		}
		if ft := inst.Flow.FallsThrough(); ft != (tt.want != FlowJump && tt.want != FlowIndirectJump && tt.want != FlowRet && tt.want != FlowTrap) {
			t.Errorf("%v.FallsThrough() = %v", inst.Flow, ft)
		}
	}
}

// TestRawFixups checks that Inst.Raw carries the fix-ups, so that printing
// it shows the right operands.
func TestRawFixups(t *testing.T) {
	tests := []struct {
		hex      string
		wantLen  int
		wantText string
	}{
		{"c5 fe 6f 05 34 12 00 00", 8, "vmovdqu ymm0, ymmword ptr [rip+0x1234]"},
		{"c5 f8 77 c3", 3, "vzeroupper"},
		{"65 c5 fe 6f 05 10 00 00 00", 9, "vmovdqu ymm0, ymmword ptr gs:[rip+0x10]"},
		{"f3 0f 1e fa", 0, "endbr64"},
	}
	for _, tt := range tests {
		code, _ := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
		inst, err := Decode(code, 0x1000, 64)
		if err != nil {
			t.Errorf("%s: %v", tt.hex, err)
			continue
		}
		if inst.Raw.Len != tt.wantLen {
			t.Errorf("%s: Raw.Len = %d, want %d", tt.hex, inst.Raw.Len, tt.wantLen)
		}
		if got := inst.Text(0x1000); got != tt.wantText {
			t.Errorf("%s: Text = %q, want %q", tt.hex, got, tt.wantText)
		}
		if inst.Raw.Op != 0 && inst.NRefs > 0 && inst.Refs[0].Kind == RefRIP {
			if inst.Raw.PCRel != 4 || inst.Raw.PCRelOff != int(inst.Refs[0].Off) {
				t.Errorf("%s: Raw.PCRel/PCRelOff = %d/%d, want 4/%d", tt.hex, inst.Raw.PCRel, inst.Raw.PCRelOff, inst.Refs[0].Off)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range []struct {
		code []byte
		mode int
	}{
		{nil, 64},
		{[]byte{0x90}, 16},
		{[]byte{0x90}, 0},
	} {
		inst, err := Decode(tt.code, 0, tt.mode)
		var de *DecodeError
		if !errors.As(err, &de) || inst.Len != 0 {
			t.Errorf("Decode(% x, %d) = len %d, %v; want *DecodeError and len 0", tt.code, tt.mode, inst.Len, err)
		}
	}
	// A long input is cut to 15 bytes in the error.
	long := make([]byte, 40)
	for i := range long {
		long[i] = 0x66
	}
	_, err := Decode(long, 0x1234, 64)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Decode(66 x 40) = %v, want *DecodeError", err)
	}
	if len(de.Bytes) != 15 || de.PC != 0x1234 {
		t.Errorf("DecodeError = %+v, want 15 bytes at 0x1234", de)
	}
	// Unknown but well-formed: the length decoder tells how far to skip.
	_, err = Decode([]byte{0x0f, 0x0f, 0xc1, 0x9e}, 0, 64) // 3DNow! pfadd
	if !errors.As(err, &de) || de.Len != 4 {
		t.Errorf("3DNow! pfadd: %v (Len %d), want a DecodeError with Len 4", err, de.Len)
	}
}

// TestSyntheticOps checks the names and the IsSynthetic/OpName contract.
func TestSyntheticOps(t *testing.T) {
	if len(extraNames) != int(opExtraEnd-opExtraBase) {
		t.Fatalf("extraNames has %d names for %d ops", len(extraNames), opExtraEnd-opExtraBase)
	}
	if OpName(OpENDBR64) != "ENDBR64" || !IsSynthetic(OpENDBR64) {
		t.Errorf("OpName(OpENDBR64) = %q", OpName(OpENDBR64))
	}
	if IsSynthetic(x86asm.NOP) || OpName(x86asm.NOP) != "NOP" {
		t.Errorf("x86asm.NOP misnamed")
	}
	// x86asm must not have grown into our range.
	if s := x86asm.Op(opExtraBase - 1).String(); !strings.HasPrefix(s, "Op(") {
		t.Errorf("x86asm knows op %d (%s): move opExtraBase", opExtraBase-1, s)
	}
	for _, e := range extraTable {
		if !IsSynthetic(e.name) && e.name != x86asm.NOP {
			t.Errorf("extraTable entry %+v: name is not synthetic", e)
		}
	}
}
