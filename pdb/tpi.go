package pdb

import (
	"encoding/binary"
	"fmt"
)

// Type record kinds whose sizes data objects need.
const (
	LF_MODIFIER    = 0x1001
	LF_POINTER     = 0x1002
	LF_ARRAY       = 0x1503
	LF_CLASS       = 0x1504
	LF_STRUCTURE   = 0x1505
	LF_UNION       = 0x1506
	LF_ENUM        = 0x1507
	LF_INTERFACE   = 0x1519
	LF_NUMERIC     = 0x8000
	LF_CHAR        = 0x8000
	LF_SHORT       = 0x8001
	LF_USHORT      = 0x8002
	LF_LONG        = 0x8003
	LF_ULONG       = 0x8004
	LF_QUADWORD    = 0x8009
	LF_UQUADWORD   = 0x800a
	propFwdRef     = 0x0080
	propUniqueName = 0x0200
)

// maxTypeDepth bounds the chain of modifiers, enums and forward
// references followed to find one size.
const maxTypeDepth = 64

// typeTable indexes the TPI stream's records by type index.
type typeTable struct {
	begin uint32
	recs  []byte   // the records
	offs  []uint32 // offset of record (index - begin) in recs
	// complete maps the (unique) names of complete structures, classes,
	// unions and enums to their type index, for resolving forward
	// references; built on first need.
	complete map[string]uint32
	sizes    map[uint32]uint32 // memoised results
}

func newTypeTable(s []byte) (*typeTable, error) {
	if len(s) < 56 {
		return nil, streamErr(streamTPI, len(s), "tpi stream too short for its header: stream ends", nil)
	}
	hdrSize := binary.LittleEndian.Uint32(s[4:])
	begin := binary.LittleEndian.Uint32(s[8:])
	end := binary.LittleEndian.Uint32(s[12:])
	recBytes := binary.LittleEndian.Uint32(s[16:])
	if hdrSize < 56 || uint64(hdrSize)+uint64(recBytes) > uint64(len(s)) {
		return nil, streamErr(streamTPI, 4, fmt.Sprintf("tpi header size %d and record bytes %d do not fit in the stream (%d bytes)", hdrSize, recBytes, len(s)), nil)
	}
	if begin < 0x1000 || end < begin {
		return nil, streamErr(streamTPI, 8, fmt.Sprintf("invalid type index range [%#x, %#x)", begin, end), nil)
	}
	t := &typeTable{begin: begin, recs: s[hdrSize : hdrSize+recBytes], sizes: map[uint32]uint32{}}
	// Each record takes at least 4 bytes: the count cannot exceed that.
	n := end - begin
	if uint64(n) > uint64(len(t.recs))/4 {
		return nil, streamErr(streamTPI, 12, fmt.Sprintf("%d type records cannot fit in %d bytes", n, len(t.recs)), nil)
	}
	t.offs = make([]uint32, 0, n)
	for pos := 0; pos < len(t.recs) && uint32(len(t.offs)) < n; {
		if len(t.recs)-pos < 4 {
			return nil, streamErr(streamTPI, int(hdrSize)+pos, "truncated type record: stream ends", nil)
		}
		l := int(binary.LittleEndian.Uint16(t.recs[pos:]))
		if l < 2 || pos+2+l > len(t.recs) {
			return nil, streamErr(streamTPI, int(hdrSize)+pos, "type record length out of range:", uint16(l))
		}
		t.offs = append(t.offs, uint32(pos))
		pos += 2 + l
	}
	return t, nil
}

// record returns the kind and body of the record for type index ti.
func (t *typeTable) record(ti uint32) (uint16, []byte, bool) {
	if ti < t.begin || ti-t.begin >= uint32(len(t.offs)) {
		return 0, nil, false
	}
	pos := t.offs[ti-t.begin]
	l := uint32(binary.LittleEndian.Uint16(t.recs[pos:]))
	return binary.LittleEndian.Uint16(t.recs[pos+2:]), t.recs[pos+4 : pos+2+l], true
}

// sizeOf returns the size in bytes of an object of type ti, 0 when it is
// not known.
func (t *typeTable) sizeOf(ti uint32) uint32 {
	if sz, ok := t.sizes[ti]; ok {
		return sz
	}
	orig := ti
	var sz uint32
	for depth := 0; depth < maxTypeDepth; depth++ {
		if ti < 0x1000 {
			sz = simpleTypeSize(ti)
			break
		}
		kind, r, ok := t.record(ti)
		if !ok {
			break
		}
		next, size, done := t.step(kind, r)
		if done {
			sz = size
			break
		}
		ti = next
	}
	t.sizes[orig] = sz
	return sz
}

