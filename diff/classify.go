package diff

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hpbuild/hpbuild/pe"
)

// classify gives every function and change its rules and verdict, and the
// report its overall verdict. The rule catalogue is docs/rules.md.
func classify(r *Report, c *comparer) {
	entryOnly := entryOnlyFunctions(c.old)
	c.unchangedOld = map[int]bool{}
	for _, f := range r.Functions {
		if f.Status == Unchanged && !f.Folded {
			c.unchangedOld[f.old] = true
		}
	}
	shared := map[int]bool{} // old bodies that the new build split (identical code folding)
	for _, sp := range c.p.splits {
		shared[sp[0]] = true
	}
	// Sites are decoded on all cores first: a big update has tens of
	// thousands of changed functions.
	c.branchTargets()
	type siteResult struct {
		site *Site
		rule *Rule
	}
	siteOf := make([]siteResult, len(r.Functions))
	parallel(len(r.Functions), func(i int) {
		if fr := &r.Functions[i]; fr.Status == Changed && fr.old >= 0 {
			siteOf[i].site, siteOf[i].rule = c.site(fr.old)
		}
	})
	sites := map[int]*Site{}  // by new function index
	notes := map[int]string{} // why a changed function has no site
	for i := range r.Functions {
		fr := &r.Functions[i]
		switch fr.Status {
		case Unchanged:
			continue
		case Added:
			if rule, ok := c.dwarfUnwind(fr); ok {
				fr.Rules = append(fr.Rules, rule)
				break
			}
			fr.Rules = append(fr.Rules, Rule{ID: "HP-NEW-FUNC", Message: fmt.Sprintf("%s is new; the patch carries it if patched code reaches it", fr.Name)})
		case Removed:
			fr.Rules = append(fr.Rules, Rule{ID: "HP-REMOVED", Message: fmt.Sprintf("%s is gone from the new build; the old copy stays in memory, unreachable from new code", fr.Name)})
		case Changed:
			if entryOnly[fr.old] {
				fr.Rules = append(fr.Rules, Rule{ID: "RR-ENTRY", Message: fmt.Sprintf("%s runs only at load (from the entry point or a TLS callback) and has already run in every process; %s", fr.Name, fr.Reason)})
				break
			}
			if shared[fr.old] {
				rule, note := c.foldedRule(fr, fr.old)
				fr.Rules = append(fr.Rules, rule)
				notes[fr.new] = note
				break
			}
			if rule, ok := c.dwarfUnwind(fr); ok {
				fr.Rules = append(fr.Rules, rule)
				break
			}
			site, rule := siteOf[i].site, siteOf[i].rule
			if rule != nil {
				fr.Rules = append(fr.Rules, *rule)
				break
			}
			fr.Site = site
			sites[fr.new] = site
			fr.Rules = append(fr.Rules, Rule{ID: "HP-BODY", Message: fmt.Sprintf("%s changed (%s); a %s jump at its entry (site RVA %#x) sends callers to the new code", fr.Name, fr.Reason, site.Method, site.RVA)})
		}
	}
	for i := range r.Changes {
		ch := &r.Changes[i]
		if ch.data != nil {
			ch.Rules = append(ch.Rules, dataRule(ch, c))
		}
	}
	var carried *Plan
	if r.Counts[Changed]+r.Counts[Added] > 0 {
		carried = include(r, c, sites, notes)
	}
	review(r, c, carried)
	r.computeVerdicts()
}

// computeVerdicts derives every function's and change's verdict from its
// rules, and the report's from theirs.
func (r *Report) computeVerdicts() {
	for i := range r.Functions {
		fr := &r.Functions[i]
		if fr.Status != Unchanged {
			fr.Verdict = verdictOf(fr.Rules)
			// A function that differs is never "identical", whatever a
			// policy did to its rules: without a blocking rule it goes in
			// the patch.
			if fr.Verdict == "" || fr.Verdict == VerdictNeutral {
				fr.Verdict = VerdictHotpatchable
			}
		}
	}
	for i := range r.Changes {
		ch := &r.Changes[i]
		ch.Verdict = verdictOf(ch.Rules)
	}
	r.Verdict = VerdictIdentical
	for _, f := range r.Functions {
		r.Verdict = worse(r.Verdict, f.Verdict)
	}
	for _, ch := range r.Changes {
		r.Verdict = worse(r.Verdict, ch.Verdict)
	}
}

