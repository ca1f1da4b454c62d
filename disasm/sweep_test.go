package disasm

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// TestOpcodeSweepAgainstObjdump walks the opcode space (legacy one-byte,
// 0F, 0F 38, 0F 3A maps under common prefixes, and VEX/EVEX in the larger
// DISASM_SWEEP=full run) with a spread of ModRM forms, and checks every
// successful Decode against objdump's length. Cases objdump rejects, or
// that Decode refuses, are counted and logged, not failed: refusing is
// always allowed, decoding with a wrong length never is.
func TestOpcodeSweepAgainstObjdump(t *testing.T) {
	tool := needObjdump(t)
	full := os.Getenv("DISASM_SWEEP") == "full"
	if testing.Short() && !full {
		t.Skip("skipping the opcode sweep in -short mode")
	}
	for _, mode := range []int{64, 32} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			cases := sweepCases(mode, full)
			lens, texts := odSlots(t, tool, cases, mode)
			var (
				stats    = map[string]int{}
				examples = map[string][]string{}
			)
			var dump *os.File
			if name := os.Getenv("DISASM_SWEEP_DUMP"); name != "" {
				f, err := os.Create(fmt.Sprintf("%s.%d", name, mode))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				dump = f
			}
			note := func(cat, ex string) {
				stats[cat]++
				if dump != nil {
					fmt.Fprintf(dump, "%s\t%s\n", cat, ex)
				}
				if len(examples[cat]) < 8 {
					examples[cat] = append(examples[cat], ex)
				}
			}
			for i, c := range cases {
				odLen, odText := lens[i], texts[i]
				odOK := odLen > 0 && odMnemonic(odText) != ""
				code := make([]byte, 16)
				copy(code, c)
				for k := len(c); k < 16; k++ {
					code[k] = fillByte(k)
				}
				inst, err := Decode(code, 0x1000, mode)
				li, st := decodeLength(code, mode)
				ex := fmt.Sprintf("%s: ours len=%d op=%s err=%v; lendec=%d/%d; objdump len=%d %q",
					hexBytes(code[:min(len(code), max(odLen, int(li.n), inst.Len, len(c)))]), inst.Len, inst.Mnemonic(), err, li.n, st, odLen, odText)
				switch {
				case err == nil && odOK && inst.Len != odLen && isWaitPrefixed(&inst, code, 0x1000, mode, odLen):
					note("fwait decoded apart from the x87 instruction objdump merges it with", ex)
				case err == nil && odOK && inst.Len != odLen:
					note("FAIL length differs from objdump", ex)
					t.Errorf("length mismatch: %s", ex)
				case err == nil && odOK:
					stats["ok"]++
					if !mnemonicMatches(inst.Mnemonic(), odMnemonic(odText)) {
						note("mnemonic differs", ex)
					}
				case err == nil:
					note("decoded, objdump rejects", ex)
				case odOK:
					note("refused, objdump decodes", ex)
					if st == lenOK && int(li.n) != odLen {
						note("length decoder differs (refused anyway)", ex)
					}
				default:
					stats["both reject"]++
				}
			}
			keys := make([]string, 0, len(stats))
			for k := range stats {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var sb strings.Builder
			fmt.Fprintf(&sb, "%d cases\n", len(cases))
			for _, k := range keys {
				fmt.Fprintf(&sb, "  %-45s %d\n", k, stats[k])
				for _, e := range examples[k] {
					fmt.Fprintf(&sb, "      %s\n", e)
				}
			}
			t.Log(sb.String())
		})
	}
}

