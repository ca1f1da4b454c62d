package pe

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hpbuild/hpbuild/pdb"
)

// PDBInfo says which PDB the image model used.
type PDBInfo struct {
	Path  string // the file read
	GUID  string // {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}
	Age   uint32
	Found string // how it was found: "given", "next to the image" or "symbol store"
	Procs int    // procedures (functions, thunks, separated code) taken from it
	Data  int    // data objects taken from it
}

// pdbProc is a PDB procedure as the function table takes it.
type pdbProc struct {
	RVA, Size uint32
	Names     []string // correlation names, the preferred first: decorated public names, else the (qualified) procedure name
	Display   string   // the procedure name as the compiler wrote it (undecorated)
	Parent    uint32   // separated code: the RVA of its procedure; 0 otherwise
}

// WithPDB reads function and data symbols from the PDB at path. A PDB
// whose GUID and age differ from the image's CodeView record is not used:
// Open then succeeds with a warning naming both GUIDs. A PDB that cannot be
// read or parsed is an error.
func WithPDB(path string) Option { return func(o *options) { o.pdbPath = path } }

// WithPDBSearch looks for the image's PDB when WithPDB names none: next to
// the image under the file name its CodeView record gives, then in each
// symbol store directory of storePath (laid out like a symbol server:
// STORE/name.pdb/GUIDAGE/name.pdb). A PDB found there that does not match,
// or cannot be parsed, is skipped with a warning; finding none is not an
// error.
func WithPDBSearch(storePath []string) Option {
	return func(o *options) {
		o.pdbSearch = true
		o.symbolPath = storePath
	}
}

// codeView returns the image's CodeView (RSDS) debug record, if any.
func (f *File) codeView() (DebugEntry, bool) {
	for _, d := range f.Debug {
		if d.PDBGUID != "" {
			return d, true
		}
	}
	return DebugEntry{}, false
}

// SymbolStoreKey returns the directory name a symbol store files the PDB
// with this GUID and age under: the GUID's hex digits followed by the age
// in hex ("8E3D65665CE6EB6E4C4C44205044422E1").
func SymbolStoreKey(guid string, age uint32) string {
	g := strings.NewReplacer("{", "", "}", "", "-", "").Replace(guid)
	return fmt.Sprintf("%s%X", g, age)
}

