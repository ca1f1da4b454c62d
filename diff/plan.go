package diff

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hpbuild/hpbuild/pe"
)

// Plan is what a hot patch for a report must carry (kpatch's "include"
// phase): the code of the changed functions and of the new functions they
// reach, the new read-only constants and data they use, and, for every
// reference from that code, where it must point once placed in the
// running process.
type Plan struct {
	Functions []PlanFunction // in new-image RVA order
	Data      []PlanData     // in new-image RVA order
	Imports   []string       // "dll!name" imports the old image lacks, sorted
}

// PlanFunction is one function the patch carries.
type PlanFunction struct {
	Name     string
	New      *pe.Function // in the new image: its code is the patch's code
	Old      *pe.Function // the function it replaces; nil for a new function
	Site     *Site        // where the old entry takes its jump; nil when none is written
	SiteNote string       // why there is no site, when Site is nil and Old is not
	Fixups   []Fixup      // sorted by Off
	// Tables are the function's jump tables, rebuilt for the new code:
	// TargetJumpTable fixups name them by index.
	Tables []PlanTable
}

// PlanTable is a jump table of a carried function.
type PlanTable struct {
	NewRVA  uint32           // where the new image has it
	InCode  bool             // inside the function's code (then part of its blob)
	Kind    pe.JumpTableKind // how entries encode targets
	Entry   uint8            // entry size in bytes
	Targets []uint32         // code-space offsets of the targets, in table order
}

// PlanData is one data object the patch carries.
type PlanData struct {
	Name     string
	NewRVA   uint32 // in the new image
	Size     uint32
	Init     []byte  // initial contents; all zero (or nil) for zero-initialised data
	ReadOnly bool    // a constant (string, float, table)
	Fixups   []Fixup // relocated pointers inside it, Off relative to NewRVA

	nonzero bool // Init has a byte other than zero
}

// TargetKind says what a fixup points at once the patch is placed.
type TargetKind string

// Fixup target kinds.
const (
	// TargetOld: an RVA of the old (running) image.
	TargetOld TargetKind = "old"
	// TargetPatchCode: a place in a function the patch carries, given by
	// that function's new-image RVA (Func) and a code-space offset (Off).
	TargetPatchCode TargetKind = "patch-code"
	// TargetPatchData: a place in a data object the patch carries, given
	// by its new-image RVA (Func) and an offset (Off).
	TargetPatchData TargetKind = "patch-data"
	// TargetImport: an import the applier resolves by name; RVA is the
	// old image's IAT slot when the old image imports it too, else 0.
	TargetImport TargetKind = "import"
	// TargetJumpTable: one of the function's own jump tables (Off is its
	// index in New.JumpTables), rebuilt for the new code.
	TargetJumpTable TargetKind = "jump-table"
	// TargetUnresolved: nothing in the running image or the patch is known
	// to correspond; a rule makes the function reboot-required, and no
	// package may be built with such a fixup.
	TargetUnresolved TargetKind = "unresolved"
)

// Fixup is one field of carried code or data that must be rewritten when
// the patch is placed.
type Fixup struct {
	Off    uint32     // code-space offset of the field in the function (data: offset in the object)
	Width  uint8      // field width in bytes
	Kind   pe.RefKind // how the field encodes its target
	Target TargetKind
	RVA    uint32 // TargetOld, TargetImport: old-image RVA
	Func   uint32 // TargetPatchCode, TargetPatchData: new-image RVA of the carried object
	Sub    uint32 // TargetPatchCode, TargetPatchData: offset inside it
	Name   string // symbolic name of the target, for people and for imports ("dll!name")
}

// Plan returns what a hot patch for the report must carry, resolved in
// full (every fixup); nil when nothing changed. The first call does the
// work; the report keeps the result.
func (r *Report) Plan() *Plan {
	if r.plan == nil && r.planInput != nil {
		in := r.planInput
		r.plan = newPlanner(r, in.c, true).run(in.sites, in.notes)
	}
	return r.plan
}