// sweepCases generates the opcode sweep: prefix sets x opcode x ModRM
// forms. Bytes after the ModRM form are left to the filler. The default
// set takes a few seconds; full (DISASM_SWEEP=full) adds more prefixes,
// every ModRM register form and EVEX, and takes minutes.
func sweepCases(mode int, full bool) [][]byte {
	legacyPfx := [][]byte{nil, {0x66}, {0xF3}, {0xF2}}
	if mode == 64 {
		legacyPfx = append(legacyPfx, []byte{0x48})
	}
	if full {
		legacyPfx = append(legacyPfx, []byte{0x67}, []byte{0xF0}, []byte{0x65}, []byte{0x2E},
			[]byte{0x66, 0xF2}, []byte{0x66, 0xF3})
		if mode == 64 {
			legacyPfx = append(legacyPfx, []byte{0x66, 0x48}, []byte{0xF3, 0x48}, []byte{0xF2, 0x48})
		}
	}
	var cases [][]byte
	add := func(parts ...[]byte) {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		cases = append(cases, b)
	}
	// ModRM forms: RIP/absolute disp32, SIB without base, disp8 with SIB,
	// disp32 with SIB, register forms, [reg], for several reg fields.
	modrms := [][]byte{{0x05}, {0x0C, 0x25}, {0x54, 0x24}, {0x84}, {0xC1}, {0xF8}, {0x3D}, {0x10}, {0x28}}
	if full {
		modrms = nil
		for reg := byte(0); reg < 8; reg++ {
			r := reg << 3
			modrms = append(modrms, []byte{r | 0x05}, []byte{r | 0x04, 0x25}, []byte{r | 0x44, 0x24}, []byte{r | 0x80}, []byte{r | 0x01})
			for rm := byte(0); rm < 8; rm++ {
				modrms = append(modrms, []byte{0xC0 | r | rm})
			}
		}
	}
	// Opcodes whose meaning depends on the whole ModRM byte get every value.
	allModrm := map[byte]bool{0x00: true, 0x01: true, 0x0D: true, 0x18: true, 0x19: true, 0x1C: true,
		0x1E: true, 0x1F: true, 0xAE: true, 0xC7: true}
	for _, p := range legacyPfx {
		for op := 0; op < 256; op++ {
			if op != 0x0F {
				for _, m := range modrms {
					add(p, []byte{byte(op)}, m)
				}
			}
			switch {
			case op == 0x38 || op == 0x3A:
				for op2 := 0; op2 < 256; op2++ {
					for _, m := range modrms[:4] {
						add(p, []byte{0x0F, byte(op), byte(op2)}, m)
					}
					if !full {
						add(p, []byte{0x0F, byte(op), byte(op2), 0xC1})
					}
				}
			case allModrm[byte(op)]:
				for m := 0; m < 256; m++ {
					add(p, []byte{0x0F, byte(op), byte(m)})
				}
			default:
				for _, m := range modrms {
					add(p, []byte{0x0F, byte(op)}, m)
				}
			}
		}
	}
	// VEX and EVEX.
	var vexPfx [][]byte
	for b1 := byte(0xF8); b1 != 0; b1++ { // C5: R=1, vvvv=1111, L, pp
		vexPfx = append(vexPfx, []byte{0xC5, b1})
	}
	for _, mp := range []byte{0xE1, 0xE2, 0xE3} {
		for w := byte(0); w < 2; w++ {
			for l := byte(0); l < 2; l++ {
				for pp := byte(0); pp < 4; pp++ {
					if full || w == 0 || mp != 0xE1 {
						vexPfx = append(vexPfx, []byte{0xC4, mp, w<<7 | 0x78 | l<<2 | pp})
					}
				}
			}
		}
	}
	if full {
		for _, mp := range []byte{0xF1, 0xF2, 0xF3} {
			for w := byte(0); w < 2; w++ {
				for l := byte(0); l < 3; l++ {
					for pp := byte(0); pp < 4; pp++ {
						vexPfx = append(vexPfx, []byte{0x62, mp, w<<7 | 0x7C | pp, l<<5 | 0x08 | 1})
					}
				}
			}
		}
	}
	vexModrms := [][]byte{{0x05}, {0x0C, 0x25}, {0xC1}, {0xD1}, {0xE1}, {0xF1}, {0x44, 0x24}, {0x10}}
	if !full {
		vexModrms = [][]byte{{0x05}, {0xD1}}
	}
	for _, p := range vexPfx {
		for op := 0; op < 256; op++ {
			for _, m := range vexModrms {
				add(p, []byte{byte(op)}, m)
			}
		}
	}
	if !full {
		// A few EVEX forms: RIP-relative, with and without imm8, per map.
		for _, mp := range []byte{0xF1, 0xF2, 0xF3} {
			for _, p1 := range []byte{0x7C, 0x7D, 0xFD} {
				for op := 0; op < 256; op++ {
					add([]byte{0x62, mp, p1, 0x48, byte(op), 0x05})
				}
			}
		}
	}
	return cases
}

// mnemonicMatches compares our mnemonic with objdump's, modulo the
// spelling differences between x86asm and GNU (size suffixes, condition
// code synonyms, ...).
func mnemonicMatches(ours, od string) bool {
	if ours == od {
		return true
	}
	if a, ok := mnemonicAliases[od]; ok && a == ours {
		return true
	}
	return false
}

// mnemonicAliases maps objdump (-M intel) spellings to x86asm's.
var mnemonicAliases = map[string]string{
	"int3":   "int",
	"movabs": "mov",
	"jz":     "je",
	"jnz":    "jne",
	"jc":     "jb",
	"jnc":    "jae",
	"jecxz":  "jecxz",
	"jrcxz":  "jrcxz",
	"loopz":  "loope",
	"loopnz": "loopne",
	"xchg":   "nop",
	"ret":    "ret",
	"retf":   "lret",
	"cs":     "",
	"ud1":    "ud1",
	"call":   "call",
	"jmp":    "jmp",
	"iretd":  "iretd",
	"movsxd": "movsxd",
	"cwde":   "cwde",
	"shl":    "shl",
	"sal":    "shl",
	"fwait":  "fwait",
	"pushf":  "pushf",
	"pushfq": "pushfq",
	"popfq":  "popfq",
	"cdqe":   "cdqe",
	"cqo":    "cqo",
	"cdq":    "cdq",
	"nopw":   "nop",
	"nopl":   "nop",
}
