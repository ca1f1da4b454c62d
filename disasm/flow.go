package disasm

import "golang.org/x/arch/x86/x86asm"

// opFlow maps an x86asm.Op to its control-flow class when that class does
// not depend on the operands. Ops not listed are FlowNone.
var opFlow = func() []Flow {
	m := map[x86asm.Op]Flow{
		x86asm.JA: FlowCondJump, x86asm.JAE: FlowCondJump, x86asm.JB: FlowCondJump, x86asm.JBE: FlowCondJump,
		x86asm.JE: FlowCondJump, x86asm.JNE: FlowCondJump, x86asm.JG: FlowCondJump, x86asm.JGE: FlowCondJump,
		x86asm.JL: FlowCondJump, x86asm.JLE: FlowCondJump, x86asm.JO: FlowCondJump, x86asm.JNO: FlowCondJump,
		x86asm.JP: FlowCondJump, x86asm.JNP: FlowCondJump, x86asm.JS: FlowCondJump, x86asm.JNS: FlowCondJump,
		x86asm.JCXZ: FlowCondJump, x86asm.JECXZ: FlowCondJump, x86asm.JRCXZ: FlowCondJump,
		x86asm.LOOP: FlowCondJump, x86asm.LOOPE: FlowCondJump, x86asm.LOOPNE: FlowCondJump,
		x86asm.XBEGIN: FlowCondJump,
		x86asm.LJMP:   FlowIndirectJump,
		x86asm.LCALL:  FlowIndirectCall,
		x86asm.RET:    FlowRet, x86asm.LRET: FlowRet,
		x86asm.IRET: FlowRet, x86asm.IRETD: FlowRet, x86asm.IRETQ: FlowRet,
		x86asm.SYSRET: FlowRet, x86asm.SYSEXIT: FlowRet,
		x86asm.HLT: FlowTrap, x86asm.UD0: FlowTrap, x86asm.UD1: FlowTrap, x86asm.UD2: FlowTrap,
		x86asm.SYSCALL: FlowSyscall, x86asm.SYSENTER: FlowSyscall,
	}
	max := x86asm.Op(0)
	for op := range m {
		max = maxOp(max, op)
	}
	t := make([]Flow, max+1)
	for op, f := range m {
		t[op] = f
	}
	return t
}()

func maxOp(a, b x86asm.Op) x86asm.Op {
	if a > b {
		return a
	}
	return b
}

// flowOf classifies a decoded x86asm instruction.
func flowOf(raw *x86asm.Inst) Flow {
	switch raw.Op {
	case x86asm.JMP, x86asm.CALL:
		_, direct := raw.Args[0].(x86asm.Rel)
		switch {
		case raw.Op == x86asm.JMP && direct:
			return FlowJump
		case raw.Op == x86asm.JMP:
			return FlowIndirectJump
		case direct:
			return FlowCall
		}
		return FlowIndirectCall
	case x86asm.INT:
		if imm, ok := raw.Args[0].(x86asm.Imm); ok {
			switch imm {
			case 3, 0x29: // int3, __fastfail
				return FlowTrap
			case 0x2E: // NT system service
				return FlowSyscall
			}
		}
		return FlowNone
	}
	if int(raw.Op) < len(opFlow) {
		return opFlow[raw.Op]
	}
	return FlowNone
}
