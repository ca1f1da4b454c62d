package diff

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/hpbuild/hpbuild/pe"
)

// Change kinds.
const (
	KindData     = "data"
	KindExport   = "export"
	KindImport   = "import"
	KindTLS      = "tls"
	KindEntry    = "entry"
	KindResource = "resource"
	KindSection  = "section"
	KindHeader   = "header"
)

// dataChange carries the facts classification needs about a data change.
type dataChange struct {
	writable         bool
	oldSize, newSize int
	oldVal, newVal   []byte
	oldRVA, newRVA   uint32
}

// dataChanges compares the data objects of both images: pairs named by
// symbols first, then the objects unchanged code agrees correspond.
func (c *comparer) dataChanges() []Change {
	var out []Change
	done := map[uint32]bool{}
	osym, nsym := dataSymbols(c.old.f), dataSymbols(c.new.f)
	for _, name := range slices.Sorted(maps.Keys(osym)) {
		o := osym[name]
		n, ok := nsym[name]
		if !ok || o == 0 || n == 0 {
			continue
		}
		done[o] = true
		if ch, ok := c.compareObject(name, o, n, true); ok {
			out = append(out, ch)
		}
	}
	for _, o := range slices.Sorted(maps.Keys(c.dataMap)) {
		if done[o] {
			continue
		}
		if ch, ok := c.compareObject(c.old.f.Resolve(o).String(), o, c.dataMap[o], false); ok {
			out = append(out, ch)
		}
	}
	return out
}

// dataSymbols maps names that name exactly one data object to its RVA
// (0 when ambiguous).
func dataSymbols(f *pe.File) map[string]uint32 {
	m := map[string]uint32{}
	for _, s := range f.Symbols {
		if s.Func || f.IsCode(s.RVA) {
			continue
		}
		if _, dup := m[s.Name]; dup {
			m[s.Name] = 0
			continue
		}
		m[s.Name] = s.RVA
	}
	return m
}

// compareObject compares the data objects at o and n. sized says that
// their extents are known (from symbols), so that a size change is a
// change; otherwise only their common prefix is compared.
func (c *comparer) compareObject(name string, o, n uint32, sized bool) (Change, bool) {
	os, ns := c.old.f.Section(o), c.new.f.Section(n)
	if os == nil || ns == nil || os.Executable() || ns.Executable() {
		return Change{}, false // code is compared as functions
	}
	if inDirectory(c.old.f, o) || inDirectory(c.new.f, n) || isLayoutMetadata(os.Name) {
		return Change{}, false
	}
	var ob, nb []byte
	if sized {
		ob, nb = c.old.symbolObject(o), c.new.symbolObject(n)
		// Symbol distance includes alignment padding: sizes that differ
		// only by trailing zeros are the same object.
		if len(ob) != len(nb) && bytes.Equal(trimZeros(ob), trimZeros(nb)) {
			k := min(len(ob), len(nb))
			ob, nb = ob[:k], nb[:k]
		}
		if len(ob) == len(nb) && c.objectsEqual(o, n, ob, nb) {
			return Change{}, false
		}
	} else {
		ob, nb = c.old.object(o), c.new.object(n)
		a := int(c.access[o])
		if a > 0 && a <= len(ob) && a <= len(nb) {
			ob, nb = ob[:a], nb[:a]
		}
		if a == 0 && !os.Writable() && c.old.goBinary && c.new.goBinary && c.pointersEqual(o, n, ob, nb) {
			return Change{}, false
		}
		if c.objectsEqual(o, n, ob, nb) {
			return Change{}, false
		}
		os, ok1 := cString(ob)
		ns, ok2 := cString(nb)
		if ok1 && ok2 {
			ob, nb = os, ns // strings are shown whole
		} else {
			k := min(len(ob), len(nb))
			ob, nb = ob[:k], nb[:k]
		}
	}
	return Change{Kind: KindData, Name: name, Rules: []Rule{}, data: &dataChange{
		writable: os.Writable(), oldSize: len(ob), newSize: len(nb), oldVal: ob, newVal: nb, oldRVA: o, newRVA: n,
	}}, true
}

