package diff

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hpbuild/hpbuild/disasm"
	"github.com/hpbuild/hpbuild/pe"
)

// TestEntryBranchesBlockJmpSite finds, by decoding every function of real
// fixtures from its entry to its end (independently of pe's tables), the
// functions whose own code branches back into their first 5 bytes, and
// checks that pe records them (pe.Function.EntryTargets; such branches are
// not kept as references) and that none of them gets a jmp-rel32 site:
// a thread arriving there would execute half a jump.
func TestEntryBranchesBlockJmpSite(t *testing.T) {
	found := 0
	for _, cas := range []string{"cxx_exceptions", "cxx_vtable"} {
		for _, arch := range []string{"x64", "x86"} {
			f, err := pe.Open(filepath.Join("..", "testdata", cas, arch, "old.dll"))
			if err != nil {
				t.Fatal(err)
			}
			im := newImage(f)
			c := &comparer{old: im, new: im}
			mode := 32
			if f.Is64 {
				mode = 64
			}
			for i := range im.fns {
				fn := &im.fns[i]
				want := uint32(0) // the lowest entry+1..+4 a branch of fn reaches
				code := f.Bytes(fn.RVA, int(fn.Size))
				for off := 0; off < len(code); {
					in, err := disasm.Decode(code[off:], uint64(fn.RVA)+uint64(off), mode)
					if err != nil {
						break // data or padding after the code: the linear walk ends
					}
					for _, r := range in.RefList() {
						if r.Kind != disasm.RefRel8 && r.Kind != disasm.RefRel32 {
							continue
						}
						if tg := uint32(r.Target); tg > fn.RVA && tg < fn.RVA+5 && (want == 0 || tg < want) {
							want = tg
						}
					}
					off += in.Len
				}
				if want == 0 {
					continue
				}
				found++
				if fn.EntryTargets&(1<<(want-fn.RVA)) == 0 {
					t.Errorf("%s %s %s: a branch reaches %#x, EntryTargets = %08b", cas, arch, fn.DisplayName(), want, fn.EntryTargets)
				}
				for _, r := range fn.Refs {
					if (r.Kind == pe.RefBranch8 || r.Kind == pe.RefBranch32) && r.Target >= fn.RVA && r.Target < fn.End() && r.At >= fn.RVA && r.At < fn.End() {
						t.Errorf("%s %s %s: branch at %#x to %#x inside the main extent kept as a reference", cas, arch, fn.DisplayName(), r.At, r.Target)
						break
					}
				}
				s, rule := c.site(i)
				switch {
				case s != nil && s.Method == MethodJmpRel32:
					t.Errorf("%s %s %s: jmp-rel32 site although code branches to %#x", cas, arch, fn.DisplayName(), want)
				case rule != nil && rule.ID == "RR-NO-ENTRY-ROOM" && !strings.Contains(rule.Message, "branches to"):
					t.Errorf("%s %s %s: %s does not name the branch: %s", cas, arch, fn.DisplayName(), rule.ID, rule.Message)
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no fixture function branches into its first 5 bytes: the test checks nothing")
	}
	t.Logf("%d functions branch into their first 5 bytes", found)
}
