// Package benchpdb builds, on demand, the large PDB the benchmarks parse:
// no PDB of 30 MB or more is in the corpus, and none is committed, so a
// generated C program of many translation units (each with thousands of
// functions, structure types with dozens of fields and static data) is
// compiled with Debian's clang for x86_64-pc-windows-msvc and linked with
// lld-link /debug. The result is deterministic (same generator, same
// toolchain, same bytes) and cached, so only the first benchmark run on a
// machine pays for the build (about a minute on two cores).
package benchpdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Shape of the generated program: Units translation units of Funcs
// functions each (about 32 MB of PDB with Debian bookworm's clang 14).
const (
	Units   = 13
	Funcs   = 2000
	Fields  = 40
	version = "v2" // bump when the generator changes
)

// ErrNoToolchain is returned (wrapped) when clang or lld-link is missing.
var ErrNoToolchain = errors.New("clang and lld-link are needed to build the benchmark PDB (Debian: apt-get install clang lld)")

// Build returns the paths of the generated DLL and its PDB, building them
// under the user cache directory (or $HPBUILD_BENCH_CACHE) when absent.
func Build() (dll, pdb string, err error) {
	root := os.Getenv("HPBUILD_BENCH_CACHE")
	if root == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", "", err
		}
		root = filepath.Join(c, "hpbuild-bench")
	}
	dir := filepath.Join(root, "pdb-"+version)
	dll, pdb = filepath.Join(dir, "big.dll"), filepath.Join(dir, "big.pdb")
	if _, err := os.Stat(pdb); err == nil {
		if _, err := os.Stat(dll); err == nil {
			return dll, pdb, nil
		}
	}
	for _, tool := range []string{"clang", "lld-link"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", "", fmt.Errorf("%s: %w", tool, ErrNoToolchain)
		}
	}
	tmp, err := os.MkdirTemp(root, "build-")
	if err != nil {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", "", err
		}
		if tmp, err = os.MkdirTemp(root, "build-"); err != nil {
			return "", "", err
		}
	}
	defer os.RemoveAll(tmp)
	objs := make([]string, Units)
	errs := make([]error, Units)
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for u := 0; u < Units; u++ {
		src := filepath.Join(tmp, fmt.Sprintf("unit%02d.c", u))
		objs[u] = filepath.Join(tmp, fmt.Sprintf("unit%02d.o", u))
		if err := os.WriteFile(src, Source(u), 0o644); err != nil {
			return "", "", err
		}
		wg.Add(1)
		go func(u int, src string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[u] = run(tmp, "clang", "--target=x86_64-pc-windows-msvc", "-ffreestanding", "-O1", "-g", "-gcodeview",
				"-ffile-compilation-dir=C:/bench", "-c", filepath.Base(src), "-o", filepath.Base(objs[u]))
		}(u, src)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", "", err
	}
	args := []string{"/dll", "/debug", "/nodefaultlib", "/noentry", "/brepro", "/pdbaltpath:%_PDB%", "/out:big.dll", "/pdb:big.pdb"}
	for _, o := range objs {
		args = append(args, filepath.Base(o))
	}
	if err := run(tmp, "lld-link", args...); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	for _, n := range []string{"big.pdb", "big.dll"} {
		if err := os.Rename(filepath.Join(tmp, n), filepath.Join(dir, n)); err != nil {
			return "", "", err
		}
	}
	return dll, pdb, nil
}

func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, stderr.Bytes())
	}
	return nil
}

// Source returns the C source of translation unit u.
func Source(u int) []byte {
	var b bytes.Buffer
	for i := 0; i < Funcs; i++ {
		fmt.Fprintf(&b, "struct rec%d_%d {", u, i)
		for k := 0; k < Fields; k++ {
			if k%3 == 0 {
				fmt.Fprintf(&b, " double d%d[%d];", k, k%7+1)
			} else {
				fmt.Fprintf(&b, " int f%d;", k)
			}
		}
		fmt.Fprintf(&b, " struct rec%d_%d *next; };\n", u, i)
		// External linkage: clang 14 drops the debug record of a static
		// structure it splits into scalars.
		fmt.Fprintf(&b, "struct rec%d_%d g_rec%d_%d = { .f1 = %d };\n", u, i, u, i, i)
		fmt.Fprintf(&b, "__declspec(dllexport) int fn%d_%d(int x, struct rec%d_%d *r) { int k = x * %d; "+
			"for (int j = 0; j < (x & 7); j++) k += r ? r->f1 + j : j; g_rec%d_%d.f1 += k; return k ^ g_rec%d_%d.f2; }\n",
			u, i, u, i, i%97+1, u, i, u, i)
	}
	return b.Bytes()
}