// inDirectory reports whether rva lies in a table the loader or the
// unwinder reads (imports, IAT, exports, exception, relocation, resource,
// debug directories): their contents are compared as image changes, not
// as data objects.
func inDirectory(f *pe.File, rva uint32) bool {
	for _, d := range []int{pe.IMAGE_DIRECTORY_ENTRY_EXPORT, pe.IMAGE_DIRECTORY_ENTRY_IMPORT, pe.IMAGE_DIRECTORY_ENTRY_RESOURCE,
		pe.IMAGE_DIRECTORY_ENTRY_EXCEPTION, pe.IMAGE_DIRECTORY_ENTRY_BASERELOC, pe.IMAGE_DIRECTORY_ENTRY_DEBUG,
		pe.IMAGE_DIRECTORY_ENTRY_IAT, pe.IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT} {
		dd := f.Directories[d]
		if dd.VirtualAddress != 0 && rva >= dd.VirtualAddress && rva < dd.VirtualAddress+dd.Size {
			return true
		}
	}
	if s := f.Section(rva); s != nil {
		switch s.Name {
		case ".idata", ".edata", ".rsrc":
			return true
		}
	}
	// The TLS template is compared as such (RR-TLS): each thread starts
	// from a copy, so its bytes are not the initial value of one object.
	if t := f.TLS; t != nil && t.StartAddressOfRawData >= f.ImageBase {
		lo, hi := t.StartAddressOfRawData-f.ImageBase, t.EndAddressOfRawData-f.ImageBase
		if uint64(rva) >= lo && uint64(rva) < hi {
			return true
		}
	}
	return false
}

// imageChanges lists differences of the image as a whole.
func imageChanges(o, n *pe.File, c *comparer) []Change {
	var out []Change
	add := func(kind, name string, r ...Rule) {
		out = append(out, Change{Kind: kind, Name: name, Rules: append([]Rule{}, r...)})
	}
	if o.TimeDateStamp != n.TimeDateStamp {
		add(KindHeader, "TimeDateStamp", Rule{ID: "NEUTRAL-TIMESTAMP", Message: fmt.Sprintf("TimeDateStamp %#x -> %#x", o.TimeDateStamp, n.TimeDateStamp)})
	}
	if o.CheckSum != n.CheckSum {
		add(KindHeader, "CheckSum", Rule{ID: "NEUTRAL-CHECKSUM", Message: fmt.Sprintf("CheckSum %#x -> %#x", o.CheckSum, n.CheckSum)})
	}
	if o.ImageBase != n.ImageBase {
		add(KindHeader, "ImageBase", Rule{ID: "NEUTRAL-LAYOUT", Message: fmt.Sprintf("preferred image base %#x -> %#x; code is compared by what it references, not by address", o.ImageBase, n.ImageBase)})
	}
	if a, b := pdbOf(o), pdbOf(n); a != b {
		add(KindHeader, "debug directory", Rule{ID: "NEUTRAL-DEBUG", Message: fmt.Sprintf("PDB identity %s -> %s", a, b)})
	}
	if a, b := richOf(o), richOf(n); a != b {
		add(KindHeader, "Rich header", Rule{ID: "NEUTRAL-TOOLCHAIN", Message: fmt.Sprintf("toolchain %s -> %s", a, b)})
	}
	// Sections by name.
	osec, nsec := map[string]*pe.Section{}, map[string]*pe.Section{}
	for i := range o.Sections {
		osec[o.Sections[i].Name] = &o.Sections[i]
	}
	for i := range n.Sections {
		nsec[n.Sections[i].Name] = &n.Sections[i]
	}
	for _, s := range o.Sections {
		ns, ok := nsec[s.Name]
		switch {
		case !ok:
			add(KindSection, s.Name, Rule{ID: "NEUTRAL-SECTION", Message: fmt.Sprintf("section %s removed", s.Name)})
		case ns.VirtualSize != s.VirtualSize:
			add(KindSection, s.Name, Rule{ID: "NEUTRAL-SECTION", Message: fmt.Sprintf("section %s size %#x -> %#x", s.Name, s.VirtualSize, ns.VirtualSize)})
		}
	}
	for _, s := range n.Sections {
		if _, ok := osec[s.Name]; !ok {
			add(KindSection, s.Name, Rule{ID: "NEUTRAL-SECTION", Message: fmt.Sprintf("section %s added (%#x bytes)", s.Name, s.VirtualSize)})
		}
	}
	if rs := o.SectionByName(".rsrc"); rs != nil {
		if rn := n.SectionByName(".rsrc"); rn != nil && !bytes.Equal(o.Bytes(rs.VirtualAddress, int(rs.SizeOfRawData)), n.Bytes(rn.VirtualAddress, int(rn.SizeOfRawData))) {
			add(KindResource, ".rsrc", Rule{ID: "NEUTRAL-RESOURCE", Message: "resource data changed (version info, manifest, ...); running processes keep the old resources until restart"})
		}
	}
	out = append(out, exportChanges(o, n, c)...)
	out = append(out, importChanges(o, n)...)
	out = append(out, tlsChanges(o, n, c)...)
	return out
}

