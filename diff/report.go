package diff

import (
	"encoding/hex"
	"slices"

	"github.com/hpbuild/hpbuild/pe"
)

// Schema is the JSON contract version of Report.
const Schema = "hpbuild.diff/v1"

// Status of a function in the comparison.
type Status string

// Function statuses.
const (
	Unchanged Status = "unchanged"
	Changed   Status = "changed"
	Added     Status = "added"
	Removed   Status = "removed"
)

// Verdict values.
const (
	VerdictIdentical      = "identical"
	VerdictHotpatchable   = "hotpatchable"
	VerdictRebootRequired = "reboot-required"
	VerdictNeutral        = "neutral"
)

// Report is the result of comparing two images; its JSON form is the
// hpbuild.diff/v1 contract (docs/cli.md).
type Report struct {
	Schema    string       `json:"schema"`
	Old       ImageSummary `json:"old"`
	New       ImageSummary `json:"new"`
	Verdict   string       `json:"verdict"`
	Functions []Function   `json:"functions"`
	Changes   []Change     `json:"changes"`
	Warnings  []string     `json:"warnings"`

	// Counts per status, for the text summary (not in the JSON contract).
	Counts map[Status]int `json:"-"`

	plan      *Plan
	planInput *planInput
}

// ImageSummary identifies one side.
type ImageSummary struct {
	Path      string `json:"path"`
	SHA256    string `json:"sha256"`
	Machine   string `json:"machine"`
	ImageBase uint64 `json:"image_base"`
	Timestamp uint32 `json:"timestamp"`
	Checksum  uint32 `json:"checksum"`
	Functions int    `json:"functions"`
}

// Function is one function of either image.
type Function struct {
	Name string `json:"name"`
	// Display is the undecorated name from a PDB when it differs from
	// Name (a decorated name): shown in text reports.
	Display    string  `json:"display,omitempty"`
	OldRVA     uint32  `json:"old_rva,omitempty"`
	NewRVA     uint32  `json:"new_rva,omitempty"`
	OldSize    uint32  `json:"old_size,omitempty"`
	NewSize    uint32  `json:"new_size,omitempty"`
	Status     Status  `json:"status"`
	Match      Match   `json:"match"`
	Similarity float64 `json:"similarity"`
	Verdict    string  `json:"verdict"`
	Rules      []Rule  `json:"rules"`
	// Reason says what differs first, for changed functions.
	Reason string `json:"reason,omitempty"`
	// Folded is set when the old body carried several names (identical
	// code folding) and this entry follows one of them into the new build.
	Folded bool `json:"folded,omitempty"`
	// Site is where the old entry of a changed, hot-patchable function
	// takes its jump, with the bytes rollback restores.
	Site *Site `json:"site,omitempty"`

	// For the text renderer: code-space offsets of the first difference.
	OldOff, NewOff uint32 `json:"-"`
	old, new       int
}

// Change is a difference outside function code.
type Change struct {
	Kind    string `json:"kind"` // data, export, import, tls, entry, resource, section, header
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Rules   []Rule `json:"rules"`

	data *dataChange
}

// Rule is a named classification with a sentence of why.
type Rule struct {
	ID      string `json:"id"`
	Message string `json:"message"`
	// Policy is set when a --policy file changed what the rule does:
	// "warn" (non-blocking) or "block" (reboot-required).
	Policy Action `json:"policy,omitempty"`
}

func summary(f *pe.File) ImageSummary {
	return ImageSummary{
		Path: f.Path, SHA256: hex.EncodeToString(f.SHA256[:]), Machine: f.Machine.String(),
		ImageBase: f.ImageBase, Timestamp: f.TimeDateStamp, Checksum: f.CheckSum, Functions: len(f.Functions()),
	}
}

// Compare diffs two opened images.
func Compare(oldF, newF *pe.File) *Report {
	old, new := newImage(oldF), newImage(newF)
	p := correlate(old, new)
	c := &comparer{old: old, new: new, p: p, oldSyms: symbolCounts(oldF), newSyms: symbolCounts(newF)}
	c.buildDataMap()
	return c.report()
}

