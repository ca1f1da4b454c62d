package pe

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// RuntimeFunction is one x64 .pdata RUNTIME_FUNCTION entry, with the root of
// its unwind chain resolved.
type RuntimeFunction struct {
	BeginAddress uint32
	EndAddress   uint32
	UnwindData   uint32 // RVA of UNWIND_INFO (low bit clear)
	// Parent is the BeginAddress of the primary function when this entry
	// is a chained fragment (UNW_FLAG_CHAININFO), or 0 for a primary entry.
	Parent uint32
}

// UNWIND_INFO flags.
const (
	UNW_FLAG_EHANDLER  = 0x1
	UNW_FLAG_UHANDLER  = 0x2
	UNW_FLAG_CHAININFO = 0x4
)

// UnwindInfo is a decoded x64 UNWIND_INFO structure.
type UnwindInfo struct {
	Version       uint8
	Flags         uint8
	SizeOfProlog  uint8
	FrameRegister uint8  // 0 = none, else register number (RBP = 5)
	FrameOffset   uint32 // scaled: offset from RSP to the frame pointer, in bytes (multiple of 16)
	Codes         []UnwindCode
	Handler       uint32 // exception/termination handler RVA when Flags has EHANDLER/UHANDLER
	HandlerData   uint32 // RVA of the language-specific handler data
	Chained       *RuntimeFunction
	Size          int // bytes occupied by the structure up to the handler data
}

// UnwindCode is one decoded unwind operation (which may occupy several
// UNWIND_CODE slots).
type UnwindCode struct {
	CodeOffset uint8
	Op         uint8
	OpInfo     uint8
	Value      uint32 // scaled operand: allocation size, save offset, ...
}

// Unwind operations.
const (
	UWOP_PUSH_NONVOL     = 0
	UWOP_ALLOC_LARGE     = 1
	UWOP_ALLOC_SMALL     = 2
	UWOP_SET_FPREG       = 3
	UWOP_SAVE_NONVOL     = 4
	UWOP_SAVE_NONVOL_FAR = 5
	UWOP_EPILOG          = 6 // version 2; UWOP_SAVE_XMM in version 1
	UWOP_SPARE_CODE      = 7 // UWOP_SAVE_XMM_FAR in version 1
	UWOP_SAVE_XMM128     = 8
	UWOP_SAVE_XMM128_FAR = 9
	UWOP_PUSH_MACHFRAME  = 10
)

const maxChainDepth = 32

// ParseUnwindInfo decodes the UNWIND_INFO at rva.
func (f *File) ParseUnwindInfo(rva uint32) (*UnwindInfo, error) {
	hdr := f.Bytes(rva, 4)
	if len(hdr) < 4 {
		return nil, formatErr(-1, fmt.Sprintf("UNWIND_INFO at RVA %#x is not in the file", rva), nil)
	}
	u := &UnwindInfo{
		Version:       hdr[0] & 7,
		Flags:         hdr[0] >> 3,
		SizeOfProlog:  hdr[1],
		FrameRegister: hdr[3] & 0xf,
		FrameOffset:   uint32(hdr[3]>>4) * 16,
	}
	if u.Version != 1 && u.Version != 2 {
		return nil, formatErr(-1, fmt.Sprintf("UNWIND_INFO at RVA %#x has unknown version %d", rva, u.Version), nil)
	}
	count := int(hdr[2])
	slots := count
	if slots%2 == 1 {
		slots++
	}
	need := 4 + 2*slots
	if u.Flags&(UNW_FLAG_CHAININFO|UNW_FLAG_EHANDLER|UNW_FLAG_UHANDLER) != 0 {
		if u.Flags&UNW_FLAG_CHAININFO != 0 {
			need += 12
		} else {
			need += 4
		}
	}
	b := f.Bytes(rva, need)
	if len(b) < need {
		return nil, formatErr(-1, fmt.Sprintf("UNWIND_INFO at RVA %#x is truncated", rva), nil)
	}
	codes := b[4 : 4+2*count]
	for i := 0; i < count; {
		c := UnwindCode{CodeOffset: codes[2*i], Op: codes[2*i+1] & 0xf, OpInfo: codes[2*i+1] >> 4}
		n := 1
		slot := func(k int) uint32 {
			if i+k >= count {
				return 0
			}
			return uint32(binary.LittleEndian.Uint16(codes[2*(i+k):]))
		}
		switch c.Op {
		case UWOP_PUSH_NONVOL, UWOP_SET_FPREG, UWOP_PUSH_MACHFRAME:
		case UWOP_ALLOC_SMALL:
			c.Value = uint32(c.OpInfo)*8 + 8
		case UWOP_ALLOC_LARGE:
			if c.OpInfo == 0 {
				n = 2
				c.Value = slot(1) * 8
			} else {
				n = 3
				c.Value = slot(1) | slot(2)<<16
			}
		case UWOP_SAVE_NONVOL:
			n = 2
			c.Value = slot(1) * 8
		case UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128_FAR:
			n = 3
			c.Value = slot(1) | slot(2)<<16
		case UWOP_SAVE_XMM128:
			n = 2
			c.Value = slot(1) * 16
		case UWOP_EPILOG, UWOP_SPARE_CODE:
			n = 2
			if c.Op == UWOP_SPARE_CODE {
				n = 3
			}
			c.Value = slot(1)
		default:
			return nil, formatErr(-1, fmt.Sprintf("UNWIND_INFO at RVA %#x has unknown unwind operation %d", rva, c.Op), nil)
		}
		if i+n > count {
			return nil, formatErr(-1, fmt.Sprintf("UNWIND_INFO at RVA %#x: unwind operation %d runs past CountOfCodes", rva, c.Op), nil)
		}
		u.Codes = append(u.Codes, c)
		i += n
	}
	tail := b[4+2*slots:]
	switch {
	case u.Flags&UNW_FLAG_CHAININFO != 0:
		u.Chained = &RuntimeFunction{
			BeginAddress: binary.LittleEndian.Uint32(tail[0:]),
			EndAddress:   binary.LittleEndian.Uint32(tail[4:]),
			UnwindData:   binary.LittleEndian.Uint32(tail[8:]),
		}
		u.Size = need
	case u.Flags&(UNW_FLAG_EHANDLER|UNW_FLAG_UHANDLER) != 0:
		u.Handler = binary.LittleEndian.Uint32(tail[0:])
		u.HandlerData = rva + uint32(need)
		u.Size = need
	default:
		u.Size = need
	}
	return u, nil
}

