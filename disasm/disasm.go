package disasm

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// MaxInstLen is the architectural limit on the length of one instruction.
const MaxInstLen = 15

// Inst is one decoded instruction.
//
// It is compact enough to keep per instruction only when Raw is dropped;
// callers that sweep large images should copy out what they need (Len, Op,
// Flow, the Refs) and let the Inst go.
type Inst struct {
	// Len is the length in bytes, after fix-ups; always 1..15 on success.
	Len int
	// Op is the mnemonic: an x86asm.Op, or one of the synthetic Op*
	// constants of this package for instructions x86asm does not know
	// (see OpENDBR64 and IsSynthetic). Use OpName to print either kind.
	Op x86asm.Op
	// Flow is the control-flow class.
	Flow Flow
	// NRefs is the number of valid entries in Refs.
	NRefs uint8
	// Refs holds the address-bearing fields, in order of offset; only
	// Refs[:NRefs] is meaningful (see RefList). A fixed array rather than
	// a slice keeps Decode free of per-instruction allocations of its own:
	// no instruction has more than two such fields (a displacement and an
	// immediate).
	Refs [2]Ref
	// Raw is the full x86asm decode, for printing, with the fix-ups
	// applied (corrected Len, RIP base and PCRel/PCRelOff on VEX/EVEX
	// RIP-relative operands, segment prefixes in front of VEX). It is the
	// zero value when this package named the instruction itself: the
	// synthetic Op* ops, and the reserved NOPs 0F 18..0F 1F that x86asm
	// does not know (Op x86asm.NOP).
	Raw x86asm.Inst
}

// RefList returns the valid address-bearing fields, Refs[:NRefs].
func (i *Inst) RefList() []Ref { return i.Refs[:i.NRefs] }

// Mnemonic returns the lower-case mnemonic of i, as objdump -M intel
// would mostly print it ("endbr64", "vmovdqu", "jmp").
func (i *Inst) Mnemonic() string { return strings.ToLower(OpName(i.Op)) }

// Text returns i in Intel syntax as x86asm prints it, with branch targets
// relative to pc (the address i was decoded at); synthetic decodes print
// their mnemonic only.
func (i *Inst) Text(pc uint64) string {
	if i.Raw.Op == 0 {
		return i.Mnemonic()
	}
	return x86asm.IntelSyntax(i.Raw, pc, nil)
}

// Flow is the control-flow class of an instruction.
type Flow uint8

// Control-flow classes.
const (
	// FlowNone: an ordinary instruction that falls through.
	FlowNone Flow = iota
	// FlowJump: an unconditional direct jump (jmp rel8/rel32).
	FlowJump
	// FlowCondJump: a conditional direct jump (jcc, jrcxz/jecxz, loop*,
	// xbegin); falls through.
	FlowCondJump
	// FlowCall: a direct call (call rel32); falls through.
	FlowCall
	// FlowIndirectJump: jmp r/m (including jmp [rip+x] thunks and
	// jump-table dispatch) and far jumps.
	FlowIndirectJump
	// FlowIndirectCall: call r/m and far calls; falls through.
	FlowIndirectCall
	// FlowRet: ret, retf, iret and sysret/sysexit.
	FlowRet
	// FlowTrap: an instruction that does not fall through in practice:
	// int3, int 0x29 (__fastfail), ud0/ud1/ud2, hlt.
	FlowTrap
	// FlowSyscall: syscall, sysenter, int 0x2e; falls through.
	FlowSyscall
)

var flowNames = [...]string{"none", "jump", "condjump", "call", "indirectjump", "indirectcall", "ret", "trap", "syscall"}

// String returns a short lower-case name for f.
func (f Flow) String() string {
	if int(f) < len(flowNames) {
		return flowNames[f]
	}
	return fmt.Sprintf("Flow(%d)", uint8(f))
}

// FallsThrough reports whether execution may continue with the next
// instruction after one of class f.
func (f Flow) FallsThrough() bool {
	switch f {
	case FlowJump, FlowIndirectJump, FlowRet, FlowTrap:
		return false
	}
	return true
}

// RefKind says what an address-bearing field is.
type RefKind uint8