// step interprets one type record: either the size (done) or the type
// index the size is to be found at.
func (t *typeTable) step(kind uint16, r []byte) (next, size uint32, done bool) {
	switch kind {
	case LF_MODIFIER:
		if len(r) >= 4 {
			return binary.LittleEndian.Uint32(r), 0, false
		}
	case LF_POINTER:
		if len(r) >= 8 {
			return 0, (binary.LittleEndian.Uint32(r[4:]) >> 13) & 0x3f, true
		}
	case LF_ARRAY:
		if len(r) >= 8 {
			v, _, ok := numeric(r[8:])
			if ok && v <= 0xffffffff {
				return 0, uint32(v), true
			}
		}
	case LF_CLASS, LF_STRUCTURE, LF_INTERFACE, LF_UNION:
		fixed := 16 // count, property, field list, derived, vshape
		if kind == LF_UNION {
			fixed = 8 // count, property, field list
		}
		if len(r) < fixed {
			break
		}
		prop := binary.LittleEndian.Uint16(r[2:])
		v, n, ok := numeric(r[fixed:])
		if !ok {
			break
		}
		if prop&propFwdRef == 0 {
			if v <= 0xffffffff {
				return 0, uint32(v), true
			}
			break
		}
		if full, ok := t.resolveForward(r[fixed+n:], prop); ok {
			return full, 0, false
		}
	case LF_ENUM:
		if len(r) >= 8 {
			return binary.LittleEndian.Uint32(r[4:]), 0, false
		}
	}
	return 0, 0, true
}

// resolveForward finds the complete type a forward reference names.
func (t *typeTable) resolveForward(names []byte, prop uint16) (uint32, bool) {
	name, n, _ := cstring(names)
	if prop&propUniqueName != 0 {
		if u, _, _ := cstring(names[n:]); u != "" {
			name = u
		}
	}
	if t.complete == nil {
		t.indexComplete()
	}
	ti, ok := t.complete[name]
	return ti, ok
}

// indexComplete maps the names of every complete (non-forward) structure,
// class, interface and union to its type index; the first definition wins.
func (t *typeTable) indexComplete() {
	t.complete = map[string]uint32{}
	for i := range t.offs {
		ti := t.begin + uint32(i)
		kind, r, _ := t.record(ti)
		fixed := 16
		switch kind {
		case LF_CLASS, LF_STRUCTURE, LF_INTERFACE:
		case LF_UNION:
			fixed = 8
		default:
			continue
		}
		if len(r) < fixed {
			continue
		}
		prop := binary.LittleEndian.Uint16(r[2:])
		if prop&propFwdRef != 0 {
			continue
		}
		_, n, ok := numeric(r[fixed:])
		if !ok {
			continue
		}
		name, k, _ := cstring(r[fixed+n:])
		if prop&propUniqueName != 0 {
			if u, _, _ := cstring(r[fixed+n+k:]); u != "" {
				name = u
			}
		}
		if _, dup := t.complete[name]; !dup {
			t.complete[name] = ti
		}
	}
}

// numeric decodes a CodeView numeric leaf: the value and the bytes it
// takes. Negative values are reported as not ok (sizes are never negative).
func numeric(b []byte) (uint64, int, bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	v := binary.LittleEndian.Uint16(b)
	if v < LF_NUMERIC {
		return uint64(v), 2, true
	}
	b = b[2:]
	switch v {
	case LF_CHAR:
		if len(b) >= 1 && int8(b[0]) >= 0 {
			return uint64(b[0]), 3, true
		}
	case LF_SHORT:
		if len(b) >= 2 && int16(binary.LittleEndian.Uint16(b)) >= 0 {
			return uint64(binary.LittleEndian.Uint16(b)), 4, true
		}
	case LF_USHORT:
		if len(b) >= 2 {
			return uint64(binary.LittleEndian.Uint16(b)), 4, true
		}
	case LF_LONG:
		if len(b) >= 4 && int32(binary.LittleEndian.Uint32(b)) >= 0 {
			return uint64(binary.LittleEndian.Uint32(b)), 6, true
		}
	case LF_ULONG:
		if len(b) >= 4 {
			return uint64(binary.LittleEndian.Uint32(b)), 6, true
		}
	case LF_QUADWORD:
		if len(b) >= 8 && int64(binary.LittleEndian.Uint64(b)) >= 0 {
			return binary.LittleEndian.Uint64(b), 10, true
		}
	case LF_UQUADWORD:
		if len(b) >= 8 {
			return binary.LittleEndian.Uint64(b), 10, true
		}
	}
	return 0, 0, false
}

// simpleTypeSize returns the size of a built-in type (index below 0x1000):
// pointer modes first, then the base kinds.
func simpleTypeSize(ti uint32) uint32 {
	switch (ti >> 8) & 0xf {
	case 0: // direct
	case 1, 2, 3: // 16-bit near, far, huge pointers
		if ti&0xf00 == 0x100 {
			return 2
		}
		return 4
	case 4: // 32-bit near pointer
		return 4
	case 5: // 16:32 far pointer
		return 6
	case 6: // 64-bit pointer
		return 8
	case 7: // 128-bit pointer
		return 16
	default:
		return 0
	}
	switch ti & 0xff {
	case 0x10, 0x20, 0x68, 0x69, 0x70, 0x7c, 0x30:
		return 1
	case 0x11, 0x21, 0x72, 0x73, 0x71, 0x7a, 0x31, 0x46:
		return 2
	case 0x12, 0x22, 0x74, 0x75, 0x7b, 0x32, 0x40, 0x08:
		return 4
	case 0x13, 0x23, 0x76, 0x77, 0x33, 0x41:
		return 8
	case 0x42:
		return 10
	case 0x14, 0x24, 0x78, 0x79, 0x43:
		return 16
	}
	return 0
}