// parsePdata reads the x64 exception directory, sorts it and resolves
// every chained fragment to its primary function.
func (f *File) parsePdata() {
	if !f.Is64 {
		return
	}
	dir := f.Directories[IMAGE_DIRECTORY_ENTRY_EXCEPTION]
	if dir.VirtualAddress == 0 || dir.Size < 12 {
		return
	}
	b := f.Bytes(dir.VirtualAddress, int(dir.Size))
	if len(b) < int(dir.Size) {
		f.warnf("exception directory truncated: %d of %d bytes in the file", len(b), dir.Size)
	}
	n := len(b) / 12
	rfs := make([]RuntimeFunction, 0, n)
	bad := 0
	for i := 0; i < n; i++ {
		e := b[i*12:]
		rf := RuntimeFunction{
			BeginAddress: binary.LittleEndian.Uint32(e[0:]),
			EndAddress:   binary.LittleEndian.Uint32(e[4:]),
			UnwindData:   binary.LittleEndian.Uint32(e[8:]),
		}
		if rf.BeginAddress == 0 && rf.EndAddress == 0 {
			continue // padding
		}
		if rf.BeginAddress >= rf.EndAddress || !f.IsCode(rf.BeginAddress) || !f.IsCode(rf.EndAddress-1) {
			bad++
			continue
		}
		rfs = append(rfs, rf)
	}
	if bad > 0 {
		f.warnf(".pdata: %d RUNTIME_FUNCTION entries outside code or empty; ignored", bad)
	}
	sort.Slice(rfs, func(i, j int) bool { return rfs[i].BeginAddress < rfs[j].BeginAddress })
	// Drop exact duplicates.
	out := rfs[:0]
	for i, rf := range rfs {
		if i > 0 && rf.BeginAddress == rfs[i-1].BeginAddress {
			continue
		}
		out = append(out, rf)
	}
	rfs = out
	byBegin := make(map[uint32]int, len(rfs))
	for i, rf := range rfs {
		byBegin[rf.BeginAddress] = i
	}
	// byEntryRVA maps the RVA of a .pdata entry to its begin address, for
	// the indirect form (UnwindData with the low bit set).
	entryBegin := func(rva uint32) (uint32, bool) {
		e := f.Bytes(rva, 4)
		if len(e) < 4 {
			return 0, false
		}
		return binary.LittleEndian.Uint32(e), true
	}
	chainErrs := 0
	for i := range rfs {
		rf := &rfs[i]
		if rf.UnwindData&1 != 0 {
			if pb, ok := entryBegin(rf.UnwindData &^ 1); ok && pb != rf.BeginAddress {
				rf.Parent = pb
			}
			rf.UnwindData &^= 1
			continue
		}
		cur := rf.UnwindData
		var root uint32
		for depth := 0; depth < maxChainDepth; depth++ {
			u, err := f.ParseUnwindInfo(cur)
			if err != nil {
				chainErrs++
				break
			}
			if u.Chained == nil {
				break
			}
			root = u.Chained.BeginAddress
			cur = u.Chained.UnwindData &^ 1
		}
		if root != 0 && root != rf.BeginAddress {
			rf.Parent = root
		}
	}
	// Re-root parents that are themselves fragments.
	for i := range rfs {
		p := rfs[i].Parent
		for depth := 0; p != 0 && depth < maxChainDepth; depth++ {
			j, ok := byBegin[p]
			if !ok || rfs[j].Parent == 0 || rfs[j].Parent == p {
				break
			}
			p = rfs[j].Parent
		}
		if p == rfs[i].BeginAddress {
			p = 0
		}
		rfs[i].Parent = p
	}
	if chainErrs > 0 {
		f.warnf(".pdata: %d UNWIND_INFO records could not be decoded", chainErrs)
	}
	f.Unwind = rfs
}
