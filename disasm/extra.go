package disasm

import "golang.org/x/arch/x86/x86asm"

// This file holds the small table of legacy-encoded instructions that
// x86asm v0.33.0 does not decode (it returns a one-byte "prefix" decode or
// an error for them) or decodes as a different instruction because it
// ignores their mandatory prefix (wbnoinvd as wbinvd, clwb as xsaveopt,
// vmptrld as rdrand, ...). Decode consults it before x86asm; entries are
// exact (prefix, map, opcode, ModRM constraints) so that they never shadow
// an instruction x86asm decodes correctly. Lengths come from the length
// decoder; this table only names the instructions.

// opExtraBase is the first synthetic Op value. x86asm numbers its ops
// densely from 1 (about 2,000 of them), so these cannot collide.
const opExtraBase x86asm.Op = 0x10000

// Synthetic ops, for instructions that x86asm does not decode. Decode
// returns them in Inst.Op with a zero Inst.Raw; OpName prints them.
const (
	OpENDBR64          x86asm.Op = opExtraBase + iota // F3 0F 1E FA
	OpENDBR32                                         // F3 0F 1E FB
	OpRDSSPD                                          // F3 0F 1E /1 (register)
	OpRDSSPQ                                          // F3 REX.W 0F 1E /1 (register)
	OpINCSSPD                                         // F3 0F AE /5 (register)
	OpINCSSPQ                                         // F3 REX.W 0F AE /5 (register)
	OpSAVEPREVSSP                                     // F3 0F 01 EA
	OpRSTORSSP                                        // F3 0F 01 /5 (memory)
	OpSETSSBSY                                        // F3 0F 01 E8
	OpCLRSSBSY                                        // F3 0F AE /6 (memory)
	OpWRSSD                                           // 0F 38 F6 (memory)
	OpWRSSQ                                           // REX.W 0F 38 F6 (memory)
	OpWRUSSD                                          // 66 0F 38 F5 (memory)
	OpWRUSSQ                                          // 66 REX.W 0F 38 F5 (memory)
	OpADCX                                            // 66 0F 38 F6
	OpADOX                                            // F3 0F 38 F6
	OpGF2P8AFFINEQB                                   // 66 0F 3A CE ib
	OpGF2P8AFFINEINVQB                                // 66 0F 3A CF ib
	OpGF2P8MULB                                       // 66 0F 38 CF
	OpRDPID                                           // F3 0F C7 /7 (register)
	OpRDSEED                                          // 0F C7 /7 (register)
	OpSERIALIZE                                       // 0F 01 E8
	OpXSUSLDTRK                                       // F2 0F 01 E8
	OpXRESLDTRK                                       // F2 0F 01 E9
	OpCLWB                                            // 66 0F AE /6 (memory)
	OpCLFLUSHOPT                                      // 66 0F AE /7 (memory)
	OpPTWRITE                                         // F3 0F AE /4
	OpUMONITOR                                        // F3 0F AE /6 (register)
	OpUMWAIT                                          // F2 0F AE /6 (register)
	OpTPAUSE                                          // 66 0F AE /6 (register)
	OpWBNOINVD                                        // F3 0F 09
	OpMOVDIRI                                         // 0F 38 F9 (memory)
	OpMOVDIR64B                                       // 66 0F 38 F8 (memory)
	OpCLZERO                                          // 0F 01 FC
	OpMONITORX                                        // 0F 01 FA
	OpMWAITX                                          // 0F 01 FB
	OpRDPRU                                           // 0F 01 FD
	OpSENDUIPI                                        // F3 0F C7 /6 (register)
	OpVMPTRLD                                         // 0F C7 /6 (memory)
	OpVMCLEAR                                         // 66 0F C7 /6 (memory)
	OpVMXON                                           // F3 0F C7 /6 (memory)
	OpVMPTRST                                         // 0F C7 /7 (memory)
	OpPREFETCH                                        // 0F 0D /0, /3../7 (memory)
	OpPREFETCHWT1                                     // 0F 0D /2 (memory)
	OpCLDEMOTE                                        // 0F 1C /0 (memory)
	opExtraEnd
)

