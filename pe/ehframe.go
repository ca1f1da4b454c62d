package pe

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// FDE is one DWARF frame description entry of the .eh_frame section: the
// unwind table gcc emits for x86 (DWARF-2 exception handling), which the
// C runtime registers once at load (__register_frame_info).
type FDE struct {
	Begin, End  uint32 // code range [Begin, End), RVAs
	LSDA        uint32 // RVA of the language-specific data (landing pads), 0 if none
	Personality uint32 // RVA of the personality routine's pointer or code, 0 if none
}

// DWARF pointer encodings (DW_EH_PE_*).
const (
	ehAbsptr  = 0x00
	ehUleb128 = 0x01
	ehUdata2  = 0x02
	ehUdata4  = 0x03
	ehUdata8  = 0x04
	ehSleb128 = 0x09
	ehSdata2  = 0x0a
	ehSdata4  = 0x0b
	ehSdata8  = 0x0c
	ehPcrel   = 0x10
	ehOmit    = 0xff
)

// maxFDEs bounds the entries read from one .eh_frame.
const maxFDEs = 1 << 20

// parseEHFrame reads the .eh_frame section, if any, into f.EHFrame. A
// malformed entry ends the walk with a warning: what was read stays.
func (f *File) parseEHFrame() {
	// The name is cut to 8 characters when the linker or strip dropped
	// the COFF string table that holds long section names.
	s := f.SectionByName(".eh_frame")
	if s == nil {
		s = f.SectionByName(".eh_fram")
	}
	if s == nil {
		return
	}
	data := f.Bytes(s.VirtualAddress, int(min(s.VirtualSize, s.SizeOfRawData)))
	r := ehReader{f: f, b: data, base: s.VirtualAddress}
	type cie struct {
		fdeEnc, lsdaEnc uint8
		hasAug          bool
		personality     uint32
	}
	cies := map[int]cie{}
	for off := 0; off+4 <= len(data) && len(f.EHFrame) < maxFDEs; {
		length := uint64(binary.LittleEndian.Uint32(data[off:]))
		hdr := 4
		if length == 0 {
			break // terminator
		}
		if length == 0xffffffff {
			if off+12 > len(data) {
				f.warnf(".eh_frame: truncated 64-bit length at %#x", s.VirtualAddress+uint32(off))
				break
			}
			length, hdr = binary.LittleEndian.Uint64(data[off+4:]), 12
		}
		start := off + hdr
		// Compared before adding: a 64-bit length must not wrap around.
		if length < 4 || start > len(data) || length > uint64(len(data)-start) {
			f.warnf(".eh_frame: entry at %#x runs past the section", s.VirtualAddress+uint32(off))
			break
		}
		end := uint64(start) + length
		id := binary.LittleEndian.Uint32(data[start:])
		r.pos, r.end = start+4, int(end)
		if id == 0 { // CIE
			var c cie
			c.fdeEnc, c.lsdaEnc = ehAbsptr, ehOmit
			version := r.u8()
			aug := r.cstring()
			r.uleb() // code alignment
			r.sleb() // data alignment
			if version == 1 {
				r.u8()
			} else {
				r.uleb()
			}
			if len(aug) > 0 && aug[0] == 'z' {
				c.hasAug = true
				augLen := r.uleb()
				augEnd := r.pos + int(augLen)
				for _, ch := range aug[1:] {
					switch ch {
					case 'R':
						c.fdeEnc = r.u8()
					case 'L':
						c.lsdaEnc = r.u8()
					case 'P':
						enc := r.u8()
						c.personality = r.pointer(enc)
					}
				}
				r.pos = augEnd
			}
			if r.err == nil {
				cies[off] = c
			}
		} else { // FDE: id is the distance back to its CIE
			cieAt := start - int(id)
			c, ok := cies[cieAt] // only CIEs already read, before this entry
			if !ok {
				f.warnf(".eh_frame: FDE at %#x names no CIE", s.VirtualAddress+uint32(off))
			} else {
				begin := r.pointer(c.fdeEnc)
				rng := r.value(c.fdeEnc & 0x0f)
				e := FDE{Begin: begin, End: begin + uint32(rng), Personality: c.personality}
				if c.hasAug {
					augLen := r.uleb()
					augEnd := r.pos + int(augLen)
					if c.lsdaEnc != ehOmit {
						e.LSDA = r.pointer(c.lsdaEnc)
					}
					r.pos = augEnd
				}
				if r.err == nil && begin != 0 && e.End > e.Begin {
					f.EHFrame = append(f.EHFrame, e)
				}
			}
		}
		if r.err != nil {
			f.warnf(".eh_frame: entry at %#x: %v", s.VirtualAddress+uint32(off), r.err)
			break
		}
		off = int(end)
	}
	sort.Slice(f.EHFrame, func(i, j int) bool { return f.EHFrame[i].Begin < f.EHFrame[j].Begin })
}