// pdbBaseName is the file name part of the CodeView record's PDB path,
// which may be a Windows path.
func pdbBaseName(p string) string {
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// loadPDB finds, checks and applies the PDB the options ask for.
func (f *File) loadPDB(o *options) error {
	cv, hasCV := f.codeView()
	if o.pdbPath != "" {
		if !hasCV {
			f.warnf("pdb %s not used: the image has no CodeView debug record to check it against", o.pdbPath)
			return nil
		}
		_, err := f.tryPDB(o.pdbPath, cv, "given")
		return err
	}
	if !o.pdbSearch || !hasCV {
		return nil
	}
	name := pdbBaseName(cv.PDBPath)
	if name == "" || name == "." || name == ".." {
		return nil
	}
	var candidates [][2]string
	if o.imagePath != "" {
		candidates = append(candidates, [2]string{filepath.Join(filepath.Dir(o.imagePath), name), "next to the image"})
	}
	for _, store := range o.symbolPath {
		if store == "" {
			continue
		}
		candidates = append(candidates, [2]string{filepath.Join(store, name, SymbolStoreKey(cv.PDBGUID, cv.PDBAge), name), "symbol store"})
	}
	for _, c := range candidates {
		if st, err := os.Stat(c[0]); err != nil || !st.Mode().IsRegular() {
			continue
		}
		used, err := f.tryPDB(c[0], cv, c[1])
		if err != nil {
			f.warnf("pdb %s not used: %v", c[0], err)
			continue
		}
		if used {
			return nil
		}
	}
	return nil
}

// tryPDB reads the PDB at path and applies it when it matches cv. It
// reports whether the PDB was used; a mismatch is a warning, not an error.
func (f *File) tryPDB(path string, cv DebugEntry, found string) (bool, error) {
	fh, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("pdb: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return false, fmt.Errorf("pdb: %w", err)
	}
	if !st.Mode().IsRegular() {
		return false, fmt.Errorf("pdb %s: not a regular file", path)
	}
	if st.Size() > maxFileSize {
		return false, fmt.Errorf("pdb %s: too large (%d bytes, limit %d)", path, st.Size(), int64(maxFileSize))
	}
	// Mapped like the image: nothing parsed from the PDB aliases it, so
	// the mapping ends here and the file never occupies the heap.
	data, release, err := readImage(fh, st.Size())
	if err != nil {
		return false, fmt.Errorf("pdb %s: %w", path, err)
	}
	if release != nil {
		defer release()
	}
	guid, age, err := pdb.ReadIdentity(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if g := pdb.FormatGUID(guid); g != cv.PDBGUID || age != cv.PDBAge {
		f.warnf("pdb %s refused: it has GUID %s age %d, the image's CodeView record wants GUID %s age %d; continuing without it",
			path, g, age, cv.PDBGUID, cv.PDBAge)
		return false, nil
	}
	p, err := pdb.Parse(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if reason := f.pdbLayoutMismatch(p); reason != "" {
		f.warnf("pdb %s refused: %s; continuing without it", path, reason)
		return false, nil
	}
	f.applyPDB(p, path, found)
	return true, nil
}

// pdbLayoutMismatch cross-checks the machine and section headers the PDB
// recorded with the image's own: a PDB whose GUID matches but whose layout
// does not would put every name in the wrong place.
func (f *File) pdbLayoutMismatch(p *pdb.File) string {
	if p.Machine != 0 && Machine(p.Machine) != f.Machine {
		return fmt.Sprintf("it describes machine %s, the image is %s", Machine(p.Machine), f.Machine)
	}
	if len(p.Sections) != len(f.Sections) {
		return fmt.Sprintf("it lists %d sections, the image has %d", len(p.Sections), len(f.Sections))
	}
	for i, s := range p.Sections {
		if is := f.Sections[i]; s.Name != is.Name || s.VirtualAddress != is.VirtualAddress {
			return fmt.Sprintf("its section %d is %s at %#x, the image's is %s at %#x", i+1, s.Name, s.VirtualAddress, is.Name, is.VirtualAddress)
		}
	}
	return ""
}

// applyPDB turns the PDB's procedures, publics and data objects into
// function-table input and data symbols.
func (f *File) applyPDB(p *pdb.File, path, found string) {
	info := &PDBInfo{Path: path, GUID: p.GUIDString(), Age: p.Age, Found: found}
	for _, w := range p.Warnings {
		f.warnf("pdb %s: %s", filepath.Base(path), w)
	}
	// Decorated names: the publics at each code address.
	pubs := map[uint32][]string{}
	dataPub := map[uint32][]pdb.Public{}
	for _, pub := range p.Publics {
		if pub.Function || pub.Code || f.IsCode(pub.RVA) {
			pubs[pub.RVA] = append(pubs[pub.RVA], pub.Name)
		} else {
			dataPub[pub.RVA] = append(dataPub[pub.RVA], pub)
		}
	}
	// Procedure names that are not unique (file-local functions of the
	// same name in several modules) are qualified by their object file.
	count := map[string]int{}
	for _, pr := range p.Procs {
		if pr.Kind != pdb.ProcSepCode {
			count[pr.Name]++
		}
	}
	for _, pr := range p.Procs {
		if !f.IsCode(pr.RVA) || (pr.Size == 0 && pr.Kind != pdb.ProcFunction) {
			continue
		}
		if uint64(pr.RVA)+uint64(pr.Size) > uint64(f.Section(pr.RVA).End()) {
			f.warnf("pdb: procedure %s at %#x (%d bytes) runs past its section; extent not used", pr.Name, pr.RVA, pr.Size)
			pr.Size = 0
		}
		pp := pdbProc{RVA: pr.RVA, Size: pr.Size, Display: pr.Name}
		if pr.Kind == pdb.ProcSepCode {
			pp.Parent = pr.ParentRVA
			pp.Display = ""
			f.pdbProcs = append(f.pdbProcs, pp)
			info.Procs++
			continue
		}
		key := pr.Name
		if count[pr.Name] > 1 && !pr.Global && pr.Module < len(p.Modules) {
			key = p.Modules[pr.Module].ShortName() + "!" + pr.Name
		}
		pp.Names = append(pp.Names, pubs[pr.RVA]...)
		if len(pp.Names) == 0 || key != pr.Name {
			pp.Names = append(pp.Names, key)
		}
		if count[pr.Name] == 1 && pr.Name != "" && pp.Names[0] != pr.Name {
			pp.Names = append(pp.Names, pr.Name)
		}
		if pp.Display == pp.Names[0] {
			pp.Display = ""
		}
		f.pdbProcs = append(f.pdbProcs, pp)
		info.Procs++
	}
	sort.SliceStable(f.pdbProcs, func(i, j int) bool { return f.pdbProcs[i].RVA < f.pdbProcs[j].RVA })
	// Data objects, with their sizes; file-local ones of the same name in
	// several modules qualified like procedures.
	dcount := map[string]int{}
	for _, d := range p.Data {
		dcount[d.Name]++
	}
	seen := map[uint32]bool{}
	for _, d := range p.Data {
		if d.TLS || f.Section(d.RVA) == nil || f.IsCode(d.RVA) {
			continue
		}
		name := d.Name
		if dcount[d.Name] > 1 && !d.Global && d.Module >= 0 && d.Module < len(p.Modules) {
			name = p.Modules[d.Module].ShortName() + "!" + d.Name
		}
		f.Symbols = append(f.Symbols, Symbol{Name: name, RVA: d.RVA, Size: d.Size, Static: !d.Global, Source: "pdb"})
		seen[d.RVA] = true
		info.Data++
	}
	// Data publics no data record describes (string literals, objects of
	// modules without debug information), sized by their contribution.
	contrib := map[uint32]uint32{}
	for _, c := range p.Contributions {
		if _, dup := contrib[c.RVA]; !dup {
			contrib[c.RVA] = c.Size
		}
	}
	for rva, ps := range dataPub {
		if seen[rva] || f.Section(rva) == nil {
			continue
		}
		for _, pub := range ps {
			f.Symbols = append(f.Symbols, Symbol{Name: pub.Name, RVA: rva, Size: contrib[rva], Source: "pdb"})
			info.Data++
		}
	}
	sortSymbols(f.Symbols)
	f.PDB = info
}

// pdbOwner returns the start of the PDB procedure whose extent contains
// rva (for separated code, the procedure it was separated from).
func (f *File) pdbOwner(rva uint32) (uint32, bool) {
	ps := f.pdbProcs
	for i := sort.Search(len(ps), func(i int) bool { return ps[i].RVA > rva }) - 1; i >= 0; i-- {
		if p := ps[i]; rva < p.RVA+p.Size {
			if p.Parent != 0 {
				return p.Parent, true
			}
			return p.RVA, true
		}
		if i > 0 && ps[i-1].RVA != ps[i].RVA {
			break // procedures do not overlap: only entries at the same start can still contain rva
		}
	}
	return 0, false
}
