//go:build unix

package pe

import (
	"io"
	"os"
	"syscall"
)

// readImage returns the contents of the open file f of the given size,
// mapped read-only when the system allows it (the pages then count once,
// outside the Go heap, and are shared with the page cache), read into
// memory otherwise. release undoes the mapping; it is nil for a copy.
func readImage(f *os.File, size int64) (data []byte, release func() error, err error) {
	if size > 0 && int64(int(size)) == size {
		b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE)
		if err == nil {
			return b, func() error { return syscall.Munmap(b) }, nil
		}
	}
	data, err = io.ReadAll(f)
	return data, nil, err
}
