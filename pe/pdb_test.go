package pe

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hpbuild/hpbuild/pdb"
)

// msvcFixtures lists the MSVC-ABI fixture DLLs whose PDB matches (every
// one but the deliberately mismatched pdb_mismatch/*/new).
func msvcFixtures(t testing.TB) []string {
	t.Helper()
	m, _ := filepath.Glob("../testdata/msvc/*/*/*/*.dll")
	if len(m) == 0 {
		t.Fatal("no MSVC-ABI fixtures under testdata/msvc (run make -C testdata msvc)")
	}
	var out []string
	for _, p := range m {
		if !strings.Contains(p, "pdb_mismatch/") || !strings.Contains(p, "/new/") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func pdbOf(dll string) string { return strings.TrimSuffix(dll, ".dll") + ".pdb" }

// TestMSVCFunctionsArePDBProcedures: with its PDB, the function table of
// every MSVC-ABI fixture is exactly the PDB's procedures: the same starts,
// the same sizes, each named by the procedure (or its decorated public)
// and found by the pdb source.
func TestMSVCFunctionsArePDBProcedures(t *testing.T) {
	for _, dll := range msvcFixtures(t) {
		t.Run(strings.TrimPrefix(dll, "../testdata/msvc/"), func(t *testing.T) {
			f, err := Open(dll, WithPDB(pdbOf(dll)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.PDB == nil || f.PDB.Found != "given" {
				t.Fatalf("PDB not used: %+v, warnings %q", f.PDB, f.Warnings)
			}
			p, err := pdb.Open(pdbOf(dll))
			if err != nil {
				t.Fatal(err)
			}
			fns := f.Functions()
			if len(fns) != len(p.Procs) {
				t.Errorf("%d functions, the PDB has %d procedures", len(fns), len(p.Procs))
			}
			for _, pr := range p.Procs {
				fn, ok := f.FunctionAt(pr.RVA)
				if !ok {
					t.Errorf("procedure %s at %#x is not a function", pr.Name, pr.RVA)
					continue
				}
				if fn.Size != pr.Size {
					t.Errorf("%s: size %d, PDB says %d", pr.Name, fn.Size, pr.Size)
				}
				if fn.Sources&SrcPDB == 0 {
					t.Errorf("%s: sources %s lack pdb", pr.Name, fn.Sources)
				}
				all := append([]string{fn.Name, fn.Display()}, fn.Aliases()...)
				found := false
				for _, n := range all {
					found = found || n == pr.Name || strings.HasSuffix(n, "!"+pr.Name)
				}
				if !found {
					t.Errorf("function at %#x named %q %q, not after procedure %s", pr.RVA, fn.Name, fn.Aliases(), pr.Name)
				}
			}
		})
	}
}

// TestMSVCWithoutPDB: without the PDB the image model still finds every
// procedure's start (from exports, .pdata, calls and the sweep), and on
// x64 its exact extent from .pdata; the PDB only adds names.
func TestMSVCWithoutPDB(t *testing.T) {
	for _, dll := range msvcFixtures(t) {
		t.Run(strings.TrimPrefix(dll, "../testdata/msvc/"), func(t *testing.T) {
			f, err := Open(dll, WithPDBSearch(nil), WithPDB(""))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.PDB == nil {
				t.Fatal("the PDB next to the image was not found")
			}
			g, err := Open(dll)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if g.PDB != nil {
				t.Fatal("a PDB was used without being asked for")
			}
			if len(g.Functions()) != len(f.Functions()) {
				t.Errorf("%d functions without the PDB, %d with it", len(g.Functions()), len(f.Functions()))
			}
			for _, fn := range f.Functions() {
				h, ok := g.FunctionAt(fn.RVA)
				if !ok {
					t.Errorf("%s at %#x not found without the PDB", fn.Name, fn.RVA)
					continue
				}
				if g.Is64 && h.Size != fn.Size {
					t.Errorf("%s: size %d without the PDB, %d with it", fn.Name, h.Size, fn.Size)
				}
			}
		})
	}
}

// TestPDBMismatchRefused: the PDB next to pdb_mismatch's new DLL comes from
// another build; it is refused with a warning naming both GUIDs, and the
// image is modelled without it.
func TestPDBMismatchRefused(t *testing.T) {
	for _, arch := range []string{"x64", "x86"} {
		dll := "../testdata/msvc/pdb_mismatch/" + arch + "/new/pdb_mismatch.dll"
		for _, opt := range []Option{WithPDBSearch(nil), WithPDB(pdbOf(dll))} {
			f, err := Open(dll, opt)
			if err != nil {
				t.Fatal(err)
			}
			p, err := pdb.Open(pdbOf(dll))
			if err != nil {
				t.Fatal(err)
			}
			cv, _ := f.codeView()
			if f.PDB != nil {
				t.Fatalf("%s: mismatched PDB used", dll)
			}
			if cv.PDBGUID == p.GUIDString() {
				t.Fatalf("%s: fixture PDB matches after all", dll)
			}
			warned := false
			for _, w := range f.Warnings {
				warned = warned || (strings.Contains(w, "refused") && strings.Contains(w, cv.PDBGUID) && strings.Contains(w, p.GUIDString()))
			}
			if !warned {
				t.Errorf("%s: no warning naming both GUIDs: %q", dll, f.Warnings)
			}
			if len(f.Functions()) == 0 {
				t.Errorf("%s: no function table", dll)
			}
			f.Close()
		}
	}
}

// TestPDBSymbolStore: a PDB filed in a symbol store under its GUID and
// age is found when it is not next to the image.
func TestPDBSymbolStore(t *testing.T) {
	src := "../testdata/msvc/cxx_names/x86/old/cxx_names.dll"
	dir := t.TempDir()
	dll := filepath.Join(dir, "cxx_names.dll")
	copyFile(t, src, dll)
	f, err := Open(dll, WithPDBSearch(nil))
	if err != nil {
		t.Fatal(err)
	}
	cv, _ := f.codeView()
	if f.PDB != nil {
		t.Fatal("found a PDB in an empty directory")
	}
	f.Close()
	store := filepath.Join(dir, "store")
	key := SymbolStoreKey(cv.PDBGUID, cv.PDBAge)
	if len(key) != 33 || strings.ContainsAny(key, "{}-") {
		t.Fatalf("symbol store key %q", key)
	}
	copyFile(t, pdbOf(src), filepath.Join(store, "cxx_names.pdb", key, "cxx_names.pdb"))
	f, err = Open(dll, WithPDBSearch([]string{filepath.Join(dir, "nowhere"), store}))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.PDB == nil || f.PDB.Found != "symbol store" {
		t.Fatalf("PDB %+v; warnings %q", f.PDB, f.Warnings)
	}
}

// TestPDBDamaged: a damaged PDB named on the command line is an error that
// says which file and what is wrong; one found by searching is skipped
// with a warning.
func TestPDBDamaged(t *testing.T) {
	src := "../testdata/msvc/body_change/x64/old/body_change.dll"
	data, err := os.ReadFile(pdbOf(src))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dll := filepath.Join(dir, "body_change.dll")
	copyFile(t, src, dll)
	bad := filepath.Join(dir, "body_change.pdb")
	if err := os.WriteFile(bad, data[:len(data)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dll, WithPDB(bad))
	var fe *pdb.FormatError
	if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("damaged PDB: error %v, want a *pdb.FormatError naming the file", err)
	}
	f, err := Open(dll, WithPDBSearch(nil))
	if err != nil {
		t.Fatalf("damaged PDB found by searching: %v", err)
	}
	defer f.Close()
	if f.PDB != nil || !strings.Contains(strings.Join(f.Warnings, "\n"), "not used") {
		t.Errorf("PDB %+v, warnings %q", f.PDB, f.Warnings)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPDBMutated: damaged copies of a matching PDB (its identity intact, so
// that everything after the GUID check runs) are used, skipped or refused
// with an error; the image model never fails internally (Open turns a
// panic into an "internal error").
func TestPDBMutated(t *testing.T) {
	src := "../testdata/msvc/cxx_names/x64/new/cxx_names.dll"
	good, err := os.ReadFile(pdbOf(src))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	path := filepath.Join(t.TempDir(), "m.pdb")
	used := 0
	for i := 0; i < 200; i++ {
		b := append([]byte(nil), good...)
		for k := 0; k < 1+r.IntN(16); k++ {
			b[4096+r.IntN(len(b)-4096)] = byte(r.IntN(256))
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Open(src, WithPDB(path))
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("mutation %d: %v", i, err)
			}
			continue
		}
		if f.PDB != nil {
			used++
		}
		f.Close()
	}
	if used == 0 {
		t.Error("no mutated PDB got past the identity check: the test exercises nothing")
	}
}
