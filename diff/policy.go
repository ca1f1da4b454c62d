package diff

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Action is what a policy does with a rule.
type Action string

// Policy actions.
const (
	// Ignore drops the rule from the report: it neither shows nor counts.
	Ignore Action = "ignore"
	// Warn keeps the rule but makes it non-blocking: it no longer makes
	// its function or change reboot-required.
	Warn Action = "warn"
	// Block makes the rule blocking: its function or change is
	// reboot-required.
	Block Action = "block"
)

// RuleIDs is the rule catalogue (docs/rules.md), sorted.
var RuleIDs = []string{
	"HP-BODY", "HP-NEW-CONST", "HP-NEW-DATA", "HP-NEW-FUNC", "HP-NEW-IMPORT", "HP-REMOVED",
	"NEUTRAL-CHECKSUM", "NEUTRAL-DEBUG", "NEUTRAL-IMPORT-UNUSED", "NEUTRAL-LAYOUT", "NEUTRAL-RESOURCE",
	"NEUTRAL-SECTION", "NEUTRAL-TIMESTAMP", "NEUTRAL-TOOLCHAIN",
	"RR-DATA-INIT", "RR-DATA-LAYOUT", "RR-DATA-UNMATCHED", "RR-ENTRY", "RR-EXPORTS", "RR-FOLDED",
	"RR-NO-ENTRY-ROOM", "RR-SHARED-CONST", "RR-TLS", "RR-UNDECODABLE", "RR-UNWIND",
	"WARN-INLINED", "WARN-NO-RETURN", "WARN-STATIC-LOCAL", "WARN-TOOLCHAIN-DRIFT",
}

// Policy maps rule ids (or prefixes ending in "*") to actions. The most
// specific entry wins: an exact id before the longest matching prefix.
type Policy struct {
	entries []policyEntry
}

type policyEntry struct {
	pattern string
	action  Action
	line    int
}

// ParsePolicy reads a policy file: one "RULE ACTION" per line, where RULE
// is a rule id or a prefix ending in "*" ("NEUTRAL-*") and ACTION is
// ignore, warn or block; "#" starts a comment. Unknown rule ids, unknown
// actions and a rule given twice are errors naming the line.
func ParsePolicy(r io.Reader) (*Policy, error) {
	p := &Policy{}
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("policy line %d: want \"RULE ACTION\", got %q", n, strings.TrimSpace(line))
		}
		pat, act := fields[0], Action(strings.ToLower(fields[1]))
		if act != Ignore && act != Warn && act != Block {
			return nil, fmt.Errorf("policy line %d: unknown action %q (want ignore, warn or block)", n, fields[1])
		}
		if prefix, ok := strings.CutSuffix(pat, "*"); ok {
			if !slices.ContainsFunc(RuleIDs, func(id string) bool { return strings.HasPrefix(id, prefix) }) {
				return nil, fmt.Errorf("policy line %d: %q matches no rule (rules: docs/rules.md)", n, pat)
			}
		} else if !slices.Contains(RuleIDs, pat) {
			return nil, fmt.Errorf("policy line %d: unknown rule %q (rules: docs/rules.md)", n, pat)
		}
		if prev, dup := seen[pat]; dup {
			return nil, fmt.Errorf("policy line %d: %s already set on line %d", n, pat, prev)
		}
		seen[pat] = n
		p.entries = append(p.entries, policyEntry{pat, act, n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return p, nil
}

// action returns the policy's action for a rule id, "" when it has none.
func (p *Policy) action(id string) Action {
	if p == nil {
		return ""
	}
	best, bestLen := Action(""), -1
	for _, e := range p.entries {
		if e.pattern == id {
			return e.action
		}
		if prefix, ok := strings.CutSuffix(e.pattern, "*"); ok && strings.HasPrefix(id, prefix) && len(prefix) > bestLen {
			best, bestLen = e.action, len(prefix)
		}
	}
	return best
}

// ApplyPolicy changes the report as the policy says: ignored rules are
// removed (and a change left without rules with them), warned and blocked
// ones marked, and every verdict recomputed.
// Rules the policy changed are listed in the report's warnings.
func (r *Report) ApplyPolicy(p *Policy) {
	if p == nil {
		return
	}
	counts := map[string]map[Action]int{}
	apply := func(rules []Rule) []Rule {
		out := rules[:0]
		for _, rl := range rules {
			a := p.action(rl.ID)
			if a != "" {
				if counts[rl.ID] == nil {
					counts[rl.ID] = map[Action]int{}
				}
				counts[rl.ID][a]++
			}
			switch a {
			case Ignore:
				continue
			case Warn, Block:
				rl.Policy = a
			}
			out = append(out, rl)
		}
		return out
	}
	for i := range r.Functions {
		r.Functions[i].Rules = apply(r.Functions[i].Rules)
	}
	changes := r.Changes[:0]
	for _, ch := range r.Changes {
		had := len(ch.Rules)
		if ch.Rules = apply(ch.Rules); len(ch.Rules) > 0 || had == 0 {
			changes = append(changes, ch) // a change all of whose rules are ignored goes
		}
	}
	r.Changes = changes
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		for _, a := range []Action{Ignore, Warn, Block} {
			if k := counts[id][a]; k > 0 {
				r.Warnings = append(r.Warnings, fmt.Sprintf("policy: %s set to %s (%d occurrence(s))", id, a, k))
			}
		}
	}
	r.computeVerdicts()
}
