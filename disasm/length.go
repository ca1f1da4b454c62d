package disasm

import "encoding/binary"

// This file holds the independent, table-driven length decoder. It knows
// nothing about mnemonics: it walks prefixes, REX, VEX/EVEX/XOP, the opcode
// maps, ModRM, SIB, displacement and immediate, and records where each field
// sits. Decode uses it to check the length x86asm reports, to find the
// displacement and immediate offsets x86asm does not report (VEX/EVEX
// RIP-relative operands, absolute displacements, immediates) and to size
// the instructions x86asm does not know.

// Attribute bits of an opcode in the one-byte and 0F maps. The low four
// bits hold the immediate kind (imm*), the rest are flags.
const (
	aModRM   uint16 = 1 << (4 + iota) // a ModRM byte follows the opcode
	aRegOnly                          // ModRM is always a register form (mov cr/dr)
	aPrefix                           // legacy prefix byte (one-byte map only)
	aInv64                            // invalid in 64-bit mode
	aInvalid                          // undefined opcode
	aGrp3                             // F6/F7: the immediate exists only for /0 and /1
	aRel                              // the immediate is a branch displacement
	aEsc                              // escape to another map (0F, 0F 38, 0F 3A, 0F 0F)
)

// Immediate kinds (low four bits of an attribute).
const (
	immNone  = iota
	immB     // 1 byte
	immW     // 2 bytes
	immZ     // 2 or 4 bytes by operand size
	immV     // 2, 4 or 8 bytes by operand size (mov r, imm)
	immWB    // 3 bytes (enter iw, ib)
	immMoffs // address size (mov al/eax, moffs)
	immPtr   // far pointer: 4 or 6 bytes by operand size
	immBB    // 2 bytes (extrq/insertq ib, ib)
	immD     // 4 bytes (XOP map 0A)
	immMask  = 0x0F
)

