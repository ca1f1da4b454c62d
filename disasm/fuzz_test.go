package disasm

import "testing"

// FuzzDecode checks the Decode contract on arbitrary bytes in both modes:
// no panic; an error is a *DecodeError with Len 0; a success has Len in
// 1..15 (so a sweep always advances), refs inside the instruction and in
// order, and does not depend on the bytes after the instruction.
func FuzzDecode(f *testing.F) {
	// Seed with every table case and a slice of real code.
	if cases, err := readTableFile("testdata/decode.txt"); err == nil {
		for _, c := range cases {
			f.Add(c.code, c.mode == 64)
		}
	}
	files := fixturePEs(f)
	for _, path := range files[:min(len(files), 4)] {
		if mode, secs, err := peCode(path); err == nil && len(secs) > 0 {
			d := secs[0].data
			for off := 0; off+64 <= len(d) && off < 4096; off += 512 {
				f.Add(d[off:off+64], mode == 64)
			}
		}
	}
	f.Fuzz(func(t *testing.T, code []byte, is64 bool) {
		mode := 32
		if is64 {
			mode = 64
		}
		const pc = 0x7ffe_0000_1000
		inst, err := Decode(code, pc, mode)
		checkDecode(t, code, pc, mode, inst, err)
		if err != nil {
			return
		}
		if inst.Raw.Op != 0 && inst.Raw.Len != inst.Len {
			t.Fatalf("% x: Raw.Len %d, Len %d", code[:inst.Len], inst.Raw.Len, inst.Len)
		}
		// The same instruction without the bytes after it.
		again, err := Decode(code[:inst.Len], pc, mode)
		if err != nil || again.Len != inst.Len || again.Op != inst.Op || again.NRefs != inst.NRefs || again.Refs != inst.Refs {
			t.Fatalf("% x: decodes as %s/%d alone (%v), as %s/%d with the bytes after it",
				code[:inst.Len], again.Mnemonic(), again.Len, err, inst.Mnemonic(), inst.Len)
		}
	})
}