// Kinds of address-bearing fields.
const (
	// RefRel8 is the rel8 displacement of a short branch (jmp, jcc,
	// jrcxz, loop).
	RefRel8 RefKind = iota + 1
	// RefRel32 is the rel32 displacement of a near jmp, jcc or xbegin.
	RefRel32
	// RefCall32 is the rel32 displacement of a near call.
	RefCall32
	// RefRIP is the disp32 of a RIP-relative memory operand (64-bit mode),
	// in any encoding: legacy, VEX, EVEX, lea included.
	RefRIP
	// RefDisp32 is a 32-bit absolute displacement in a memory operand:
	// the no-base forms (mod=00 r/m=101 in 32-bit mode, SIB base=101 with
	// mod=00 in either mode) and the moffs32 of mov al/eax <-> [addr].
	// In 32-bit mode the disp32 of based operands ([ecx+0x10003000]) is
	// reported as well, with Ref.Based set, because x86 code indexes
	// absolute tables that way; callers confirm with base relocations.
	RefDisp32
	// RefImm32 is a 32-bit immediate that may be an absolute address
	// (32-bit mode only: push imm32, mov r32/rm32, imm32, cmp, ...).
	RefImm32
	// RefImm64 is a 64-bit absolute value: the imm64 of movabs r64, imm64
	// and the moffs64 of movabs al/eax/rax <-> [addr].
	RefImm64
)

var refKindNames = [...]string{"", "rel8", "rel32", "call32", "rip", "disp32", "imm32", "imm64"}

// String returns the short lower-case name used in testdata/decode.txt
// ("rel8", "rip", "imm64", ...).
func (k RefKind) String() string {
	if k != 0 && int(k) < len(refKindNames) {
		return refKindNames[k]
	}
	return fmt.Sprintf("RefKind(%d)", uint8(k))
}

// Ref is one address-bearing field of an instruction.
type Ref struct {
	// Off is the offset of the field inside the instruction bytes.
	Off uint8
	// Width is the width of the field in bytes: 1, 4 or 8.
	Width uint8
	// Kind says how to interpret the field.
	Kind RefKind
	// Based is set for a RefDisp32 whose memory operand also has a base
	// register (32-bit mode only); it is a weaker candidate than the
	// no-base forms.
	Based bool
	// Target is the absolute target address pc+Len+disp for RefRel8,
	// RefRel32, RefCall32 and RefRIP (truncated to 32 bits in 32-bit mode
	// and under an address-size prefix), and the raw field value,
	// zero-extended, for RefDisp32, RefImm32 and RefImm64.
	Target uint64
}

// String formats r as in testdata/decode.txt: "kind@off/width".
func (r Ref) String() string {
	return fmt.Sprintf("%s@%d/%d", r.Kind, r.Off, r.Width)
}

// DecodeError reports bytes that could not be decoded with confidence.
type DecodeError struct {
	// PC is the address given to Decode.
	PC uint64
	// Bytes holds up to 15 bytes starting at PC.
	Bytes []byte
	// Reason says what went wrong, in lower case.
	Reason string
	// Len is the length the independent length decoder measured when the
	// bytes are well formed but cannot be decoded with confidence (an
	// instruction x86asm does not know, or an encoding whose meaning
	// differs between processors); 0 when unknown. A linear sweep may skip
	// Len bytes instead of one.
	Len int
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("disasm: cannot decode at %#x (% x): %s", e.PC, e.Bytes, e.Reason)
}

// Reasons given in DecodeError.Reason.
const (
	reasonMode        = "invalid mode (want 32 or 64)"
	reasonEmpty       = "no bytes"
	reasonTruncated   = "truncated instruction"
	reasonTooLong     = "instruction longer than 15 bytes"
	reasonInvalid     = "invalid encoding"
	reasonUnknown     = "unrecognized instruction"
	reasonLenMismatch = "length disagreement between x86asm and the length decoder"
	reasonRelMismatch = "branch or RIP displacement offset disagreement between x86asm and the length decoder"
	reasonBranch66    = "operand-size prefix on a near branch (rel16 on AMD, rel32 on Intel)"
	reasonBranch16    = "16-bit branch displacement"
)

func decodeError(code []byte, pc uint64, reason string, n int) *DecodeError {
	if len(code) > MaxInstLen {
		code = code[:MaxInstLen]
	}
	return &DecodeError{PC: pc, Bytes: append([]byte(nil), code...), Reason: reason, Len: n}
}

// Decode decodes the instruction at the start of code, which is located at
// address pc, in the given processor mode (32 or 64).
//
// On success Len is in 1..15 and every Ref lies inside the instruction. On
// failure the error is a *DecodeError and the returned Inst is the zero
// value (Len 0): the caller decides how many bytes to skip (one, or the
// error's Len when it is non-zero).
func Decode(code []byte, pc uint64, mode int) (inst Inst, err error) {
	if e := decode(&inst, code, pc, mode); e != nil {
		return Inst{}, e
	}
	return inst, nil
}