// oneByte is the attribute table of the one-byte opcode map.
var oneByte = [256]uint16{
	// 00-3F: ALU ops in groups of eight (Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,ib / eAX,iz / two others).
	0x00: aModRM, 0x01: aModRM, 0x02: aModRM, 0x03: aModRM, 0x04: immB, 0x05: immZ, 0x06: aInv64, 0x07: aInv64,
	0x08: aModRM, 0x09: aModRM, 0x0A: aModRM, 0x0B: aModRM, 0x0C: immB, 0x0D: immZ, 0x0E: aInv64, 0x0F: aEsc,
	0x10: aModRM, 0x11: aModRM, 0x12: aModRM, 0x13: aModRM, 0x14: immB, 0x15: immZ, 0x16: aInv64, 0x17: aInv64,
	0x18: aModRM, 0x19: aModRM, 0x1A: aModRM, 0x1B: aModRM, 0x1C: immB, 0x1D: immZ, 0x1E: aInv64, 0x1F: aInv64,
	0x20: aModRM, 0x21: aModRM, 0x22: aModRM, 0x23: aModRM, 0x24: immB, 0x25: immZ, 0x26: aPrefix, 0x27: aInv64,
	0x28: aModRM, 0x29: aModRM, 0x2A: aModRM, 0x2B: aModRM, 0x2C: immB, 0x2D: immZ, 0x2E: aPrefix, 0x2F: aInv64,
	0x30: aModRM, 0x31: aModRM, 0x32: aModRM, 0x33: aModRM, 0x34: immB, 0x35: immZ, 0x36: aPrefix, 0x37: aInv64,
	0x38: aModRM, 0x39: aModRM, 0x3A: aModRM, 0x3B: aModRM, 0x3C: immB, 0x3D: immZ, 0x3E: aPrefix, 0x3F: aInv64,
	// 40-5F: inc/dec (REX in 64-bit mode, handled before the table), push/pop r.
	0x60: aInv64, 0x61: aInv64, 0x62: aModRM | aInv64, 0x63: aModRM,
	0x64: aPrefix, 0x65: aPrefix, 0x66: aPrefix, 0x67: aPrefix,
	0x68: immZ, 0x69: aModRM | immZ, 0x6A: immB, 0x6B: aModRM | immB,
	0x70: aRel | immB, 0x71: aRel | immB, 0x72: aRel | immB, 0x73: aRel | immB,
	0x74: aRel | immB, 0x75: aRel | immB, 0x76: aRel | immB, 0x77: aRel | immB,
	0x78: aRel | immB, 0x79: aRel | immB, 0x7A: aRel | immB, 0x7B: aRel | immB,
	0x7C: aRel | immB, 0x7D: aRel | immB, 0x7E: aRel | immB, 0x7F: aRel | immB,
	0x80: aModRM | immB, 0x81: aModRM | immZ, 0x82: aModRM | immB | aInv64, 0x83: aModRM | immB,
	0x84: aModRM, 0x85: aModRM, 0x86: aModRM, 0x87: aModRM,
	0x88: aModRM, 0x89: aModRM, 0x8A: aModRM, 0x8B: aModRM,
	0x8C: aModRM, 0x8D: aModRM, 0x8E: aModRM, 0x8F: aModRM,
	0x9A: immPtr | aInv64,
	0xA0: immMoffs, 0xA1: immMoffs, 0xA2: immMoffs, 0xA3: immMoffs,
	0xA8: immB, 0xA9: immZ,
	0xB0: immB, 0xB1: immB, 0xB2: immB, 0xB3: immB, 0xB4: immB, 0xB5: immB, 0xB6: immB, 0xB7: immB,
	0xB8: immV, 0xB9: immV, 0xBA: immV, 0xBB: immV, 0xBC: immV, 0xBD: immV, 0xBE: immV, 0xBF: immV,
	0xC0: aModRM | immB, 0xC1: aModRM | immB, 0xC2: immW,
	0xC4: aModRM | aInv64, 0xC5: aModRM | aInv64, // LES/LDS; VEX is handled before the table
	0xC6: aModRM | immB, 0xC7: aModRM | immZ, 0xC8: immWB, 0xCA: immW, 0xCD: immB, 0xCE: aInv64,
	0xD0: aModRM, 0xD1: aModRM, 0xD2: aModRM, 0xD3: aModRM, 0xD4: immB | aInv64, 0xD5: immB | aInv64, 0xD6: aInvalid,
	0xD8: aModRM, 0xD9: aModRM, 0xDA: aModRM, 0xDB: aModRM, 0xDC: aModRM, 0xDD: aModRM, 0xDE: aModRM, 0xDF: aModRM,
	0xE0: aRel | immB, 0xE1: aRel | immB, 0xE2: aRel | immB, 0xE3: aRel | immB,
	0xE4: immB, 0xE5: immB, 0xE6: immB, 0xE7: immB,
	0xE8: aRel | immZ, 0xE9: aRel | immZ, 0xEA: immPtr | aInv64, 0xEB: aRel | immB,
	0xF0: aPrefix, 0xF2: aPrefix, 0xF3: aPrefix,
	0xF6: aModRM | aGrp3 | immB, 0xF7: aModRM | aGrp3 | immZ, 0xFE: aModRM, 0xFF: aModRM,
}

