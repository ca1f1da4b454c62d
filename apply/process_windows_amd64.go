//go:build windows

package apply

import "encoding/binary"

const (
	is64    = true
	maxAddr = 1 << 47 // user address space
	// x64 CONTEXT: 1232 bytes, 16-byte aligned; ContextFlags at 0x30, Rsp
	// at 0x98, Rip at 0xf8; CONTEXT_AMD64|CONTEXT_CONTROL.
	contextSize    = 1232
	contextFlagsAt = 0x30
	contextControl = 0x100001
)

func instructionPointer(ctx []byte) uint64 { return binary.LittleEndian.Uint64(ctx[0xf8:]) }

func stackPointer(ctx []byte) uint64 { return binary.LittleEndian.Uint64(ctx[0x98:]) }
