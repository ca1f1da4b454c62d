package pdb

import (
	"encoding/binary"
	"fmt"
)

// msfMagic opens every MSF 7.0 file (the "big" MSF of PDB 7.0).
const msfMagic = "Microsoft C/C++ MSF 7.00\r\n\x1aDS\x00\x00\x00"

// Container limits.
const (
	maxFileSize      = 1 << 32 // 4 GiB: the largest an MSF 7.0 file with 4 KiB blocks can be
	maxDirectorySize = 64 << 20
	nilStreamSize    = 0xffffffff
)

// msf is an MSF 7.0 container: a file of fixed-size blocks, and a stream
// directory saying which blocks, in which order, make up each stream.
type msf struct {
	data      []byte
	blockSize uint32
	numBlocks uint32
	sizes     []uint32   // stream sizes; nilStreamSize for absent streams
	blocks    [][]uint32 // block numbers of each stream
	budget    int64      // stream bytes Parse may still materialise
}

// openMSF checks the superblock and reads the stream directory.
func openMSF(data []byte) (*msf, error) {
	if len(data) < 56 {
		return nil, containerErr(int64(len(data)), "file too short for an MSF superblock: file ends", nil)
	}
	if string(data[:32]) != msfMagic {
		if string(data[:26]) == "Microsoft C/C++ program da" {
			return nil, containerErr(0, "PDB 2.0 (MSF 2.00) files are not supported; relink with a current linker", nil)
		}
		return nil, containerErr(0, "not an MSF 7.0 file (no \"Microsoft C/C++ MSF 7.00\" signature)", nil)
	}
	if uint64(len(data)) > maxFileSize {
		return nil, containerErr(-1, fmt.Sprintf("file too large (%d bytes, limit %d)", len(data), uint64(maxFileSize)), nil)
	}
	m := &msf{data: data}
	m.blockSize = binary.LittleEndian.Uint32(data[32:])
	m.numBlocks = binary.LittleEndian.Uint32(data[40:])
	dirBytes := binary.LittleEndian.Uint32(data[44:])
	blockMap := binary.LittleEndian.Uint32(data[52:])
	switch m.blockSize {
	case 512, 1024, 2048, 4096, 8192, 16384, 32768:
	default:
		return nil, containerErr(32, "invalid block size", m.blockSize)
	}
	if uint64(m.numBlocks)*uint64(m.blockSize) > uint64(len(data)) {
		return nil, containerErr(40, fmt.Sprintf("%d blocks of %d bytes do not fit in the file (size %#x): NumBlocks", m.numBlocks, m.blockSize, len(data)), m.numBlocks)
	}
	if dirBytes == 0 || dirBytes > maxDirectorySize || uint64(dirBytes) > uint64(len(data)) {
		return nil, containerErr(44, "invalid stream directory size", dirBytes)
	}
	// Stream bytes read (the directory, then the streams) may add up to
	// about twice the file; a legitimate PDB needs at most once.
	m.budget = 2*int64(len(data)) + 4096
	nDirBlocks := (dirBytes + m.blockSize - 1) / m.blockSize
	if blockMap >= m.numBlocks {
		return nil, containerErr(52, "block map address outside the file", blockMap)
	}
	mapOff := uint64(blockMap) * uint64(m.blockSize)
	if mapOff+4*uint64(nDirBlocks) > uint64(len(data)) || 4*nDirBlocks > m.blockSize {
		return nil, containerErr(52, fmt.Sprintf("stream directory block list (%d blocks) does not fit in its block: BlockMapAddr", nDirBlocks), blockMap)
	}
	dirBlocks := make([]uint32, nDirBlocks)
	for i := range dirBlocks {
		dirBlocks[i] = binary.LittleEndian.Uint32(data[mapOff+4*uint64(i):])
	}
	dir, err := m.gather(-1, dirBlocks, dirBytes)
	if err != nil {
		return nil, err
	}
	if len(dir) < 4 {
		return nil, containerErr(-1, "stream directory too short", nil)
	}
	n := binary.LittleEndian.Uint32(dir)
	if uint64(n) > uint64(len(dir)-4)/4 {
		return nil, containerErr(-1, fmt.Sprintf("stream directory of %d bytes cannot list %d streams", len(dir), n), nil)
	}
	m.sizes = make([]uint32, n)
	m.blocks = make([][]uint32, n)
	pos := 4 + 4*int(n)
	for i := range m.sizes {
		m.sizes[i] = binary.LittleEndian.Uint32(dir[4+4*i:])
	}
	for i, sz := range m.sizes {
		if sz == nilStreamSize {
			continue
		}
		nb := int((uint64(sz) + uint64(m.blockSize) - 1) / uint64(m.blockSize))
		if nb > (len(dir)-pos)/4 {
			return nil, containerErr(-1, fmt.Sprintf("stream directory ends inside the block list of stream %d (%d bytes)", i, sz), nil)
		}
		bl := make([]uint32, nb)
		for j := range bl {
			b := binary.LittleEndian.Uint32(dir[pos+4*j:])
			if b >= m.numBlocks || b == 0 {
				return nil, containerErr(-1, fmt.Sprintf("stream %d: block %d is outside the file (%d blocks)", i, b, m.numBlocks), nil)
			}
			bl[j] = b
		}
		m.blocks[i] = bl
		pos += 4 * nb
	}
	return m, nil
}

