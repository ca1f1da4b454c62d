package disasm

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// benchCode returns the executable bytes of the fixture DLLs of one mode
// (testdata/<case>/{x64,x86}/old.dll at the module root), or of the PE
// file named by $DISASM_BENCH_FILE (any mode) when that is set, and
// skips the benchmark when there are none.
func benchCode(b *testing.B, mode int) []byte {
	b.Helper()
	var files []string
	if f := os.Getenv("DISASM_BENCH_FILE"); f != "" {
		files = []string{f}
	} else {
		dir := "x64"
		if mode == 32 {
			dir = "x86"
		}
		files, _ = filepath.Glob(filepath.Join("..", "testdata", "*", dir, "old.dll"))
	}
	var code []byte
	for _, path := range files {
		m, secs, err := peCode(path)
		if err != nil {
			b.Fatal(err)
		}
		if m != mode {
			continue
		}
		for _, s := range secs {
			code = append(code, s.data...)
		}
	}
	if len(code) == 0 {
		b.Skipf("no %d-bit code: no fixture DLLs under ../testdata/*/ and no $DISASM_BENCH_FILE", mode)
	}
	return code
}

// sweepBench runs step linearly over the real code of both modes; step
// returns the number of bytes it consumed, or 0 to skip one byte.
func sweepBench(b *testing.B, step func(code []byte, off, mode int) int) {
	for _, mode := range []int{64, 32} {
		b.Run(modeName(mode), func(b *testing.B) {
			code := benchCode(b, mode)
			b.SetBytes(int64(len(code)))
			b.ReportAllocs()
			for b.Loop() {
				for off := 0; off < len(code); {
					n := step(code[off:], off, mode)
					if n <= 0 {
						n = 1
					}
					off += n
				}
			}
		})
	}
}

// BenchmarkDecode sweeps real code linearly with Decode, as the differ
// does; compare with BenchmarkDecodeBareX86asm for the overhead ratio.
func BenchmarkDecode(b *testing.B) {
	sweepBench(b, func(code []byte, off, mode int) int {
		inst, err := Decode(code, uint64(off), mode)
		if err != nil {
			return 0
		}
		return inst.Len
	})
}

// BenchmarkDecodeBareX86asm is the floor: the same sweep with
// x86asm.Decode alone (no fix-ups, no refs).
func BenchmarkDecodeBareX86asm(b *testing.B) {
	sweepBench(b, func(code []byte, _, mode int) int {
		inst, err := x86asm.Decode(code, mode)
		if err != nil {
			return 0
		}
		return inst.Len
	})
}

// BenchmarkDecodeLength is the length decoder alone.
func BenchmarkDecodeLength(b *testing.B) {
	sweepBench(b, func(code []byte, _, mode int) int {
		li, st := decodeLength(code, mode)
		if st != lenOK {
			return 0
		}
		return int(li.n)
	})
}

func modeName(mode int) string {
	if mode == 32 {
		return "x86"
	}
	return "x64"
}