// twoByte is the attribute table of the 0F map (legacy encoding).
var twoByte = func() (t [256]uint16) {
	for i := range t {
		t[i] = aModRM
	}
	for _, op := range []byte{0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x0E, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37,
		0x77, 0xA0, 0xA1, 0xA2, 0xA8, 0xA9, 0xAA, 0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF} {
		t[op] = 0
	}
	for _, op := range []byte{0x04, 0x0A, 0x0C, 0x36, 0x39, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x7A, 0x7B, 0xA6, 0xA7} {
		t[op] = aInvalid
	}
	t[0x0F] = aEsc | aModRM | immB // 3DNow!: 0F 0F /r ib (the ib is the opcode suffix)
	t[0x38] = aEsc
	t[0x3A] = aEsc
	for op := 0x20; op <= 0x23; op++ {
		t[op] = aModRM | aRegOnly
	}
	t[0x24] = aModRM | aRegOnly | aInv64 // mov r, tr (386/486 only)
	t[0x26] = aModRM | aRegOnly | aInv64
	for op := 0x80; op <= 0x8F; op++ {
		t[op] = aRel | immZ
	}
	for _, op := range []byte{0x70, 0x71, 0x72, 0x73, 0xA4, 0xAC, 0xBA, 0xC2, 0xC4, 0xC5, 0xC6} {
		t[op] = aModRM | immB
	}
	return t
}()

// vexImm8Map1 lists the 0F-map opcodes that take an imm8 under VEX/EVEX.
var vexImm8Map1 = func() (t [256]bool) {
	for _, op := range []byte{0x70, 0x71, 0x72, 0x73, 0xC2, 0xC4, 0xC5, 0xC6} {
		t[op] = true
	}
	return t
}()

// Encoding kinds recorded in lenInfo.enc.
const (
	encLegacy = iota
	encVEX2
	encVEX3
	encEVEX
	encXOP
)

// Memory operand kinds recorded in lenInfo.mem.
const (
	memNone   = iota // no memory operand in ModRM
	memBased         // base and/or index register, optional displacement
	memRIP           // 64-bit mode mod=00 r/m=101: RIP (or EIP) relative disp32
	memNoBase        // absolute disp32 (or disp16) without a base register
)

// Legacy prefix flags recorded in lenInfo.pfx.
const (
	pfx66 = 1 << iota
	pfx67
	pfxF2
	pfxF3
	pfxLock
	pfxSeg
	pfxREXW
	pfxREX
)

// lenInfo is the result of the length decoder. All offsets are from the
// first byte of the instruction; an offset is meaningful only when the
// matching length or flag is non-zero.
type lenInfo struct {
	n        uint8 // total length in bytes
	npfx     uint8 // legacy prefix and REX bytes before the opcode or VEX/EVEX/XOP
	enc      uint8 // encLegacy, encVEX2, ...
	opMap    uint8 // 0: one-byte, 1: 0F, 2: 0F 38, 3: 0F 3A, 4: 3DNow!, or the VEX/EVEX/XOP map number
	op       byte  // opcode byte within its map
	opOff    uint8 // offset of the opcode byte
	pfx      uint8 // pfx* flags
	last     byte  // the mandatory prefix: the last F2/F3, else 66, else 0
	modrm    byte
	hasModRM bool
	modrmOff uint8
	mem      uint8 // mem* kind
	dispOff  uint8
	dispLen  uint8 // 0, 1, 2 or 4
	immOff   uint8
	immLen   uint8 // total immediate bytes (0..8)
	immRel   bool  // the immediate is a relative branch displacement
	vexW     bool  // VEX.W / EVEX.W / XOP.W
}

// Reasons the length decoder gives up.
const (
	lenOK = iota
	lenTruncated
	lenTooLong
	lenInvalid
)