// numStreams returns the number of streams in the directory.
func (m *msf) numStreams() int { return len(m.sizes) }

// present reports whether stream i exists (is listed and not nil).
func (m *msf) present(i int) bool {
	return i >= 0 && i < len(m.sizes) && m.sizes[i] != nilStreamSize
}

// stream returns the bytes of stream i. When the stream's blocks are
// consecutive in the file, the result aliases the file data.
func (m *msf) stream(i int) ([]byte, error) {
	if i < 0 || i >= len(m.sizes) {
		return nil, containerErr(-1, fmt.Sprintf("stream %d does not exist (%d streams)", i, len(m.sizes)), nil)
	}
	if m.sizes[i] == nilStreamSize {
		return nil, containerErr(-1, fmt.Sprintf("stream %d is absent (nil stream)", i), nil)
	}
	return m.gather(i, m.blocks[i], m.sizes[i])
}

// gather assembles size bytes from the given blocks.
func (m *msf) gather(stream int, blocks []uint32, size uint32) ([]byte, error) {
	bs := uint64(m.blockSize)
	if uint64(len(blocks))*bs < uint64(size) {
		return nil, containerErr(-1, fmt.Sprintf("stream %d: %d blocks cannot hold %d bytes", stream, len(blocks), size), nil)
	}
	contiguous := true
	for j, b := range blocks {
		if uint64(b) >= uint64(m.numBlocks) || (uint64(b)+1)*bs > uint64(len(m.data)) {
			return nil, containerErr(-1, fmt.Sprintf("stream %d: block %d is outside the file", stream, b), nil)
		}
		if j > 0 && b != blocks[j-1]+1 {
			contiguous = false
		}
	}
	if size == 0 {
		return []byte{}, nil
	}
	// Every stream read is charged, aliased or copied: its bytes are
	// parsed next, and streams that share blocks must not multiply the
	// work a small file causes.
	if int64(size) > m.budget {
		return nil, containerErr(-1, fmt.Sprintf("stream %d: reading %d more bytes would exceed what a file of %d bytes can hold (streams share blocks)", stream, size, len(m.data)), nil)
	}
	m.budget -= int64(size)
	if contiguous {
		off := uint64(blocks[0]) * bs
		return m.data[off : off+uint64(size) : off+uint64(size)], nil
	}
	out := make([]byte, 0, size)
	for _, b := range blocks {
		off := uint64(b) * bs
		n := min(bs, uint64(size)-uint64(len(out)))
		out = append(out, m.data[off:off+n]...)
		if uint64(len(out)) == uint64(size) {
			break
		}
	}
	return out, nil
}