// planner builds the Plan and the rules it implies.
type planner struct {
	c           *comparer
	r           *Report
	record      bool              // keep fixups and tables (Plan), not just the rules they imply
	cur         int               // the carried function whose references are being resolved
	carried     map[int]bool      // new function indexes the patch carries
	queue       []int             // carried functions whose references are not resolved yet
	oldLeft     []uint32          // unexplainedOld, once computed
	slots       map[string]uint32 // lower-cased "dll!name" -> old IAT slot, once made
	oldSymbols  map[string]uint32 // dataSymbols of the old image, once made
	oldLeftDone bool
	// tableRules are the changes that report carried jump tables.
	tableRules []Change
	byNew      map[int]*Function
	data       map[uint32]*PlanData // carried data by new RVA
	imports    map[string]bool
	// rules found while resolving references, per new function index.
	rules map[int][]Rule
}

// include decides what the patch carries (returning the plan without its
// fixups, which Report.Plan resolves when asked), starting from the changed
// functions that can take a jump (or whose callers are patched), adding
// the new functions they reach, and resolving every reference.
func include(r *Report, c *comparer, sites map[int]*Site, notes map[int]string) *Plan {
	pl := newPlanner(r, c, false)
	plan := pl.run(sites, notes)
	// Rules found while resolving go to the functions that caused them.
	for _, n := range slices.Sorted(maps.Keys(pl.rules)) {
		if fr := pl.byNew[n]; fr != nil {
			fr.Rules = append(fr.Rules, pl.rules[n]...)
		}
	}
	// Carried objects are changes of their own, unless the data
	// comparison already reported them.
	type span struct{ lo, hi uint32 }
	var spans []span
	for _, ch := range r.Changes {
		if d := ch.data; d != nil {
			spans = append(spans, span{d.newRVA, d.newRVA + uint32(max(d.newSize, 1))})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmpU64(uint64(a.lo), uint64(b.lo)) })
	reported := func(rva uint32) bool {
		i, _ := slices.BinarySearchFunc(spans, rva, func(s span, v uint32) int { return cmpU64(uint64(s.lo), uint64(v)) })
		// spans may overlap: look back over the ones starting at or below rva.
		if i < len(spans) && spans[i].lo == rva {
			return true
		}
		for j := i - 1; j >= 0 && j >= i-8; j-- {
			if rva < spans[j].hi {
				return true
			}
		}
		return false
	}
	for _, d := range plan.Data {
		if !reported(d.NewRVA) {
			r.Changes = append(r.Changes, pl.dataChange(&d))
		}
	}
	r.Changes = append(r.Changes, pl.tableRules...)
	r.planInput = &planInput{c: c, sites: sites, notes: notes}
	return plan
}

// planInput is what Plan needs to resolve the plan in full, kept from the
// comparison: resolving every reference of every carried function costs
// memory that a report which is only printed never needs.
type planInput struct {
	c     *comparer
	sites map[int]*Site
	notes map[int]string
}

func newPlanner(r *Report, c *comparer, record bool) *planner {
	pl := &planner{c: c, r: r, record: record, carried: map[int]bool{}, byNew: map[int]*Function{},
		data: map[uint32]*PlanData{}, imports: map[string]bool{}, rules: map[int][]Rule{}}
	for i := range r.Functions {
		if fr := &r.Functions[i]; fr.new >= 0 {
			pl.byNew[fr.new] = fr
		}
	}
	return pl
}

// run carries the changed functions and, resolving their references, the
// new functions and data they reach, which are resolved in turn. Fixups
// are kept only when the planner records.
func (pl *planner) run(sites map[int]*Site, notes map[int]string) *Plan {
	c := pl.c
	for i := range pl.r.Functions {
		if fr := &pl.r.Functions[i]; fr.Status == Changed && fr.new >= 0 {
			pl.carryFunc(fr.new)
		}
	}
	plan := &Plan{}
	for len(pl.queue) > 0 {
		n := pl.queue[0]
		pl.queue = pl.queue[1:]
		fr := pl.byNew[n]
		pf := PlanFunction{Name: c.new.fns[n].DisplayName(), New: &c.new.fns[n]}
		if fr != nil && fr.old >= 0 {
			pf.Old = &c.old.fns[fr.old]
			pf.Site = sites[n]
			pf.SiteNote = notes[n]
		}
		pl.cur = n
		pf.Fixups = pl.fixups(n)
		pf.Tables = pl.tables(n)
		if pl.record {
			plan.Functions = append(plan.Functions, pf)
		}
	}
	slices.SortFunc(plan.Functions, func(a, b PlanFunction) int { return int(a.New.RVA) - int(b.New.RVA) })
	for _, rva := range slices.Sorted(maps.Keys(pl.data)) {
		plan.Data = append(plan.Data, *pl.data[rva])
	}
	plan.Imports = slices.Sorted(maps.Keys(pl.imports))
	return plan
}