func (c *comparer) report() *Report {
	old, new, p := c.old, c.new, c.p
	r := &Report{Schema: Schema, Old: summary(old.f), New: summary(new.f), Counts: map[Status]int{},
		Changes: []Change{}, Warnings: []string{}}
	// Every old function, every split and every added function, once:
	// sized up front (a big image's list is tens of megabytes).
	added := 0
	for n := range new.fns {
		if p.n2o[n] < 0 {
			added++
		}
	}
	if total := len(old.fns) + len(p.splits) + added; total > 0 {
		r.Functions = make([]Function, 0, total)
	}
	diffs := make([]funcDiff, len(old.fns))
	parallel(len(old.fns), func(o int) {
		if n := p.o2n[o]; n >= 0 {
			diffs[o] = c.compare(o, n)
		}
	})
	for o := range old.fns {
		fo := &old.fns[o]
		fr := Function{Name: fo.DisplayName(), Display: fo.Display(), OldRVA: fo.RVA, OldSize: fo.Size, old: o, new: -1, Rules: []Rule{}}
		if n := p.o2n[o]; n >= 0 {
			fn := &new.fns[n]
			fr.new, fr.NewRVA, fr.NewSize, fr.Match = n, fn.RVA, fn.Size, p.match(o)
			if fo.Name == "" && fn.Name != "" {
				fr.Name, fr.Display = fn.Name, fn.Display()
			}
			if fr.Display == "" && fn.Name == fo.Name {
				fr.Display = fn.Display()
			}
			fr.Similarity = 1
			if p.match(o) == MatchSimilarity {
				fr.Similarity = p.sim[o]
			}
			if d := diffs[o]; d.changed {
				fr.Status, fr.Reason, fr.OldOff, fr.NewOff = Changed, d.reason, d.oldOff, d.newOff
				if p.match(o) != MatchSimilarity {
					fr.Similarity = similarity(old, o, new, n)
				}
			} else {
				fr.Status = Unchanged
			}
		} else {
			fr.Status, fr.Similarity = Removed, 0
		}
		r.Functions = append(r.Functions, fr)
	}
	for _, sp := range p.splits {
		o, n := sp[0], sp[1]
		fo, fn := &old.fns[o], &new.fns[n]
		fr := Function{Name: fn.DisplayName(), Display: fn.Display(), OldRVA: fo.RVA, OldSize: fo.Size, NewRVA: fn.RVA, NewSize: fn.Size,
			Match: MatchName, Similarity: 1, old: o, new: n, Rules: []Rule{}, Folded: true}
		if d := c.compare(o, n); d.changed {
			fr.Status, fr.Reason, fr.OldOff, fr.NewOff = Changed, d.reason, d.oldOff, d.newOff
			fr.Similarity = similarity(old, o, new, n)
		} else {
			fr.Status = Unchanged
		}
		r.Functions = append(r.Functions, fr)
	}
	for n := range new.fns {
		if p.n2o[n] >= 0 {
			continue
		}
		fn := &new.fns[n]
		r.Functions = append(r.Functions, Function{Name: fn.DisplayName(), Display: fn.Display(), NewRVA: fn.RVA, NewSize: fn.Size, Status: Added, old: -1, new: n, Rules: []Rule{}})
	}
	sortFunctions(r.Functions)
	for _, f := range r.Functions {
		r.Counts[f.Status]++
	}
	r.Changes = append(r.Changes, c.dataChanges()...)
	r.Changes = append(r.Changes, imageChanges(old.f, new.f, c)...)
	r.Warnings = append(r.Warnings, prefixed("old: ", old.f.Warnings)...)
	r.Warnings = append(r.Warnings, prefixed("new: ", new.f.Warnings)...)
	classify(r, c)
	return r
}

// sortFunctions orders report entries by new RVA (removed functions last),
// then old RVA, keeping the order of entries that tie (a stable sort). The
// entries are big, so their order is worked out on keys that end in the
// entry's index (making every key distinct) and then applied in place.
func sortFunctions(fs []Function) {
	type key struct {
		rvas uint64 // new RVA (or the maximum for removed) << 32 | old RVA
		i    int32
	}
	keys := make([]key, len(fs))
	for i := range fs {
		k := uint64(fs[i].NewRVA)
		if fs[i].Status == Removed {
			k = 1<<32 - 1
		}
		keys[i] = key{k<<32 | uint64(fs[i].OldRVA), int32(i)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.rvas != b.rvas {
			return cmpU64(a.rvas, b.rvas)
		}
		return int(a.i - b.i)
	})
	// Entry keys[j].i goes to place j: follow each cycle of the
	// permutation once.
	for j := range keys {
		if keys[j].i < 0 {
			continue
		}
		tmp := fs[j]
		k := j
		for {
			src := int(keys[k].i)
			keys[k].i = -1
			if src == j {
				fs[k] = tmp
				break
			}
			fs[k] = fs[src]
			k = src
		}
	}
}

func prefixed(p string, ws []string) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, p+w)
	}
	return out
}

// similarity of two changed functions: estimated Jaccard similarity of
// their code's shingles, rounded to 3 digits.
func similarity(old *image, o int, new *image, n int) float64 {
	sa, sb := old.sketchOf(o), new.sketchOf(n)
	return round3(sa.similarity(&sb))
}

// round3 rounds a similarity to 3 digits, as reports show it.
func round3(s float64) float64 { return float64(int(s*1000+0.5)) / 1000 }

// OldFunction returns the old image's function behind a report entry.
func (r *Function) OldFunction(f *pe.File) *pe.Function {
	if r.old < 0 {
		return nil
	}
	return &f.Functions()[r.old]
}

// NewFunction returns the new image's function behind a report entry.
func (r *Function) NewFunction(f *pe.File) *pe.Function {
	if r.new < 0 {
		return nil
	}
	return &f.Functions()[r.new]
}
