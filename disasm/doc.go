// Package disasm decodes x86 and x86-64 machine code for hpbuild. It is a
// thin layer over golang.org/x/arch/x86/x86asm that is safe on any input
// and says where the address-bearing fields of each instruction are.
//
// Decode returns an Inst: its length, its mnemonic (an x86asm.Op, or one
// of this package's synthetic Op* constants for instructions x86asm does
// not know), its control-flow class (Flow) and up to two Refs: the branch
// displacements, RIP-relative displacements, absolute displacements and
// immediates that a relink rewrites. The differ resolves each Ref to what
// it points at (a function, an import slot, a data object) so that two
// builds are compared by meaning rather than by address.
//
//	for off := 0; off < len(code); {
//		inst, err := disasm.Decode(code[off:], base+uint64(off), 64)
//		if err != nil {
//			// not code, or code we cannot decode with confidence
//			off += max(1, err.(*disasm.DecodeError).Len)
//			continue
//		}
//		for _, r := range inst.RefList() { ... }
//		off += inst.Len
//	}
//
// # Fix-ups over x86asm
//
// Every instruction is measured twice: by x86asm and by a small,
// table-driven length decoder of our own (length.go) that walks legacy
// prefixes, REX, VEX2/VEX3/EVEX/XOP, the opcode maps, ModRM, SIB,
// displacement and immediate and records where each field sits. The two
// must agree; where x86asm v0.33.0 is known to be wrong, Decode corrects
// it:
//
//   - vzeroupper/vzeroall (VEX 0F 77) have no ModRM byte, but x86asm
//     reads one, swallowing the next instruction (often the ret): the
//     length is fixed to that of the length decoder.
//   - endbr64/endbr32 and the other CET instructions, adcx/adox, the
//     legacy GFNI instructions, rdpid, rdseed, serialize and a few more come
//     back from x86asm as a one-byte "prefix" decode with no error; several
//     others (wbnoinvd, clwb, clflushopt, ptwrite, vmptrld, ...) come back
//     as a different instruction because x86asm ignores their mandatory
//     prefix. A small exact table (extra.go) names them with synthetic ops
//     (OpENDBR64, OpADCX, ...); any other prefix-only decode is refused.
//   - x86asm leaves PCRel unset for VEX/EVEX RIP-relative operands and
//     prints them as absolute addresses: Decode reports them as RefRIP at
//     the displacement offset found by the length decoder (which also
//     knows where a trailing imm8 sits) and rewrites Inst.Raw with a RIP
//     base and PCRel/PCRelOff.
//   - x86asm accepts VEX/EVEX only as the first byte; a segment override
//     in front of one (gs: vmovdqu ...) is decoded without it and put back.
//   - Some x86asm errors carry length 0, and truncated input comes back as
//     a prefix-only decode without an error: Decode never returns Len 0
//     with a nil error.
//   - A near branch with an operand-size prefix in 64-bit mode is rel32 on
//     Intel and rel16 on AMD (objdump follows AMD, x86asm Intel); such
//     bytes and 16-bit branches are refused rather than guessed.
//
// Decode treats fwait (9B) as the separate one-byte instruction the
// processor executes; objdump prints "fwait; fnstsw" as one fstsw. Like
// x86asm, Decode accepts a few encodings that a processor would reject
// (a mandatory prefix the instruction does not have, some invalid VEX.vvvv
// values); their length is still right.
//
// # Checked against an oracle
//
// testdata/decode.txt is a regression table of the traps above and of the
// forms the differ depends on; TestDecodeTableAgainstObjdump checks the
// table itself against x86_64-w64-mingw32-objdump. TestOpcodeSweepAgainstObjdump
// walks the legacy, 0F, 0F 38, 0F 3A and VEX opcode maps (and EVEX with
// DISASM_SWEEP=full) under common prefixes and ModRM forms, and
// TestRealCodeAgainstObjdump compares every instruction of the fixture
// DLLs (and of any PE files listed in DISASM_PE_FILES) with objdump's
// listing, including branch and RIP-relative targets. Decode may refuse
// what objdump decodes; it must never decode with a different length.
//
// # Security
//
// Decode is meant for untrusted bytes (any section of any PE file): it
// never panics (FuzzDecode), never reads past the end of code nor beyond
// 15 bytes, and allocates only for its error values. On success Len is in
// 1..15 and every Ref lies inside the instruction, so a linear sweep always
// advances; on failure it returns a *DecodeError and a zero Inst, never a
// zero-length success, and DecodeError.Len (the length the length decoder
// measured, when the bytes are well formed) is at most 15. A decode does
// not depend on the bytes after the instruction. Anything that cannot be
// decoded with confidence (a length disagreement between the two
// decoders, a prefix-only decode, an encoding whose meaning differs
// between processors) is an error rather than a guess, so that callers
// can report RR-UNDECODABLE instead of a wrong verdict. Decode keeps no
// mutable state and is safe for concurrent use.
//
// # Performance
//
// Decode runs x86asm once per instruction and adds the length decoder, a
// table lookup and the Ref extraction (about a quarter on top of a bare
// x86asm.Decode; see BenchmarkDecode and BenchmarkDecodeBareX86asm). Inst
// keeps its Refs in a fixed two-element array (Refs, NRefs) rather than a
// slice so that Decode itself allocates nothing per instruction; x86asm
// still allocates for the operands it boxes into interfaces. Callers that
// sweep large images should keep what they need from each Inst (Len, Op,
// Flow, the Refs) and drop Raw.
package disasm