// tables lists carried function n's jump tables; those outside its code
// are new constants of the patch, reported as such.
func (pl *planner) tables(n int) []PlanTable {
	c := pl.c
	fn := &c.new.fns[n]
	cs := spaceOf(fn)
	var out []PlanTable
	for k, jt := range fn.JumpTables() {
		_, _, in := cs.offset(jt.RVA)
		out = append(out, PlanTable{NewRVA: jt.RVA, InCode: in, Kind: jt.Kind, Entry: jt.Entry, Targets: c.new.fps[n].tables()[k]})
		if !in && !pl.record { // reported once, by the comparison's pass
			pl.tableRules = append(pl.tableRules, Change{Kind: KindData, Name: fmt.Sprintf("%s jump table %d", fn.DisplayName(), k),
				Rules: []Rule{{ID: "HP-NEW-CONST", Message: fmt.Sprintf("jump table %d of %s (%d entries, at %s in the new build) is rebuilt for the new code; the patch carries it", k, fn.DisplayName(), len(jt.Targets), c.new.f.Resolve(jt.RVA))}}})
		}
	}
	return out
}

// carryFunc adds new function n to what the patch carries.
func (pl *planner) carryFunc(n int) {
	if !pl.carried[n] {
		pl.carried[n] = true
		pl.queue = append(pl.queue, n)
	}
}

// fixups resolves every reference of carried new function n.
func (pl *planner) fixups(n int) []Fixup {
	c := pl.c
	fn := &c.new.fns[n]
	cs := spaceOf(fn)
	var out []Fixup
	// Branches between the function's own parts: the carried code is one
	// blob (main extent, then chunks), so they are re-linked inside it.
	toks := c.new.toks(n)
	for i := range toks {
		t := &toks[i]
		fx := Fixup{Off: t.off, Width: t.width, Kind: t.kind}
		switch t.tk {
		case tokSelf:
			fx.Target, fx.Func, fx.Sub = TargetPatchCode, fn.RVA, cs.base[t.target>>24]+t.target&0xffffff
			if pl.record {
				fx.Name = fmt.Sprintf("%s+%#x", fn.DisplayName(), fx.Sub)
			}
		case tokTable:
			fx.Target, fx.Sub = TargetJumpTable, t.target
			if pl.record {
				fx.Name = fmt.Sprintf("%s jump table %d", fn.DisplayName(), t.target)
			}
		case tokFunc, tokCode:
			pl.codeTarget(&fx, t)
		case tokImport:
			name := c.new.tokName(t)
			fx.Target, fx.Name = TargetImport, name
			if rva, ok := pl.importSlot(name); ok {
				fx.RVA = rva
			} else {
				pl.imports[name] = true
			}
		case tokHeader:
			fx.Target, fx.RVA, fx.Name = TargetOld, t.target, "__ImageBase"
			if t.target != 0 && pl.record {
				fx.Name = fmt.Sprintf("__ImageBase+%#x", t.target)
			}
		case tokROData, tokRWData:
			pl.dataTarget(&fx, n, t)
		case tokUnknown:
			continue // an absolute value outside the image: kept as it is
		}
		if pl.record {
			out = append(out, fx)
		}
	}
	return out
}