var extraNames = [...]string{
	"ENDBR64", "ENDBR32", "RDSSPD", "RDSSPQ", "INCSSPD", "INCSSPQ", "SAVEPREVSSP", "RSTORSSP",
	"SETSSBSY", "CLRSSBSY", "WRSSD", "WRSSQ", "WRUSSD", "WRUSSQ", "ADCX", "ADOX",
	"GF2P8AFFINEQB", "GF2P8AFFINEINVQB", "GF2P8MULB", "RDPID", "RDSEED", "SERIALIZE",
	"XSUSLDTRK", "XRESLDTRK", "CLWB", "CLFLUSHOPT", "PTWRITE", "UMONITOR", "UMWAIT", "TPAUSE",
	"WBNOINVD", "MOVDIRI", "MOVDIR64B", "CLZERO", "MONITORX", "MWAITX", "RDPRU",
	"SENDUIPI", "VMPTRLD", "VMCLEAR", "VMXON", "VMPTRST", "PREFETCH", "PREFETCHWT1", "CLDEMOTE",
}

// IsSynthetic reports whether op is one of this package's Op* constants
// rather than an x86asm op.
func IsSynthetic(op x86asm.Op) bool { return op >= opExtraBase && op < opExtraEnd }

// OpName returns the upper-case name of op, for x86asm ops and for this
// package's synthetic ops alike.
func OpName(op x86asm.Op) string {
	if IsSynthetic(op) {
		return extraNames[op-opExtraBase]
	}
	return op.String()
}

// ModRM constraints of an extra entry.
const (
	mAny = iota // any ModRM
	mMem        // memory forms only
	mReg        // register forms only
)

// extraInst describes one instruction of the extra table.
type extraInst struct {
	pfx   byte  // mandatory prefix (the last of 66/F2/F3), 0 for none
	opMap uint8 // 1: 0F, 2: 0F 38, 3: 0F 3A
	op    byte
	reg   int8  // ModRM.reg, -1 for any
	mod   uint8 // mAny, mMem or mReg
	rm    int8  // ModRM.rm for register forms, -1 for any
	name  x86asm.Op
	nameW x86asm.Op // name when REX.W is set, 0 if the same
}

