//go:build windows

package apply

import "encoding/binary"

const (
	is64    = false
	maxAddr = 0xffff0000 // user address space (large-address-aware under WOW64)
	// x86 CONTEXT: 716 bytes; ContextFlags at 0, Eip at 0xb8, Esp at 0xc4;
	// CONTEXT_i386|CONTEXT_CONTROL.
	contextSize    = 716
	contextFlagsAt = 0
	contextControl = 0x10001
)

func instructionPointer(ctx []byte) uint64 { return uint64(binary.LittleEndian.Uint32(ctx[0xb8:])) }

func stackPointer(ctx []byte) uint64 { return uint64(binary.LittleEndian.Uint32(ctx[0xc4:])) }