// codeTarget resolves a reference to a function (or a place in one).
func (pl *planner) codeTarget(fx *Fixup, t *tok) {
	c := pl.c
	j := int(t.fn)
	tf := &c.new.fns[j]
	if c.p.n2o[j] < 0 {
		pl.carryFunc(j) // a new function: it travels with the code that reaches it
	}
	var sub uint32 // offset from the target function's entry, in code space
	inside := false
	if t.tk == tokCode {
		cs := spaceOf(tf)
		if a, ok := cs.anchor(t.target); ok {
			sub, inside = cs.base[a>>24]+a&0xffffff, true
		} else {
			sub = t.target - tf.RVA // code no function covers, anchored to the one before
		}
	}
	if pl.carried[j] && (t.tk == tokFunc || inside) {
		fx.Target, fx.Func, fx.Sub = TargetPatchCode, tf.RVA, sub
		if pl.record {
			fx.Name = tf.DisplayName()
			if sub != 0 {
				fx.Name += fmt.Sprintf("+%#x", sub)
			}
		}
		return
	}
	o := c.p.n2o[j]
	if o < 0 || pl.carried[j] {
		// Code no function covers, next to a function that is new or
		// changed: where it is in the running image is unknown, and it is
		// not part of any carried blob.
		pl.unresolved(fx, fmt.Sprintf("code at %#x (after %s)", t.target, tf.DisplayName()), Rule{ID: "RR-UNDECODABLE", Message: fmt.Sprintf(
			"%%s refers to code at new RVA %#x that no function covers, next to %s, which is new or changed: hpbuild cannot tell where that code is in the running image, nor carry it", t.target, tf.DisplayName())})
		return
	}
	of := &c.old.fns[o]
	fx.Target = TargetOld
	switch {
	case t.tk == tokFunc:
		fx.RVA = of.RVA
	case inside:
		// The same place of the unchanged old function: same parts, same
		// offsets (its masked code is equal).
		ocs, ncs := spaceOf(of), spaceOf(tf)
		a, _ := ncs.anchor(t.target)
		fx.RVA = ocs.parts[a>>24].RVA + a&0xffffff
	default:
		fx.RVA = of.RVA + sub
	}
	if pl.record {
		fx.Name = of.DisplayName()
		if t.tk != tokFunc {
			fx.Name += fmt.Sprintf("+%#x", sub)
		}
	}
}

// unresolved marks a fixup whose target cannot be placed and gives the
// function being resolved the rule (its message has one %s: the
// function's name).
func (pl *planner) unresolved(fx *Fixup, name string, rule Rule) {
	fx.Target, fx.RVA, fx.Name = TargetUnresolved, 0, name
	if pl.cur < 0 {
		return
	}
	rule.Message = fmt.Sprintf(rule.Message, pl.c.new.fns[pl.cur].DisplayName())
	if !slices.Contains(pl.rules[pl.cur], rule) {
		pl.rules[pl.cur] = append(pl.rules[pl.cur], rule)
	}
}

// importSlot returns the old image's IAT slot for "dll!name" (names
// compared without case, as the loader does for DLL names).
func (pl *planner) importSlot(name string) (uint32, bool) {
	if pl.slots == nil {
		pl.slots = map[string]uint32{}
		for _, imp := range pl.c.old.f.Imports {
			for _, fn := range imp.Funcs {
				k := strings.ToLower(pe.ImportSlot{DLL: imp.DLL, Name: fn.Name, Ordinal: fn.Ordinal}.String())
				if _, dup := pl.slots[k]; !dup {
					pl.slots[k] = fn.Slot
				}
			}
		}
	}
	rva, ok := pl.slots[strings.ToLower(name)]
	return rva, ok
}

// oldDataSymbols is dataSymbols of the old image, made once.
func (pl *planner) oldDataSymbols() map[string]uint32 {
	if pl.oldSymbols == nil {
		pl.oldSymbols = dataSymbols(pl.c.old.f)
	}
	return pl.oldSymbols
}