func pdbOf(f *pe.File) string {
	for _, d := range f.Debug {
		if d.PDBGUID != "" {
			return fmt.Sprintf("%s %s age %d", d.PDBPath, d.PDBGUID, d.PDBAge)
		}
	}
	return "none"
}

func richOf(f *pe.File) string {
	if f.Rich == nil {
		return "none"
	}
	var parts []string
	for _, e := range f.Rich.Entries {
		parts = append(parts, fmt.Sprintf("%s/%d", e.Product, e.Build))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func exportChanges(o, n *pe.File, c *comparer) []Change {
	var out []Change
	key := func(e pe.Export) string {
		if e.Name != "" {
			return e.Name
		}
		return fmt.Sprintf("#%d", e.Ordinal)
	}
	om, nm := map[string]pe.Export{}, map[string]pe.Export{}
	for _, e := range o.Exports {
		om[key(e)] = e
	}
	for _, e := range n.Exports {
		nm[key(e)] = e
	}
	// An export whose function now carries another export name was renamed.
	renamedTo := map[string]string{}
	for k, e := range om {
		if _, still := nm[k]; still || e.RVA == 0 {
			continue
		}
		if oi, ok := c.old.index(e.RVA); ok {
			if ni := c.p.o2n[oi]; ni >= 0 {
				for k2, e2 := range nm {
					if _, was := om[k2]; !was && e2.RVA == c.new.fns[ni].RVA {
						renamedTo[k] = k2
					}
				}
			}
		}
	}
	renamedNew := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(om)) {
		e := om[k]
		ne, ok := nm[k]
		switch {
		case !ok && renamedTo[k] != "":
			renamedNew[renamedTo[k]] = true
			out = append(out, Change{Kind: KindExport, Name: k, Rules: []Rule{{ID: "RR-EXPORTS", Message: fmt.Sprintf("export %s renamed to %s; modules that import it bind by name at load time", k, renamedTo[k])}}})
		case !ok:
			out = append(out, Change{Kind: KindExport, Name: k, Rules: []Rule{{ID: "RR-EXPORTS", Message: fmt.Sprintf("export %s (ordinal %d) removed; modules that import it bind at load time", k, e.Ordinal)}}})
		case ne.Ordinal != e.Ordinal:
			out = append(out, Change{Kind: KindExport, Name: k, Rules: []Rule{{ID: "RR-EXPORTS", Message: fmt.Sprintf("export %s re-ordinaled %d -> %d", k, e.Ordinal, ne.Ordinal)}}})
		case ne.Forwarder != e.Forwarder:
			out = append(out, Change{Kind: KindExport, Name: k, Rules: []Rule{{ID: "RR-EXPORTS", Message: fmt.Sprintf("export %s forwarder %q -> %q", k, e.Forwarder, ne.Forwarder)}}})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(nm)) {
		if _, ok := om[k]; !ok && !renamedNew[k] {
			out = append(out, Change{Kind: KindExport, Name: k, Rules: []Rule{{ID: "RR-EXPORTS", Message: fmt.Sprintf("export %s (ordinal %d) added; the running module's export table cannot grow", k, nm[k].Ordinal)}}})
		}
	}
	return out
}

func importChanges(o, n *pe.File) []Change {
	set := func(f *pe.File) map[string]bool {
		m := map[string]bool{}
		for _, imp := range f.Imports {
			for _, fn := range imp.Funcs {
				m[pe.ImportSlot{DLL: imp.DLL, Name: fn.Name, Ordinal: fn.Ordinal}.String()] = true
			}
		}
		return m
	}
	om, nm := set(o), set(n)
	var out []Change
	for _, k := range missing(nm, om) {
		out = append(out, Change{Kind: KindImport, Name: k, Rules: []Rule{{ID: "HP-NEW-IMPORT", Message: fmt.Sprintf("new import %s; the applier resolves it in the target process", k)}}})
	}
	for _, k := range missing(om, nm) {
		out = append(out, Change{Kind: KindImport, Name: k, Rules: []Rule{{ID: "NEUTRAL-IMPORT-UNUSED", Message: fmt.Sprintf("import %s no longer used; the old binding stays", k)}}})
	}
	return out
}

// missing returns the keys of a that b lacks, sorted.
func missing(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func tlsChanges(o, n *pe.File, c *comparer) []Change {
	var out []Change
	ot, nt := o.TLS, n.TLS
	switch {
	case ot == nil && nt == nil:
		return nil
	case ot == nil || nt == nil:
		return []Change{{Kind: KindTLS, Name: "TLS directory", Rules: []Rule{{ID: "RR-TLS", Message: "TLS directory added or removed; thread-local storage is laid out when the module loads"}}}}
	}
	osz, nsz := ot.EndAddressOfRawData-ot.StartAddressOfRawData, nt.EndAddressOfRawData-nt.StartAddressOfRawData
	if osz != nsz || ot.SizeOfZeroFill != nt.SizeOfZeroFill {
		out = append(out, Change{Kind: KindTLS, Name: "TLS template", Rules: []Rule{{ID: "RR-TLS", Message: fmt.Sprintf("TLS template size %d+%d -> %d+%d bytes; existing threads keep the old layout", osz, ot.SizeOfZeroFill, nsz, nt.SizeOfZeroFill)}}})
	} else if osz > 0 && osz < 1<<20 {
		or, _ := tlsRVA(o, ot.StartAddressOfRawData)
		nr, _ := tlsRVA(n, nt.StartAddressOfRawData)
		ob, nb := o.Bytes(or, int(osz)), n.Bytes(nr, int(nsz))
		// The template may hold pointers, which move with the layout.
		if !bytes.Equal(ob, nb) && !(len(ob) == len(nb) && c.objectsEqual(or, nr, ob, nb)) {
			what := ""
			if len(ob) == len(nb) {
				where, ov, nv := changedSpan(ob, nb)
				if where == "" {
					where = "+0x0"
				}
				what = fmt.Sprintf(" at offset %s: %s -> %s", where, ov, nv)
			}
			out = append(out, Change{Kind: KindTLS, Name: "TLS template", Rules: []Rule{{ID: "RR-TLS", Message: fmt.Sprintf("TLS template (%d bytes) changed%s; every thread got its copy when it started, so existing threads keep the old values and layout", osz, what)}}})
		}
	}
	if len(ot.Callbacks) != len(nt.Callbacks) {
		out = append(out, Change{Kind: KindTLS, Name: "TLS callbacks", Rules: []Rule{{ID: "RR-ENTRY", Message: fmt.Sprintf("TLS callback count %d -> %d; callbacks already ran for existing threads", len(ot.Callbacks), len(nt.Callbacks))}}})
	}
	return out
}

func tlsRVA(f *pe.File, va uint64) (uint32, bool) {
	if va < f.ImageBase || va-f.ImageBase >= uint64(f.SizeOfImage) {
		return 0, false
	}
	return uint32(va - f.ImageBase), true
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