var extraTable = []extraInst{
	{0xF3, 1, 0x1E, 7, mReg, 2, OpENDBR64, 0},
	{0xF3, 1, 0x1E, 7, mReg, 3, OpENDBR32, 0},
	{0xF3, 1, 0x1E, 1, mReg, -1, OpRDSSPD, OpRDSSPQ},
	{0xF3, 1, 0xAE, 5, mReg, -1, OpINCSSPD, OpINCSSPQ},
	{0xF3, 1, 0x01, 5, mReg, 2, OpSAVEPREVSSP, 0},
	{0xF3, 1, 0x01, 5, mMem, -1, OpRSTORSSP, 0},
	{0xF3, 1, 0x01, 5, mReg, 0, OpSETSSBSY, 0},
	{0xF3, 1, 0xAE, 6, mMem, -1, OpCLRSSBSY, 0},
	{0x00, 2, 0xF6, -1, mMem, -1, OpWRSSD, OpWRSSQ},
	{0x66, 2, 0xF5, -1, mMem, -1, OpWRUSSD, OpWRUSSQ},
	{0x66, 2, 0xF6, -1, mAny, -1, OpADCX, 0},
	{0xF3, 2, 0xF6, -1, mAny, -1, OpADOX, 0},
	{0x66, 3, 0xCE, -1, mAny, -1, OpGF2P8AFFINEQB, 0},
	{0x66, 3, 0xCF, -1, mAny, -1, OpGF2P8AFFINEINVQB, 0},
	{0x66, 2, 0xCF, -1, mAny, -1, OpGF2P8MULB, 0},
	{0xF3, 1, 0xC7, 7, mReg, -1, OpRDPID, 0},
	{0x00, 1, 0xC7, 7, mReg, -1, OpRDSEED, 0},
	{0x66, 1, 0xC7, 7, mReg, -1, OpRDSEED, 0},
	{0x00, 1, 0x01, 5, mReg, 0, OpSERIALIZE, 0},
	{0xF2, 1, 0x01, 5, mReg, 0, OpXSUSLDTRK, 0},
	{0xF2, 1, 0x01, 5, mReg, 1, OpXRESLDTRK, 0},
	{0x66, 1, 0xAE, 6, mMem, -1, OpCLWB, 0},
	{0x66, 1, 0xAE, 7, mMem, -1, OpCLFLUSHOPT, 0},
	{0xF3, 1, 0xAE, 4, mAny, -1, OpPTWRITE, 0},
	{0xF3, 1, 0xAE, 6, mReg, -1, OpUMONITOR, 0},
	{0xF2, 1, 0xAE, 6, mReg, -1, OpUMWAIT, 0},
	{0x66, 1, 0xAE, 6, mReg, -1, OpTPAUSE, 0},
	{0xF3, 1, 0x09, -1, mAny, -1, OpWBNOINVD, 0},
	{0x00, 2, 0xF9, -1, mMem, -1, OpMOVDIRI, 0},
	{0x66, 2, 0xF8, -1, mMem, -1, OpMOVDIR64B, 0},
	{0x00, 1, 0x01, 7, mReg, 4, OpCLZERO, 0},
	{0x00, 1, 0x01, 7, mReg, 2, OpMONITORX, 0},
	{0x00, 1, 0x01, 7, mReg, 3, OpMWAITX, 0},
	{0x00, 1, 0x01, 7, mReg, 5, OpRDPRU, 0},
	{0xF3, 1, 0xC7, 6, mReg, -1, OpSENDUIPI, 0},
	{0x00, 1, 0xC7, 6, mMem, -1, OpVMPTRLD, 0},
	{0x66, 1, 0xC7, 6, mMem, -1, OpVMCLEAR, 0},
	{0xF3, 1, 0xC7, 6, mMem, -1, OpVMXON, 0},
	{0x00, 1, 0xC7, 7, mMem, -1, OpVMPTRST, 0},
	{0x00, 1, 0x0D, 0, mMem, -1, OpPREFETCH, 0},
	{0x00, 1, 0x0D, 2, mMem, -1, OpPREFETCHWT1, 0},
	{0x00, 1, 0x0D, 3, mMem, -1, OpPREFETCH, 0},
	{0x00, 1, 0x0D, 4, mMem, -1, OpPREFETCH, 0},
	{0x00, 1, 0x0D, 5, mMem, -1, OpPREFETCH, 0},
	{0x00, 1, 0x0D, 6, mMem, -1, OpPREFETCH, 0},
	{0x00, 1, 0x0D, 7, mMem, -1, OpPREFETCH, 0},
	{0x00, 1, 0x1C, 0, mMem, -1, OpCLDEMOTE, 0},
}

// extraIndex[map][op] is set when extraTable has an entry for that opcode.
var extraIndex = func() (t [4][256]bool) {
	for _, e := range extraTable {
		t[e.opMap][e.op] = true
	}
	return t
}()

// lookupExtra returns the synthetic op for the legacy-encoded instruction
// li describes, or 0.
func lookupExtra(li *lenInfo) x86asm.Op {
	if li.opMap == 0 || li.opMap > 3 || !extraIndex[li.opMap][li.op] {
		return 0
	}
	reg := int8(li.modrm>>3) & 7
	rm := int8(li.modrm & 7)
	isReg := li.modrm>>6 == 3
	for k := range extraTable {
		e := &extraTable[k]
		if e.opMap != li.opMap || e.op != li.op || e.pfx != li.last {
			continue
		}
		if !li.hasModRM {
			if e.reg >= 0 || e.mod != mAny {
				continue
			}
			return e.name
		}
		if e.reg >= 0 && e.reg != reg {
			continue
		}
		switch e.mod {
		case mMem:
			if isReg {
				continue
			}
		case mReg:
			if !isReg || (e.rm >= 0 && e.rm != rm) {
				continue
			}
		}
		if e.nameW != 0 && li.pfx&pfxREXW != 0 {
			return e.nameW
		}
		return e.name
	}
	return 0
}

// hintNOP reports whether li is one of the reserved-NOP opcodes 0F 18..0F 1F
// (other than the MPX 0F 1A/1B), which x86asm decodes only in part; Decode
// calls it after x86asm has failed and names such instructions NOP.
func hintNOP(li *lenInfo) bool {
	return li.enc == encLegacy && li.opMap == 1 && li.op >= 0x18 && li.op <= 0x1F && li.op != 0x1A && li.op != 0x1B
}