// decode is Decode, filling in *inst (which must be the zero value); on
// error *inst is left in an unspecified state.
func decode(inst *Inst, code []byte, pc uint64, mode int) error {
	if mode != 32 && mode != 64 {
		return decodeError(code, pc, reasonMode, 0)
	}
	if len(code) == 0 {
		return decodeError(code, pc, reasonEmpty, 0)
	}
	if len(code) > MaxInstLen {
		code = code[:MaxInstLen]
	}
	li, st := decodeLength(code, mode)
	switch st {
	case lenTruncated:
		return decodeError(code, pc, reasonTruncated, 0)
	case lenTooLong:
		return decodeError(code, pc, reasonTooLong, 0)
	case lenInvalid:
		return decodeError(code, pc, reasonInvalid, 0)
	}
	n := int(li.n)

	if li.enc == encLegacy {
		if op := lookupExtra(&li); op != 0 {
			return inst.synthetic(op, &li, code, pc, mode)
		}
	}
	var err error
	raw := &inst.Raw
	*raw, err = x86asm.Decode(code, mode)
	switch {
	case err == nil && raw.Op != 0:
		// The common case.
	case hintNOP(&li):
		// Reserved NOPs (0F 18..1F forms x86asm does not know).
		*raw = x86asm.Inst{}
		return inst.synthetic(x86asm.NOP, &li, code, pc, mode)
	case li.enc != encLegacy && li.npfx > 0 && li.pfx&^pfxSeg == 0:
		// Segment override in front of VEX/EVEX: x86asm only accepts
		// VEX/EVEX as the first byte. Decode without the prefixes, then
		// put them back.
		*raw, err = x86asm.Decode(code[li.npfx:], mode)
		if err != nil || raw.Op == 0 {
			return decodeError(code, pc, reasonUnknown, n)
		}
		addSegmentPrefixes(raw, code[:li.npfx], mode)
	default:
		// x86asm failed or consumed only a prefix byte: never trust a
		// prefix-only decode.
		return decodeError(code, pc, reasonUnknown, n)
	}

	if raw.Len != n {
		// vzeroupper/vzeroall (VEX 0F 77) have no ModRM, but x86asm
		// consumes one (and whatever displacement it implies).
		if !(li.enc == encVEX2 || li.enc == encVEX3) || li.opMap != 1 || li.op != 0x77 {
			return decodeError(code, pc, reasonLenMismatch, 0)
		}
		raw.Len = n
	}
	if li.immRel && li.pfx&pfx66 != 0 {
		if mode == 64 {
			return decodeError(code, pc, reasonBranch66, 0)
		}
		return decodeError(code, pc, reasonBranch16, n)
	}
	if raw.PCRel != 0 {
		var off uint8
		if li.immRel {
			off = li.immOff
		} else if li.mem == memRIP {
			off = li.dispOff
		}
		if raw.PCRelOff != int(off) {
			return decodeError(code, pc, reasonRelMismatch, 0)
		}
	} else if li.mem == memRIP && li.enc != encLegacy {
		// x86asm leaves VEX/EVEX RIP-relative operands as absolute [disp].
		fixVEXRIP(raw, &li)
	}

	inst.Len = n
	inst.Op = raw.Op
	inst.Flow = flowOf(raw)
	if !inst.addRefs(&li, code, pc, mode) {
		return decodeError(code, pc, reasonBranch16, n)
	}
	return nil
}

// synthetic completes a decode named by this package rather than x86asm.
func (i *Inst) synthetic(op x86asm.Op, li *lenInfo, code []byte, pc uint64, mode int) error {
	i.Op = op
	i.Len = int(li.n)
	if !i.addRefs(li, code, pc, mode) {
		return decodeError(code, pc, reasonBranch16, int(li.n))
	}
	return nil
}