// verdictOf is the verdict a list of rules gives: reboot-required when one
// blocks (an RR- rule, or any rule a policy set to block), hot-patchable
// when one is HP-, neutral otherwise. A rule a policy set to warn does not
// block.
func verdictOf(rules []Rule) string {
	v := ""
	for _, r := range rules {
		switch {
		case r.Blocks():
			return VerdictRebootRequired
		case r.Policy == Warn:
			if v == "" {
				v = VerdictNeutral
			}
		case strings.HasPrefix(r.ID, "HP-"):
			v = VerdictHotpatchable
		case v == "":
			v = VerdictNeutral
		}
	}
	return v
}

// Blocks reports whether the rule makes its function or change
// reboot-required: an RR- rule no policy set to warn, or any rule a
// policy set to block.
func (r Rule) Blocks() bool {
	return r.Policy == Block || strings.HasPrefix(r.ID, "RR-") && r.Policy != Warn
}

// BlockingRules lists "ID: message" for every rule that makes the report
// reboot-required, functions first.
func (r *Report) BlockingRules() []string {
	var out []string
	add := func(rules []Rule) {
		for _, rl := range rules {
			if rl.Blocks() {
				out = append(out, rl.ID+": "+rl.Message)
			}
		}
	}
	for _, f := range r.Functions {
		add(f.Rules)
	}
	for _, c := range r.Changes {
		add(c.Rules)
	}
	return out
}