// decodeLength measures the instruction at the start of code in the given
// mode (32 or 64). It never reads past len(code) nor past 15 bytes.
func decodeLength(code []byte, mode int) (li lenInfo, status int) {
	if len(code) > 15 {
		code = code[:15]
	}
	pos := 0
	// Legacy prefixes, then REX (64-bit mode; a REX followed by another
	// prefix is ignored, as the hardware does).
	for {
		if pos >= len(code) {
			return li, lenTruncated
		}
		b := code[pos]
		if mode == 64 && b&0xF0 == 0x40 {
			li.pfx |= pfxREX
			if b&8 != 0 {
				li.pfx |= pfxREXW
			} else {
				li.pfx &^= pfxREXW
			}
			pos++
			continue
		}
		if oneByte[b]&aPrefix == 0 {
			break
		}
		// A legacy prefix after a REX cancels the REX.
		li.pfx &^= pfxREX | pfxREXW
		switch b {
		case 0x66:
			li.pfx |= pfx66
		case 0x67:
			li.pfx |= pfx67
		case 0xF2:
			li.pfx |= pfxF2
			li.last = b
		case 0xF3:
			li.pfx |= pfxF3
			li.last = b
		case 0xF0:
			li.pfx |= pfxLock
		default:
			li.pfx |= pfxSeg
		}
		pos++
	}
	li.npfx = uint8(pos)
	if li.last == 0 && li.pfx&pfx66 != 0 {
		li.last = 0x66 // F2/F3 take precedence over 66 as a mandatory prefix
	}

	addr16 := mode == 32 && li.pfx&pfx67 != 0
	b := code[pos]
	var attr uint16
	vexLike := false
	switch b {
	case 0xC4, 0xC5, 0x62, 0x8F:
		if pos+1 >= len(code) {
			return li, lenTruncated
		}
		nb := code[pos+1]
		switch {
		case b == 0x8F:
			vexLike = nb&0x1F >= 8 // XOP; otherwise pop r/m
		case mode == 64:
			vexLike = true
		default:
			vexLike = nb&0xC0 == 0xC0 // otherwise LES/LDS/BOUND
		}
	}
	if vexLike {
		// VEX/EVEX/XOP may not follow 66, F2, F3, LOCK or REX.
		if li.pfx&(pfx66|pfxF2|pfxF3|pfxLock|pfxREX) != 0 {
			return li, lenInvalid
		}
		var plen int
		switch b {
		case 0xC5:
			li.enc, plen, li.opMap = encVEX2, 2, 1
		case 0xC4:
			li.enc, plen = encVEX3, 3
		case 0x62:
			li.enc, plen = encEVEX, 4
		case 0x8F:
			li.enc, plen = encXOP, 3
		}
		if pos+plen >= len(code) {
			return li, lenTruncated
		}
		switch li.enc {
		case encVEX3, encXOP:
			li.opMap = code[pos+1] & 0x1F
			li.vexW = code[pos+2]&0x80 != 0
		case encEVEX:
			li.opMap = code[pos+1] & 0x07
			li.vexW = code[pos+2]&0x80 != 0
			if code[pos+2]&0x04 == 0 { // fixed bit of P1
				return li, lenInvalid
			}
		}
		pos += plen
		li.op = code[pos]
		li.opOff = uint8(pos)
		pos++
		switch li.enc {
		case encXOP:
			switch li.opMap {
			case 8:
				attr = aModRM | immB
			case 9:
				attr = aModRM
			case 10:
				attr = aModRM | immD
			default:
				return li, lenInvalid
			}
		default:
			switch li.opMap {
			case 1:
				attr = aModRM
				if vexImm8Map1[li.op] {
					attr |= immB
				}
				if li.op == 0x77 && li.enc != encEVEX {
					attr = 0 // vzeroupper/vzeroall: no ModRM
				}
			case 2:
				attr = aModRM
			case 3:
				attr = aModRM | immB
			case 5, 6:
				if li.enc != encEVEX {
					return li, lenInvalid
				}
				attr = aModRM
			default:
				return li, lenInvalid
			}
		}
	} else {
		li.opOff = uint8(pos)
		pos++
		attr = oneByte[b]
		li.op = b
		if b == 0x0F {
			if pos >= len(code) {
				return li, lenTruncated
			}
			b = code[pos]
			li.op = b
			li.opOff = uint8(pos)
			pos++
			li.opMap = 1
			attr = twoByte[b]
			switch b {
			case 0x38, 0x3A:
				if pos >= len(code) {
					return li, lenTruncated
				}
				li.opMap = 2
				attr = aModRM
				if b == 0x3A {
					li.opMap = 3
					attr = aModRM | immB
				}
				li.op = code[pos]
				li.opOff = uint8(pos)
				pos++
			case 0x0F:
				li.opMap = 4
			case 0x78:
				// SSE4a extrq/insertq with immediates (AMD); vmread otherwise.
				if li.last == 0x66 || li.last == 0xF2 {
					attr = aModRM | immBB
				}
			}
		}
		if mode == 64 && attr&aInv64 != 0 {
			return li, lenInvalid
		}
		if attr&aInvalid != 0 {
			return li, lenInvalid
		}
	}

	if attr&aModRM != 0 {
		if pos >= len(code) {
			return li, lenTruncated
		}
		modrm := code[pos]
		li.hasModRM = true
		li.modrm = modrm
		li.modrmOff = uint8(pos)
		pos++
		mod, rm := modrm>>6, modrm&7
		if attr&aRegOnly != 0 {
			mod = 3
		}
		switch {
		case mod == 3:
			// register operand
		case addr16:
			li.mem = memBased
			switch {
			case mod == 0 && rm == 6:
				li.mem = memNoBase
				li.dispLen = 2
			case mod == 1:
				li.dispLen = 1
			case mod == 2:
				li.dispLen = 2
			}
		default:
			li.mem = memBased
			base := rm
			if rm == 4 {
				if pos >= len(code) {
					return li, lenTruncated
				}
				base = code[pos] & 7
				pos++
			}
			switch {
			case mod == 0 && base == 5:
				li.dispLen = 4
				if rm == 5 && mode == 64 {
					li.mem = memRIP
				} else {
					li.mem = memNoBase
				}
			case mod == 1:
				li.dispLen = 1
			case mod == 2:
				li.dispLen = 4
			}
		}
		if li.dispLen != 0 {
			li.dispOff = uint8(pos)
			pos += int(li.dispLen)
		}
		if attr&aGrp3 != 0 && modrm&0x38 > 0x08 {
			attr &^= immMask // test has an immediate, not/neg/mul/div do not
		}
	}

	// Operand and address sizes for the immediate.
	opsize := 4
	if li.pfx&pfx66 != 0 {
		opsize = 2
	}
	if li.pfx&pfxREXW != 0 {
		opsize = 8
	}
	var imm int
	switch attr & immMask {
	case immB:
		imm = 1
	case immW:
		imm = 2
	case immZ:
		imm = 4
		if opsize == 2 {
			imm = 2
		}
		if attr&aRel != 0 && mode == 64 {
			imm = 4 // near branches ignore 66 in 64-bit mode (Intel); see Decode
		}
	case immV:
		imm = opsize
	case immWB:
		imm = 3
	case immMoffs:
		imm = 4
		if mode == 64 {
			imm = 8
			if li.pfx&pfx67 != 0 {
				imm = 4
			}
		} else if addr16 {
			imm = 2
		}
	case immPtr:
		imm = 6
		if opsize == 2 {
			imm = 4
		}
	case immBB:
		imm = 2
	case immD:
		imm = 4
	}
	if imm != 0 {
		li.immOff = uint8(pos)
		li.immLen = uint8(imm)
		li.immRel = attr&aRel != 0
		if li.enc == encLegacy && li.opMap == 0 && li.op == 0xC7 && li.modrm == 0xF8 {
			li.immRel = true // xbegin rel16/32
		}
		pos += imm
	}
	if pos > 15 {
		return li, lenTooLong
	}
	if pos > len(code) {
		return li, lenTruncated
	}
	li.n = uint8(pos)
	return li, lenOK
}

// disp32 returns the 32-bit displacement recorded in li, sign-extended.
func (li *lenInfo) disp32(code []byte) int64 {
	return int64(int32(binary.LittleEndian.Uint32(code[li.dispOff:])))
}
