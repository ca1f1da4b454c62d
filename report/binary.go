package report

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/pe"
)

// Verdicts of a binary in a document, besides diff.VerdictIdentical,
// diff.VerdictHotpatchable and diff.VerdictRebootRequired (the bundle
// index uses the same strings).
const (
	VerdictAdded       = "added"       // only in the new tree
	VerdictRemoved     = "removed"     // only in the old tree
	VerdictUnsupported = "unsupported" // a PE image hpbuild cannot compare (machine, format)
	VerdictNotPE       = "not-pe"      // not a PE image
)

// verdictOrder is the order of binaries in a document and of the summary
// counts: what blocks a release first, what needs nothing last.
var verdictOrder = []string{
	diff.VerdictRebootRequired, VerdictUnsupported, diff.VerdictHotpatchable,
	VerdictAdded, VerdictRemoved, VerdictNotPE, diff.VerdictIdentical,
}

func verdictRank(v string) int { return slices.Index(verdictOrder, v) }

// Binary is one file of a release: its verdict and, when both builds were
// compared, the diff report and the images.
type Binary struct {
	Path    string       // path relative to the tree roots, e.g. "bin/a.dll"
	Verdict string       // one of verdictOrder; "" takes Report.Verdict
	Note    string       // why, for added/removed/unsupported/not-pe (may be "")
	Package string       // path of its package relative to the output dir, "" if none
	Report  *diff.Report // nil unless both sides were compared
	// Old and New are the compared images, for the disassembly (HTML); either
	// may be nil. The writers do not keep them past Add.
	Old, New *pe.File
}

// Writer builds a document of binaries. Add renders a binary at once and
// keeps only the text; Close writes the whole document to the writer given
// at creation. Add is safe for concurrent use; the document does not depend
// on the order of the Add calls.
type Writer interface {
	// Add renders b. It fails on an unknown verdict, a path added before,
	// or after Close.
	Add(b Binary) error
	// Close writes the document. It may be called once.
	Close() error
}

// entry is what a writer keeps of one binary.
type entry struct {
	path, verdict, note, pkg string
	text                     string // the rendered section
}

// collector holds the rendered binaries of a document.
type collector struct {
	mu      sync.Mutex
	entries []entry
	paths   map[string]bool
	closed  bool
}

// check validates b and returns its verdict.
func check(b *Binary) (string, error) {
	v := b.Verdict
	if v == "" && b.Report != nil {
		v = b.Report.Verdict
	}
	if verdictRank(v) < 0 {
		return "", fmt.Errorf("report: %s: unknown verdict %q", b.Path, v)
	}
	return v, nil
}

func (c *collector) add(e entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("report: %s: added after Close", e.path)
	}
	if c.paths[e.path] {
		return fmt.Errorf("report: %s: added twice", e.path)
	}
	if c.paths == nil {
		c.paths = map[string]bool{}
	}
	c.paths[e.path] = true
	c.entries = append(c.entries, e)
	return nil
}

// close marks the document closed and returns its entries in document
// order: by verdict (verdictOrder), then by path.
func (c *collector) close() ([]entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("report: document closed twice")
	}
	c.closed = true
	es := slices.Clone(c.entries)
	slices.SortFunc(es, func(a, b entry) int {
		if d := verdictRank(a.verdict) - verdictRank(b.verdict); d != 0 {
			return d
		}
		return strings.Compare(a.path, b.path)
	})
	return es, nil
}

// verdictCount is one line of a document's summary.
type verdictCount struct {
	Verdict string
	N       int
}

// countVerdicts counts entries per verdict, in verdictOrder, leaving out
// verdicts no binary has.
func countVerdicts(es []entry) []verdictCount {
	var out []verdictCount
	for _, v := range verdictOrder {
		n := 0
		for _, e := range es {
			if e.verdict == v {
				n++
			}
		}
		if n > 0 {
			out = append(out, verdictCount{v, n})
		}
	}
	return out
}

// decision is a rule that decides a binary's verdict, with the item it is on.
type decision struct {
	Kind string // "function" or a change kind (data, export, ...)
	Name string
	Rule diff.Rule
}

// decisions lists the rules behind a report's verdict: for reboot-required
// the blocking rules (RR-*, or a rule a policy made blocking) of every
// reboot-required function and change; for hotpatchable the rules of every
// hot-patchable one. In report order.
func decisions(r *diff.Report) []decision {
	if r == nil || r.Verdict == diff.VerdictIdentical {
		return nil
	}
	pick := func(rules []diff.Rule) []diff.Rule {
		if r.Verdict != diff.VerdictRebootRequired {
			return rules
		}
		var out []diff.Rule
		for _, rl := range rules {
			if strings.HasPrefix(rl.ID, "RR-") || rl.Policy == diff.Block {
				out = append(out, rl)
			}
		}
		if len(out) == 0 {
			return rules
		}
		return out
	}
	var out []decision
	for _, f := range r.Functions {
		if f.Verdict == r.Verdict {
			for _, rl := range pick(f.Rules) {
				out = append(out, decision{"function", DisplayName(f.Name, f.Display), rl})
			}
		}
	}
	for _, ch := range r.Changes {
		if ch.Verdict == r.Verdict {
			for _, rl := range pick(ch.Rules) {
				out = append(out, decision{ch.Kind, ch.Name, rl})
			}
		}
	}
	return out
}

// functionCounts is the text report's count line without its label.
func functionCounts(r *diff.Report) string {
	return fmt.Sprintf("%d changed, %d added, %d removed, %d unchanged (old %d, new %d)",
		r.Counts[diff.Changed], r.Counts[diff.Added], r.Counts[diff.Removed], r.Counts[diff.Unchanged], r.Old.Functions, r.New.Functions)
}

// listed returns the changed, added and removed functions of r, in that
// order (each in report order).
func listed(r *diff.Report) []diff.Function {
	var out []diff.Function
	for _, st := range []diff.Status{diff.Changed, diff.Added, diff.Removed} {
		for _, f := range r.Functions {
			if f.Status == st {
				out = append(out, f)
			}
		}
	}
	return out
}

// anchorID is a stable HTML id for a binary's path.
func anchorID(path string) string {
	h := sha256.Sum256([]byte(path))
	return "b-" + hex.EncodeToString(h[:6])
}

// rva formats an RVA, "–" when absent.
func rva(v uint32, present bool) string {
	if !present {
		return "–"
	}
	return fmt.Sprintf("%#x", v)
}

// oldNew returns the old → new RVAs and sizes of a report function.
func oldNew(f *diff.Function) (rvas, sizes string) {
	hasOld, hasNew := f.Status != diff.Added, f.Status != diff.Removed
	size := func(v uint32, present bool) string {
		if !present {
			return "–"
		}
		return fmt.Sprint(v)
	}
	return rva(f.OldRVA, hasOld) + " → " + rva(f.NewRVA, hasNew), size(f.OldSize, hasOld) + " → " + size(f.NewSize, hasNew)
}