func worse(a, b string) string {
	rank := map[string]int{VerdictIdentical: 0, "": 0, VerdictNeutral: 0, VerdictHotpatchable: 1, VerdictRebootRequired: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// dataRule classifies a data object change.
func dataRule(ch *Change, c *comparer) Rule {
	d := ch.data
	if d.writable {
		if d.oldSize != d.newSize {
			return Rule{ID: "RR-DATA-LAYOUT", Message: fmt.Sprintf("data object %s changed size from %d to %d bytes; running code and data keep the old layout", ch.Name, d.oldSize, d.newSize)}
		}
		where, ov, nv := changedSpan(d.oldVal, d.newVal)
		return Rule{ID: "RR-DATA-INIT", Message: fmt.Sprintf("initial value of %s%s changed from %s to %s; running processes keep the value they have", ch.Name, where, ov, nv)}
	}
	if pointsIntoCode(c.old.f, d.oldRVA, uint32(d.oldSize)) || pointsIntoCode(c.new.f, d.newRVA, uint32(d.newSize)) {
		return Rule{ID: "RR-SHARED-CONST", Message: fmt.Sprintf("read-only table %s holds code pointers (a function-pointer table or vtable) and changed; running objects and copies keep pointers to the old table and entries", ch.Name)}
	}
	// Read-only: shared with unchanged code?
	for _, u := range c.roUsers(d.oldRVA, uint32(d.oldSize)) {
		if c.unchangedOld[u] {
			return Rule{ID: "RR-SHARED-CONST", Message: fmt.Sprintf("read-only data %s changed (%s -> %s) but unchanged code %s also uses it", ch.Name, preview(d.oldVal), preview(d.newVal), c.old.fns[u].DisplayName())}
		}
	}
	return Rule{ID: "HP-NEW-CONST", Message: fmt.Sprintf("read-only data %s changed (%s -> %s); the patch carries the new copy for the patched code", ch.Name, preview(d.oldVal), preview(d.newVal))}
}

// roUsers returns the old functions that reference read-only data in
// [rva, rva+size), in index order.
func (c *comparer) roUsers(rva, size uint32) []int {
	if c.roIndex == nil {
		c.roIndex = map[uint32][]int{}
		for o := range c.old.fps {
			for _, t := range c.old.toks(o) {
				if t.tk == tokROData {
					c.roIndex[t.target] = append(c.roIndex[t.target], o)
				}
			}
		}
		for t := range c.roIndex {
			c.roTargets = append(c.roTargets, t)
		}
		sort.Slice(c.roTargets, func(i, j int) bool { return c.roTargets[i] < c.roTargets[j] })
	}
	var out []int
	i := sort.Search(len(c.roTargets), func(i int) bool { return c.roTargets[i] >= rva })
	for ; i < len(c.roTargets) && c.roTargets[i] < rva+size; i++ {
		out = append(out, c.roIndex[c.roTargets[i]]...)
	}
	sort.Ints(out)
	return out
}

// changedSpan renders the part of two equal-sized values that differs:
// whole 32-bit words as integers when at most two differ, else hex.
func changedSpan(a, b []byte) (where, av, bv string) {
	i, j := 0, len(a)
	for i < j && a[i] == b[i] {
		i++
	}
	for j > i && a[j-1] == b[j-1] {
		j--
	}
	i &^= 3
	j = min((j+3)&^3, len(a))
	if i > 0 {
		where = fmt.Sprintf("+%#x", i)
	}
	if j-i <= 8 && (j-i)%4 == 0 {
		var as, bs []string
		for k := i; k < j; k += 4 {
			as, bs = append(as, showValue(a[k:k+4])), append(bs, showValue(b[k:k+4]))
		}
		return where, strings.Join(as, ", "), strings.Join(bs, ", ")
	}
	return where, showValue(a[i:j]), showValue(b[i:j])
}

func showValue(b []byte) string {
	switch len(b) {
	case 1:
		return fmt.Sprint(b[0])
	case 2:
		return fmt.Sprint(uint16(b[0]) | uint16(b[1])<<8)
	case 4:
		return fmt.Sprint(int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
	}
	return preview(b)
}

// pointsIntoCode reports whether a relocated pointer in [rva, rva+size)
// points into code.
func pointsIntoCode(f *pe.File, rva, size uint32) bool {
	for _, r := range f.RelocsIn(rva, size) {
		if t := pointerTarget(f, r.RVA, r.Width()); f.IsCode(t) {
			return true
		}
	}
	return false
}

// entryOnlyFunctions marks the functions reachable by direct calls from
// the entry point or TLS callbacks but not from any export: code that runs
// at load time only.
func entryOnlyFunctions(im *image) map[int]bool {
	reach := func(roots []int) map[int]bool {
		seen := map[int]bool{}
		stack := append([]int(nil), roots...)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[i] {
				continue
			}
			seen[i] = true
			for _, k := range im.calls(i) {
				stack = append(stack, int(k))
			}
			for _, k := range im.jumps(i) {
				stack = append(stack, int(k))
			}
		}
		return seen
	}
	var entry, other []int
	if i, ok := im.index(im.f.EntryPoint); ok {
		entry = append(entry, i)
	}
	if t := im.f.TLS; t != nil {
		for _, cb := range t.Callbacks {
			if i, ok := im.index(cb); ok {
				entry = append(entry, i)
			}
		}
	}
	for _, e := range im.f.Exports {
		if i, ok := im.index(e.RVA); ok {
			other = append(other, i)
		}
	}
	// Functions whose address is taken (callbacks) are roots too.
	for i := range im.fps {
		for _, t := range im.toks(i) {
			if t.tk == tokFunc && t.kind != pe.RefCall && t.kind != pe.RefBranch32 && t.kind != pe.RefBranch8 {
				other = append(other, int(t.fn))
			}
		}
	}
	e, o := reach(entry), reach(other)
	out := map[int]bool{}
	for i := range e {
		if !o[i] {
			out[i] = true
		}
	}
	return out
}

// dwarfUnwind returns RR-UNWIND when the function handles exceptions
// through DWARF unwind tables (gcc's x86 .eh_frame, with landing pads in
// its LSDA) in either build. Those tables are registered once, when the
// image loads (__register_frame_info), and the applier cannot register
// more for code it places: an exception reaching the patched function
// would find no frame description and terminate the process. x64 images
// unwind through .pdata, which the package carries and the applier
// registers (RtlAddFunctionTable), so this applies to DWARF images only.
func (c *comparer) dwarfUnwind(fr *Function) (Rule, bool) {
	check := func(im *image, i int) (pe.FDE, bool) {
		if i < 0 || len(im.f.EHFrame) == 0 || len(im.f.Unwind) > 0 {
			return pe.FDE{}, false
		}
		fn := &im.fns[i]
		for _, p := range fn.Parts() {
			if e, ok := im.f.FDEAt(p.RVA); ok && e.LSDA != 0 {
				return e, true
			}
		}
		return pe.FDE{}, false
	}
	for _, side := range []struct {
		im   *image
		i    int
		name string
	}{{c.old, fr.old, "old"}, {c.new, fr.new, "new"}} {
		if e, ok := check(side.im, side.i); ok {
			return Rule{ID: "RR-UNWIND", Message: fmt.Sprintf("%s catches or cleans up after exceptions through DWARF unwind tables (the %s build's .eh_frame entry %#x..%#x has landing pads in its LSDA at %s); those tables are registered once at load, so an exception reaching patched code would find no frame description and terminate the process. x64 builds (SEH unwinding through .pdata) do not have this limit", fr.Name, side.name, e.Begin, e.End, side.im.f.Resolve(e.LSDA))}, true
		}
	}
	return Rule{}, false
}

// foldedRule classifies a changed function whose old body was shared with
// other names (identical code folding) that the new build split apart. A
// jump at the shared entry would redirect the other names too, so none is
// written: the patch carries the new body and its callers, which the diff
// reports changed because they now call it, are patched to reach it. That
// works unless something other than patchable code holds the old address.
func (c *comparer) foldedRule(fr *Function, o int) (Rule, string) {
	of := &c.old.fns[o]
	// Names are compared undecorated: x86 symbols carry "_" and "@N"
	// around the exported name.
	plain := func(n string) string {
		if !c.old.f.Is64 {
			n = strings.TrimPrefix(n, "_")
			if i := strings.LastIndexByte(n, '@'); i > 0 {
				n = n[:i]
			}
		}
		return n
	}
	var others []string
	for _, n := range append([]string{of.Name}, of.Aliases()...) {
		if n != "" && plain(n) != plain(fr.Name) && !slices.ContainsFunc(others, func(o string) bool { return plain(o) == plain(n) }) {
			others = append(others, n)
		}
	}
	// Without symbols the names come from the new build's split bodies.
	for _, sp := range c.p.splits {
		if sp[0] == o {
			for _, n := range []int{sp[1], c.p.o2n[o]} {
				if n >= 0 && n != fr.new {
					if name := c.new.fns[n].DisplayName(); !slices.ContainsFunc(others, func(o string) bool { return plain(o) == plain(name) }) {
						others = append(others, name)
					}
				}
			}
		}
	}
	with := strings.Join(others, ", ")
	if with == "" {
		with = "another function"
	}
	for _, e := range c.old.f.Exports {
		if e.RVA == of.RVA && e.Name == fr.Name {
			return Rule{ID: "RR-FOLDED", Message: fmt.Sprintf("%s changed, but its old entry %#x is shared with %s (identical code folding) and is exported as %s: importers hold that address, and a jump there would redirect %s too", fr.Name, of.RVA, with, e.Name, with)}, ""
		}
	}
	if c.addressTaken(of.RVA) {
		return Rule{ID: "RR-FOLDED", Message: fmt.Sprintf("%s changed, but its old entry %#x is shared with %s (identical code folding) and its address is stored or taken: holders of the pointer cannot be told apart, and a jump there would redirect %s too", fr.Name, of.RVA, with, with)}, ""
	}
	note := fmt.Sprintf("old entry %#x is shared with %s (identical code folding): no jump is written; callers are patched to the new body", of.RVA, with)
	return Rule{ID: "HP-BODY", Message: fmt.Sprintf("%s changed (%s); its old entry %#x is shared with %s (identical code folding), so it is left alone: the patch carries the new %s and the callers that now reach it are patched", fr.Name, fr.Reason, of.RVA, with, fr.Name)}, note
}

// addressTaken reports whether some old code or data holds rva as a
// pointer rather than calling or jumping to it.
func (c *comparer) addressTaken(rva uint32) bool {
	f := c.old.f
	for i := range c.old.fns {
		for _, r := range c.old.fns[i].Refs {
			if r.Target == rva && r.Kind != pe.RefCall && r.Kind != pe.RefBranch8 && r.Kind != pe.RefBranch32 {
				return true
			}
		}
	}
	for _, r := range f.Relocs {
		if f.IsCode(r.RVA) {
			continue // fields of instructions: seen as references above
		}
		if pointerTarget(f, r.RVA, r.Width()) == rva {
			return true
		}
	}
	if f.TLS != nil && slices.Contains(f.TLS.Callbacks, rva) {
		return true
	}
	return false
}
