//go:build !unix

package pe

import (
	"io"
	"os"
)

// readImage returns the contents of the open file f of the given size.
// release is always nil: the copy is ordinary memory.
func readImage(f *os.File, size int64) (data []byte, release func() error, err error) {
	data, err = io.ReadAll(f)
	return data, nil, err
}
