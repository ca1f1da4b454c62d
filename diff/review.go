package diff

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Review warnings (kpatch's lesson): things a binary diff can see only in
// part, which a person should look at before a hot patch ships. They are
// WARN-* rules: never blocking by default, a policy may make them so.

// driftShare is the fraction of paired functions that must have changed
// for the toolchain-drift warning.
const driftShare = 0.5

// review adds the WARN-* rules and the report's review warnings; carried
// is what the patch carries (nil when nothing changed).
func review(r *Report, c *comparer, carried *Plan) {
	for i := range r.Functions {
		fr := &r.Functions[i]
		if fr.Status != Changed {
			continue
		}
		if w, ok := c.inlining(fr); ok {
			fr.Rules = append(fr.Rules, w)
		}
		if of := &c.old.fns[fr.old]; !of.Returns {
			fr.Rules = append(fr.Rules, Rule{ID: "WARN-NO-RETURN", Message: fmt.Sprintf("%s may never return (no path through it returns: a loop, or calls that do not return); a thread already inside keeps running the old code until it leaves, which may be never", fr.Name)})
		}
	}
	c.sharedChanges(r)
	if p := carried; p != nil {
		var writable []PlanData
		for _, d := range p.Data {
			if !d.ReadOnly {
				writable = append(writable, d)
			}
		}
		users := c.newUsers(writable)
		for k, d := range writable {
			if len(users[k]) != 1 {
				continue
			}
			w := Rule{ID: "WARN-STATIC-LOCAL", Message: fmt.Sprintf("%s is used only by %s, like a static local: its state starts over when the patch is applied, and what the old code kept in its old state is not carried over", d.Name, c.new.fns[users[k][0]].DisplayName())}
			for k := range r.Changes {
				if ch := &r.Changes[k]; ch.Kind == KindData && ch.Name == d.Name {
					ch.Rules = append(ch.Rules, w)
				}
			}
		}
	}
	if w, ok := c.drift(r); ok {
		r.Changes = append(r.Changes, Change{Kind: KindHeader, Name: "toolchain", Rules: []Rule{w}})
	}
	if r.Counts[Changed]+r.Counts[Added] > 0 {
		r.Warnings = append(r.Warnings, "WARN-HEAP: a binary diff cannot see what the new code assumes about data the old code already built (heap objects, caches, handles): review changes to how existing data is interpreted")
	}
}

// inlining warns when a changed function's set of callees differs: a call
// that disappeared (or appeared) while the callee still exists usually
// means the compiler inlined it (or stopped inlining it), and then the
// function changed because the callee's source did.
func (c *comparer) inlining(fr *Function) (Rule, bool) {
	oldCalls, newCalls := map[int]bool{}, map[int]bool{}
	for _, k := range c.old.calls(fr.old) {
		oldCalls[int(k)] = true
	}
	for _, k := range c.new.calls(fr.new) {
		newCalls[int(k)] = true
	}
	var gone, came []string
	for _, k := range slices.Sorted(maps.Keys(oldCalls)) {
		if n := c.p.o2n[k]; n >= 0 && !newCalls[n] && c.old.fns[k].Size <= maxInlineSize {
			gone = append(gone, c.old.fns[k].DisplayName())
		}
	}
	for _, k := range slices.Sorted(maps.Keys(newCalls)) {
		if o := c.p.n2o[k]; o >= 0 && !oldCalls[o] && c.new.fns[k].Size <= maxInlineSize {
			came = append(came, c.new.fns[k].DisplayName())
		}
	}
	switch {
	case len(gone) > 0:
		return Rule{ID: "WARN-INLINED", Message: fmt.Sprintf("%s no longer calls %s, which still exists: the compiler probably inlined it, so %s may have changed only because the callee's source did; review the callee's change too", fr.Name, strings.Join(gone, ", "), fr.Name)}, true
	case len(came) > 0:
		return Rule{ID: "WARN-INLINED", Message: fmt.Sprintf("%s now calls %s, which it did not call before: the compiler probably stopped inlining it; the change may come from the callee's source", fr.Name, strings.Join(came, ", "))}, true
	}
	return Rule{}, false
}

// maxSharedScan bounds the changed functions compared for shared changes:
// in a bigger change set, shared new bytes are codegen noise more often
// than an inlined helper.
const maxSharedScan = 256

// maxInlineSize is the largest callee (bytes) taken for an inlining
// candidate when a call appears or disappears.
const maxInlineSize = 128

// sharedChanges warns when several changed functions gained the same new
// code bytes (the same new constant, say): the mark of a helper inlined
// into each of them whose source changed, a helper that may exist in
// neither binary.
func (c *comparer) sharedChanges(r *Report) {
	var idx []int
	for i := range r.Functions {
		if r.Functions[i].Status == Changed {
			idx = append(idx, i)
		}
	}
	if len(idx) < 2 || len(idx) > maxSharedScan {
		return
	}
	grams := func(im *image, i int) map[uint32]bool {
		bp := getBuf()
		defer putBuf(bp)
		*bp = im.masked(i, (*bp)[:0])
		m := map[uint32]bool{}
		b := *bp
		for k := 0; k+4 <= len(b); k++ {
			m[uint32(b[k])|uint32(b[k+1])<<8|uint32(b[k+2])<<16|uint32(b[k+3])<<24] = true
		}
		return m
	}
	owners := map[uint32][]int{} // new 4-byte sequence -> report indexes
	for _, i := range idx {
		fr := &r.Functions[i]
		old := grams(c.old, fr.old)
		for g := range grams(c.new, fr.new) {
			if !old[g] && distinctBytes(g) >= 3 {
				owners[g] = append(owners[g], i)
			}
		}
	}
	partners := map[int]map[int]uint32{} // report index -> partner -> one shared sequence
	for _, g := range slices.Sorted(maps.Keys(owners)) {
		os := owners[g]
		if len(os) < 2 || len(os) > 8 {
			continue // a sequence many changed functions gained says nothing specific
		}
		for _, a := range os {
			for _, b := range os {
				if a != b {
					if partners[a] == nil {
						partners[a] = map[int]uint32{}
					}
					if _, ok := partners[a][b]; !ok {
						partners[a][b] = g
					}
				}
			}
		}
	}
	for _, i := range slices.Sorted(maps.Keys(partners)) {
		fr := &r.Functions[i]
		if slices.ContainsFunc(fr.Rules, func(x Rule) bool { return x.ID == "WARN-INLINED" }) {
			continue
		}
		var names []string
		var g uint32
		for _, b := range slices.Sorted(maps.Keys(partners[i])) {
			names = append(names, r.Functions[b].Name)
			if len(names) == 1 {
				g = partners[i][b]
			}
		}
		if len(names) > 5 {
			names = append(names[:5], "...")
		}
		fr.Rules = append(fr.Rules, Rule{ID: "WARN-INLINED", Message: fmt.Sprintf("%s gained the same new code as %s (bytes % x in each): probably a helper inlined into all of them changed, and the functions changed only through it; review the helper's change", fr.Name, strings.Join(names, ", "), []byte{byte(g), byte(g >> 8), byte(g >> 16), byte(g >> 24)})})
	}
}

// distinctBytes counts the different byte values of a 4-byte sequence.
func distinctBytes(g uint32) int {
	seen := map[byte]bool{}
	for k := 0; k < 4; k++ {
		seen[byte(g>>(8*k))] = true
	}
	return len(seen)
}

// newUsers returns, for each data object (sorted by NewRVA, as a plan
// lists them), the new functions that reference it, in index order: one
// pass over the references, however many objects there are.
func (c *comparer) newUsers(objs []PlanData) [][]int {
	out := make([][]int, len(objs))
	if len(objs) == 0 {
		return out
	}
	for i := range c.new.fps {
		for _, t := range c.new.toks(i) {
			if t.tk != tokRWData && t.tk != tokROData {
				continue
			}
			k := sort.Search(len(objs), func(k int) bool { return objs[k].NewRVA > t.target }) - 1
			if k >= 0 && t.target < objs[k].NewRVA+max(objs[k].Size, 1) {
				if u := out[k]; len(u) == 0 || u[len(u)-1] != i {
					out[k] = append(u, i)
				}
			}
		}
	}
	return out
}

// drift warns when most paired functions changed: the sign of a build
// with another compiler, linker or flags, from which hot patches should
// not be made (they would carry codegen noise, not the fix).
func (c *comparer) drift(r *Report) (Rule, bool) {
	paired := r.Counts[Changed] + r.Counts[Unchanged]
	if paired < 20 || float64(r.Counts[Changed]) < driftShare*float64(paired) {
		return Rule{}, false
	}
	share := 100 * r.Counts[Changed] / paired
	if a, b := richOf(c.old.f), richOf(c.new.f); a != b {
		return Rule{ID: "WARN-TOOLCHAIN-DRIFT", Message: fmt.Sprintf("%d%% of the functions present in both builds changed and the Rich header differs (%s -> %s): the new build used another compiler or linker. Build hot patches with the base's exact toolchain and flags, or the patch carries code-generation noise instead of the fix", share, a, b)}, true
	}
	return Rule{ID: "WARN-TOOLCHAIN-DRIFT", Message: fmt.Sprintf("%d%% of the functions present in both builds changed: the new build probably used another compiler version or other flags. Build hot patches with the base's exact toolchain and flags, or the patch carries code-generation noise instead of the fix", share)}, true
}