// addRefs fills in the address-bearing fields from the length decoder's
// view of the instruction. It reports false for a branch displacement that
// is neither 8 nor 32 bits wide.
func (i *Inst) addRefs(li *lenInfo, code []byte, pc uint64, mode int) bool {
	end := pc + uint64(li.n)
	mask := ^uint64(0)
	if mode == 32 {
		mask = 0xFFFFFFFF
	}
	if li.dispLen == 4 {
		switch li.mem {
		case memRIP:
			m := mask
			if li.pfx&pfx67 != 0 {
				m = 0xFFFFFFFF
			}
			i.push(Ref{Off: li.dispOff, Width: 4, Kind: RefRIP, Target: uint64(int64(end)+li.disp32(code)) & m})
		case memNoBase:
			i.push(Ref{Off: li.dispOff, Width: 4, Kind: RefDisp32, Target: uint64(binary.LittleEndian.Uint32(code[li.dispOff:]))})
		case memBased:
			if mode == 32 {
				i.push(Ref{Off: li.dispOff, Width: 4, Kind: RefDisp32, Based: true, Target: uint64(binary.LittleEndian.Uint32(code[li.dispOff:]))})
			}
		}
	}
	if li.immLen == 0 {
		return true
	}
	imm := code[li.immOff:]
	switch {
	case li.immRel:
		var d int64
		kind := RefRel8
		switch li.immLen {
		case 1:
			d = int64(int8(imm[0]))
		case 4:
			d = int64(int32(binary.LittleEndian.Uint32(imm)))
			kind = RefRel32
			if li.enc == encLegacy && li.opMap == 0 && li.op == 0xE8 {
				kind = RefCall32
			}
		default:
			return false
		}
		i.push(Ref{Off: li.immOff, Width: li.immLen, Kind: kind, Target: uint64(int64(end)+d) & mask})
	case li.enc != encLegacy || li.opMap != 0:
		// Immediates outside the one-byte map are never addresses
		// (imm8 selectors, the 3DNow! suffix, XOP imm32).
	case li.immLen == 4 && mode == 32:
		if li.op >= 0xA0 && li.op <= 0xA3 {
			i.push(Ref{Off: li.immOff, Width: 4, Kind: RefDisp32, Target: uint64(binary.LittleEndian.Uint32(imm))})
		} else if li.op == 0x9A || li.op == 0xEA {
			// far pointer (66-prefixed: 16-bit offset, 16-bit segment)
		} else {
			i.push(Ref{Off: li.immOff, Width: 4, Kind: RefImm32, Target: uint64(binary.LittleEndian.Uint32(imm))})
		}
	case li.immLen == 4 && mode == 64 && li.op >= 0xA0 && li.op <= 0xA3:
		// moffs32 under an address-size prefix
		i.push(Ref{Off: li.immOff, Width: 4, Kind: RefDisp32, Target: uint64(binary.LittleEndian.Uint32(imm))})
	case li.immLen == 8:
		i.push(Ref{Off: li.immOff, Width: 8, Kind: RefImm64, Target: binary.LittleEndian.Uint64(imm)})
	}
	return true
}

func (i *Inst) push(r Ref) {
	i.Refs[i.NRefs] = r
	i.NRefs++
}

// fixVEXRIP turns x86asm's absolute [disp] for a VEX/EVEX mod=00 r/m=101
// operand into [rip+disp] and records the PC-relative field.
func fixVEXRIP(raw *x86asm.Inst, li *lenInfo) {
	for k, a := range raw.Args {
		if m, ok := a.(x86asm.Mem); ok && m.Base == 0 && m.Index == 0 {
			m.Base = x86asm.RIP
			raw.Args[k] = m
		}
	}
	raw.PCRel = 4
	raw.PCRelOff = int(li.dispOff)
}

// addSegmentPrefixes re-inserts the segment override prefixes pfx that
// were stripped before a VEX/EVEX instruction.
func addSegmentPrefixes(raw *x86asm.Inst, pfx []byte, mode int) {
	np := len(pfx)
	raw.Len += np
	if raw.PCRel != 0 {
		raw.PCRelOff += np
	}
	var seg x86asm.Reg
	switch pfx[np-1] {
	case 0x26:
		seg = x86asm.ES
	case 0x2E:
		seg = x86asm.CS
	case 0x36:
		seg = x86asm.SS
	case 0x3E:
		seg = x86asm.DS
	case 0x64:
		seg = x86asm.FS
	case 0x65:
		seg = x86asm.GS
	}
	if mode == 64 && seg != x86asm.FS && seg != x86asm.GS {
		seg = 0 // ignored in 64-bit mode
	}
	var p x86asm.Prefixes
	for k := range np {
		p[k] = x86asm.Prefix(pfx[k])
		if k < np-1 || seg == 0 {
			p[k] |= x86asm.PrefixIgnored
		}
	}
	used := false
	for k, a := range raw.Args {
		if m, ok := a.(x86asm.Mem); ok && seg != 0 {
			m.Segment = seg
			raw.Args[k] = m
			used = true
		}
	}
	if used {
		p[np-1] |= x86asm.PrefixImplicit
	}
	copy(p[np:], raw.Prefix[:len(p)-np])
	raw.Prefix = p
}
