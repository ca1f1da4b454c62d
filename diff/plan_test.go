package diff

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hpbuild/hpbuild/pe"
)

// fieldRVA returns the RVA of code-space offset off of fn.
func fieldRVA(fn *pe.Function, off uint32) uint32 {
	cs := spaceOf(fn)
	for i := len(cs.parts) - 1; i >= 0; i-- {
		if off >= cs.base[i] {
			return cs.parts[i].RVA + off - cs.base[i]
		}
	}
	return 0
}

// TestPlanResolvesToSameNames: on every hot-patchable fixture with
// symbols, each fixup that points into the old image names the same thing
// there as the new code's reference names in the new image: the same
// function (at the same offset), the same data symbol at the same offset,
// the same import.
func TestPlanResolvesToSameNames(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/*/expect.json")
	checked := 0
	for _, p := range dirs {
		dir := filepath.Dir(p)
		for _, arch := range []string{"x64", "x86"} {
			o, n := openPair(t, dir, arch, "symbols")
			r := Compare(o, n)
			if r.Verdict != VerdictHotpatchable {
				continue
			}
			plan := r.Plan()
			if plan == nil || len(plan.Functions) == 0 {
				t.Errorf("%s/%s: hot-patchable but the plan carries no function", dir, arch)
				continue
			}
			for _, pf := range plan.Functions {
				refAt := map[uint32]pe.Ref{}
				for _, ref := range pf.New.Refs {
					refAt[ref.At] = ref
				}
				for _, fx := range pf.Fixups {
					ref, ok := refAt[fieldRVA(pf.New, fx.Off)]
					if !ok {
						t.Errorf("%s/%s %s: fixup at +%#x has no reference in the new image", dir, arch, pf.Name, fx.Off)
						continue
					}
					checked++
					nt := n.Resolve(ref.Target)
					switch fx.Target {
					case TargetOld:
						ot := o.Resolve(fx.RVA)
						if nt.Kind != ot.Kind || nt.Offset != ot.Offset || nt.Symbol != ot.Symbol ||
							(nt.Function == nil) != (ot.Function == nil) ||
							nt.Function != nil && !sameFunction(nt.Function, ot.Function) {
							t.Errorf("%s/%s %s +%#x: old target %s (%#x), new code means %s", dir, arch, pf.Name, fx.Off, ot, fx.RVA, nt)
						}
					case TargetImport:
						if s, ok := n.ImportAt(ref.Target); !ok || s.String() != fx.Name {
							t.Errorf("%s/%s %s +%#x: import %s, new code means %s", dir, arch, pf.Name, fx.Off, fx.Name, nt)
						}
					case TargetPatchCode:
						if nt.Function == nil || nt.Function.RVA != fx.Func {
							t.Errorf("%s/%s %s +%#x: patch code %#x, new code means %s", dir, arch, pf.Name, fx.Off, fx.Func, nt)
						}
					}
				}
				if pf.Old != nil && pf.Site == nil && pf.SiteNote == "" {
					t.Errorf("%s/%s %s: replaces %s but has neither a site nor a reason for none", dir, arch, pf.Name, pf.Old.DisplayName())
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d fixups checked", checked)
	}
}

// sameFunction: the same name, or for unnamed functions the same size.
func sameFunction(a, b *pe.Function) bool {
	if a.Name == "" || b.Name == "" {
		return a.Name == b.Name && a.Size == b.Size
	}
	return a.Name == b.Name
}

// planOf diffs a fixture pair with symbols and returns the report.
func planOf(t *testing.T, c, arch string) *Report {
	t.Helper()
	o, n := openPair(t, "../testdata/"+c, arch, "symbols")
	return Compare(o, n)
}

func planFunc(p *Plan, name string, x86 bool) *PlanFunction {
	for i := range p.Functions {
		if cName(p.Functions[i].Name, x86) == name {
			return &p.Functions[i]
		}
	}
	return nil
}

// TestPlanIncludes: what the patch carries for the fixtures that need
// more than the changed function itself.
func TestPlanIncludes(t *testing.T) {
	for _, arch := range []string{"x64", "x86"} {
		x86 := arch == "x86"
		// A new function called from changed code travels with it, and
		// the call is linked inside the patch.
		p := planOf(t, "new_function", arch).Plan()
		if f := planFunc(p, "saturate", x86); f == nil || f.Old != nil || f.Site != nil {
			t.Errorf("%s new_function: saturate not carried as a new function: %+v", arch, f)
		}
		if f := planFunc(p, "normalize_sum", x86); f == nil || f.Site == nil ||
			!slices.ContainsFunc(f.Fixups, func(x Fixup) bool { return x.Target == TargetPatchCode && cName(x.Name, x86) == "saturate" }) {
			t.Errorf("%s new_function: normalize_sum does not call the carried saturate", arch)
		}
		// A new import is resolved by the applier.
		if p := planOf(t, "new_import", arch).Plan(); !slices.Contains(p.Imports, "user32.dll!MessageBeep") {
			t.Errorf("%s new_import: plan imports %v", arch, p.Imports)
		}
		// A changed string is carried as a new constant.
		p = planOf(t, "const_string", arch).Plan()
		if !slices.ContainsFunc(p.Data, func(d PlanData) bool {
			return d.ReadOnly && bytes.HasPrefix(d.Init, []byte("Hello from hpbuild 1.1"))
		}) {
			t.Errorf("%s const_string: the new string is not carried: %+v", arch, p.Data)
		}
		// The split of a folded body: no jump at the shared entry, the
		// caller is linked to the carried body.
		p = planOf(t, "icf_fold_split", arch).Plan()
		if f := planFunc(p, "weight_b", x86); f == nil || f.Site != nil || f.SiteNote == "" {
			t.Errorf("%s icf_fold_split: weight_b should be carried without a site: %+v", arch, f)
		}
		if f := planFunc(p, "score", x86); f == nil ||
			!slices.ContainsFunc(f.Fixups, func(x Fixup) bool { return x.Target == TargetPatchCode && cName(x.Name, x86) == "weight_b" }) {
			t.Errorf("%s icf_fold_split: score does not call the carried weight_b", arch)
		}
		// A jump table outside the code is rebuilt for the new code.
		p = planOf(t, "switch_table", arch).Plan()
		if f := planFunc(p, "apply_op", x86); f == nil || len(f.Tables) == 0 || len(f.Tables[0].Targets) != 10 {
			t.Errorf("%s switch_table: apply_op's 10-entry jump table not carried: %+v", arch, f)
		}
	}
}

// TestImportNoLongerUsed: new_import read backwards (the new build as the
// old one) drops the user32 import: NEUTRAL-IMPORT-UNUSED, and the change
// itself stays hot-patchable.
func TestImportNoLongerUsed(t *testing.T) {
	for _, arch := range []string{"x64", "x86"} {
		o, n := openPair(t, "../testdata/new_import", arch, "symbols")
		r := Compare(n, o)
		found := false
		for _, c := range r.Changes {
			for _, x := range c.Rules {
				if x.ID == "NEUTRAL-IMPORT-UNUSED" && c.Name == "user32.dll!MessageBeep" && c.Verdict == VerdictNeutral {
					found = true
				}
			}
		}
		if !found || r.Verdict != VerdictHotpatchable {
			t.Errorf("%s: NEUTRAL-IMPORT-UNUSED for MessageBeep %v, verdict %s", arch, found, r.Verdict)
		}
	}
}
