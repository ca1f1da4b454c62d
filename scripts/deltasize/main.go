// Command deltasize prints the size in bytes of hpbuild's forward file delta
// for a pair of files (a package's forward blob, as stored) and the seconds
// it took, after checking that it gives the new file back: for benchmarks
// on pairs a package cannot be built for (scripts/bench-packages.sh).
//
// Usage: go run ./scripts/deltasize OLD NEW
package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/hpbuild/hpbuild/pkgformat"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: deltasize OLD NEW")
		os.Exit(2)
	}
	old, err := os.ReadFile(os.Args[1])
	if err == nil {
		var nw []byte
		nw, err = os.ReadFile(os.Args[2])
		if err == nil {
			err = run(old, nw)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "deltasize:", err)
		os.Exit(1)
	}
}

func run(old, nw []byte) error {
	t0 := time.Now()
	c, size, err := pkgformat.EncodeDelta(old, nw)
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	back, err := pkgformat.DecompressDelta(c, size, old)
	if err != nil {
		return fmt.Errorf("the stored delta does not expand: %v", err)
	}
	got, err := pkgformat.ApplyDelta(old, back, uint64(len(nw)))
	if err != nil || !bytes.Equal(got, nw) {
		return fmt.Errorf("the delta does not give the new file: %v", err)
	}
	fmt.Printf("%d %.2f\n", len(c), secs)
	return nil
}