// FDEAt returns the frame description entry covering rva, if any.
func (f *File) FDEAt(rva uint32) (FDE, bool) {
	i := sort.Search(len(f.EHFrame), func(i int) bool { return f.EHFrame[i].Begin > rva }) - 1
	if i >= 0 && rva < f.EHFrame[i].End {
		return f.EHFrame[i], true
	}
	return FDE{}, false
}

// ehReader decodes the fields of one .eh_frame entry; the first error
// sticks and makes every later read return zero.
type ehReader struct {
	f        *File
	b        []byte
	base     uint32 // RVA of b[0]
	pos, end int
	err      error
}

func (r *ehReader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if r.pos+n > r.end {
		r.err = fmt.Errorf("field at +%#x runs past the entry", r.pos)
		return false
	}
	return true
}

func (r *ehReader) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	r.pos++
	return r.b[r.pos-1]
}

func (r *ehReader) cstring() string {
	for i := r.pos; i < r.end; i++ {
		if r.b[i] == 0 {
			s := string(r.b[r.pos:i])
			r.pos = i + 1
			return s
		}
	}
	if r.err == nil {
		r.err = fmt.Errorf("unterminated augmentation string at +%#x", r.pos)
	}
	return ""
}

func (r *ehReader) uleb() uint64 {
	var v uint64
	for shift := 0; ; shift += 7 {
		if !r.need(1) || shift > 63 {
			if r.err == nil {
				r.err = fmt.Errorf("LEB128 too long at +%#x", r.pos)
			}
			return 0
		}
		c := r.b[r.pos]
		r.pos++
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *ehReader) sleb() int64 {
	var v int64
	shift := 0
	for {
		if !r.need(1) || shift > 63 {
			if r.err == nil {
				r.err = fmt.Errorf("LEB128 too long at +%#x", r.pos)
			}
			return 0
		}
		c := r.b[r.pos]
		r.pos++
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
}

// value reads a value in the format of the low nibble of an encoding.
func (r *ehReader) value(format uint8) uint64 {
	fixed := func(n int) uint64 {
		if !r.need(n) {
			return 0
		}
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(r.b[r.pos+i])
		}
		r.pos += n
		return v
	}
	switch format {
	case ehAbsptr:
		if r.f.Is64 {
			return fixed(8)
		}
		return fixed(4)
	case ehUleb128:
		return r.uleb()
	case ehSleb128:
		return uint64(r.sleb())
	case ehUdata2:
		return fixed(2)
	case ehSdata2:
		return uint64(int64(int16(fixed(2))))
	case ehUdata4:
		return fixed(4)
	case ehSdata4:
		return uint64(int64(int32(fixed(4))))
	case ehUdata8, ehSdata8:
		return fixed(8)
	}
	if r.err == nil {
		r.err = fmt.Errorf("unknown pointer encoding %#x", format)
	}
	return 0
}

// pointer reads an encoded pointer and returns the RVA it designates (0
// when it is outside the image or indirect through a slot that is).
func (r *ehReader) pointer(enc uint8) uint32 {
	if enc == ehOmit {
		return 0
	}
	at := r.base + uint32(r.pos)
	v := r.value(enc & 0x0f)
	var rva uint64
	switch enc & 0x70 {
	case 0:
		if v < r.f.ImageBase {
			return 0
		}
		rva = v - r.f.ImageBase
	case ehPcrel:
		rva = uint64(at) + v
	default:
		// datarel/textrel/funcrel are not used by PE toolchains.
		if r.err == nil {
			r.err = fmt.Errorf("unsupported pointer application %#x", enc&0x70)
		}
		return 0
	}
	// An indirect pointer (DW_EH_PE_indirect) names the slot holding the
	// address; the slot is what is kept.
	return uint32(rva)
}