// dataTarget resolves a reference from carried function n to
// data: the corresponding old object when there is one, a carried copy for
// constants and new objects, and a rule when neither can be shown.
func (pl *planner) dataTarget(fx *Fixup, n int, t *tok) {
	if rva, name, ok := pl.oldData(n, t); ok {
		fx.Target, fx.RVA, fx.Name = TargetOld, rva, name
		return
	}
	obj, off, name, newObj := pl.newObject(t.target)
	if !newObj && t.tk == tokRWData && len(pl.unexplainedOld()) == 0 {
		// Every writable object the old code references corresponds to
		// one of the new image's, so this one corresponds to none: new.
		newObj = true
	}
	if t.tk == tokROData || newObj {
		d := pl.carry(obj, name, t.tk == tokROData)
		fx.Target, fx.Func, fx.Sub, fx.Name = TargetPatchData, d.NewRVA, off, name
		return
	}
	// Writable data with no counterpart that cannot be shown to be new: a
	// copy would be a second variable beside the one running code uses.
	pl.unresolved(fx, name, Rule{ID: "RR-DATA-UNMATCHED", Message: fmt.Sprintf(
		"%%s uses writable data %s, which matches no object of the old image and is not named by a symbol the old image lacks; carrying a fresh copy could split one variable in two. Symbols (a map file or PDB) for both builds would settle it", name)})
}

// oldData finds the old-image address corresponding to a new data
// reference: by a symbol both images name once, by the correspondence the
// unchanged code voted for, or by the same reference of the paired old
// function when nothing contradicts it.
func (pl *planner) oldData(n int, t *tok) (uint32, string, bool) {
	c := pl.c
	nt := c.new.f.Resolve(t.target)
	if nt.Symbol != "" && c.newSyms[nt.Symbol] == 1 {
		if c.oldSyms[nt.Symbol] == 1 {
			if rva, ok := pl.oldDataSymbols()[nt.Symbol]; ok && rva != 0 {
				if t.tk == tokRWData || pl.roSame(rva+nt.Offset, t) {
					return rva + nt.Offset, nt.String(), true
				}
			}
		}
		if c.oldSyms[nt.Symbol] == 0 {
			return 0, "", false // a symbol only the new build has: a new object
		}
	}
	if o, ok := c.inv[t.target]; ok {
		if t.tk == tokRWData || pl.roSame(o, t) {
			return o, c.old.f.Resolve(o).String(), true
		}
		return 0, "", false
	}
	// The paired old function's references: the objects neither side's
	// correspondence explains, taken in order of first use, pair up when
	// both functions use the same number of them.
	if o := c.p.n2o[n]; o >= 0 {
		olds := pl.unexplained(c.old, o, t.tk, func(x uint32) bool { _, ok := c.dataMap[x]; return ok })
		news := pl.unexplained(c.new, n, t.tk, func(y uint32) bool { _, ok := c.inv[y]; return ok })
		if k := slices.Index(news, t.target); k >= 0 && len(olds) == len(news) {
			x := olds[k]
			if t.tk == tokRWData || pl.roSame(x, t) {
				return x, c.old.f.Resolve(x).String(), true
			}
		}
	}
	return 0, "", false
}

// unexplainedOld returns the writable objects old code references that
// have no counterpart in the correspondence map, sorted.
func (pl *planner) unexplainedOld() []uint32 {
	if !pl.oldLeftDone {
		pl.oldLeftDone = true
		c := pl.c
		set := map[uint32]bool{}
		for i := range c.old.fps {
			for _, t := range c.old.toks(i) {
				if _, ok := c.dataMap[t.target]; t.tk == tokRWData && !ok {
					set[t.target] = true
				}
			}
		}
		pl.oldLeft = slices.Sorted(maps.Keys(set))
	}
	return pl.oldLeft
}

// unexplained lists the distinct data targets of kind tk that function i
// of im references and that explained does not account for, in order of
// first use.
func (pl *planner) unexplained(im *image, i int, tk tokKind, explained func(uint32) bool) []uint32 {
	var out []uint32
	for _, t := range im.toks(i) {
		if t.tk == tk && !explained(t.target) && !slices.Contains(out, t.target) {
			out = append(out, t.target)
		}
	}
	return out
}

// roSame reports whether the old read-only object at o has the contents of
// the new one t reads, so that the new code may read the old copy.
func (pl *planner) roSame(o uint32, t *tok) bool {
	c := pl.c
	return c.roEqual(&tok{tk: tokROData, target: o, access: t.access}, t)
}

// newObject returns the extent of the new data object containing rva: the
// symbol's when one names it (newObj: the old image lacks that symbol),
// else the object starting at rva.
func (pl *planner) newObject(rva uint32) (start, off uint32, name string, newObj bool) {
	c := pl.c
	nt := c.new.f.Resolve(rva)
	if nt.Symbol != "" && c.newSyms[nt.Symbol] == 1 {
		return rva - nt.Offset, nt.Offset, nt.Symbol, c.oldSyms[nt.Symbol] == 0
	}
	return rva, 0, nt.String(), false
}

// carry adds the new data object at rva to the plan.
func (pl *planner) carry(rva uint32, name string, ro bool) *PlanData {
	if d, ok := pl.data[rva]; ok {
		return d
	}
	c := pl.c
	var b []byte
	if c.new.f.Resolve(rva).Symbol != "" {
		b = c.new.symbolObject(rva)
	}
	if len(b) == 0 {
		b = c.new.object(rva)
		if ro {
			if s, ok := cString(b); ok {
				b = s
			}
		}
	}
	d := &PlanData{Name: name, NewRVA: rva, Size: uint32(len(b)), ReadOnly: ro,
		nonzero: slices.ContainsFunc(b, func(x byte) bool { return x != 0 })}
	if d.nonzero && pl.record {
		d.Init = b
	}
	pl.data[rva] = d
	for _, rl := range c.new.f.RelocsIn(rva, d.Size) {
		w := rl.Width()
		tgt := pointerTarget(c.new.f, rl.RVA, w)
		kind := pe.RefAbs32
		if w == 8 {
			kind = pe.RefAbs64
		}
		fx := Fixup{Off: rl.RVA - rva, Width: uint8(w), Kind: kind}
		pl.pointerTarget(&fx, tgt)
		if pl.record {
			d.Fixups = append(d.Fixups, fx)
		}
	}
	return d
}

// pointerTarget resolves a relocated pointer inside carried data.
func (pl *planner) pointerTarget(fx *Fixup, tgt uint32) {
	c := pl.c
	if j, ok := c.new.index(tgt); ok {
		pl.codeTarget(fx, &tok{tk: tokFunc, fn: int32(j), target: tgt})
		return
	}
	if t := c.new.f.Resolve(tgt); t.Kind == pe.TargetCode && t.Function != nil {
		j, _ := c.new.index(t.Function.RVA)
		pl.codeTarget(fx, &tok{tk: tokCode, fn: int32(j), target: tgt})
		return
	}
	if o, ok := c.inv[tgt]; ok {
		fx.Target, fx.RVA, fx.Name = TargetOld, o, c.old.f.Resolve(o).String()
		return
	}
	start, off, name, _ := pl.newObject(tgt)
	d := pl.carry(start, name, !writable(c.new.f, tgt))
	fx.Target, fx.Func, fx.Sub, fx.Name = TargetPatchData, d.NewRVA, off, name
}

func writable(f *pe.File, rva uint32) bool {
	s := f.Section(rva)
	return s != nil && s.Writable()
}

// dataChange reports a carried object as a change of its own.
func (pl *planner) dataChange(d *PlanData) Change {
	var msg string
	switch {
	case d.ReadOnly:
		msg = fmt.Sprintf("constant %s (%d bytes) is new or differs for the patched code; the patch carries a copy", d.Name, d.Size)
	case !d.nonzero:
		msg = fmt.Sprintf("new global %s (%d bytes) is used only by patched code; the patch carries it, and it starts at zero when the patch is applied, not when the process started", d.Name, d.Size)
	default:
		msg = fmt.Sprintf("new global %s (%d bytes) is used only by patched code; the patch carries it with its initial value, set when the patch is applied, not when the process started", d.Name, d.Size)
	}
	id := "HP-NEW-DATA"
	if d.ReadOnly {
		id = "HP-NEW-CONST"
	}
	return Change{Kind: KindData, Name: d.Name, Rules: []Rule{{ID: id, Message: msg}}}
}
