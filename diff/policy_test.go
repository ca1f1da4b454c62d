package diff

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestParsePolicyErrors: each malformed line is refused with its number
// and what is wrong.
func TestParsePolicyErrors(t *testing.T) {
	for in, want := range map[string]string{
		"RR-EXPORTS":                   `policy line 1: want "RULE ACTION"`,
		"RR-EXPORTS warn extra":        `policy line 1: want "RULE ACTION"`,
		"\n\nRR-EXPORT warn":           `policy line 3: unknown rule "RR-EXPORT"`,
		"RR-EXPORTS deny":              `policy line 1: unknown action "deny"`,
		"XX-* block":                   `policy line 1: "XX-*" matches no rule`,
		"RR-TLS warn\nRR-TLS block":    `policy line 2: RR-TLS already set on line 1`,
		"# only a comment\nHP-* nope ": `policy line 2: unknown action "nope"`,
	} {
		_, err := ParsePolicy(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

// TestPolicyPrecedence: an exact id beats a prefix, a longer prefix beats
// a shorter one, and rules the policy does not mention keep their meaning.
func TestPolicyPrecedence(t *testing.T) {
	p, err := ParsePolicy(strings.NewReader("RR-* warn\nRR-DATA-* block\nRR-DATA-INIT ignore\nNEUTRAL-RESOURCE BLOCK # case does not matter\n"))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]Action{
		"RR-EXPORTS": Warn, "RR-DATA-LAYOUT": Block, "RR-DATA-INIT": Ignore, "NEUTRAL-RESOURCE": Block, "HP-BODY": "",
	} {
		if got := p.action(id); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
}

// TestApplyPolicyVerdicts: on real fixture reports, warn lifts a
// reboot-required verdict, block imposes one, ignore removes the rule.
func TestApplyPolicyVerdicts(t *testing.T) {
	policy := func(s string) *Policy {
		p, err := ParsePolicy(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := planOf(t, "data_init", "x64")
	if r.Verdict != VerdictRebootRequired {
		t.Fatalf("data_init verdict %s", r.Verdict)
	}
	r.ApplyPolicy(policy("RR-DATA-INIT warn"))
	if r.Verdict == VerdictRebootRequired {
		t.Errorf("RR-DATA-INIT warn: verdict still %s", r.Verdict)
	}
	r = planOf(t, "body_change", "x64")
	r.ApplyPolicy(policy("NEUTRAL-CHECKSUM block"))
	if r.Verdict != VerdictRebootRequired {
		t.Errorf("NEUTRAL-CHECKSUM block: verdict %s", r.Verdict)
	}
	r = planOf(t, "body_change", "x64")
	r.ApplyPolicy(policy("HP-BODY ignore\nNEUTRAL-* ignore"))
	for _, f := range r.Functions {
		for _, x := range f.Rules {
			if x.ID == "HP-BODY" {
				t.Errorf("%s still has HP-BODY", f.Name)
			}
		}
	}
	// The function still differs: it is never reported identical.
	if len(r.Changes) != 0 || r.Verdict != VerdictHotpatchable {
		t.Errorf("all rules ignored: %d changes, verdict %s, want no changes and hotpatchable", len(r.Changes), r.Verdict)
	}
}

// TestRuleCatalogue: every rule id the classifier can emit is in RuleIDs
// (so that a policy may name it) and documented in docs/rules.md, and
// every id in RuleIDs is emitted somewhere.
func TestRuleCatalogue(t *testing.T) {
	re := regexp.MustCompile(`"((?:HP|RR|NEUTRAL|WARN)-[A-Z0-9-]+)"`)
	emitted := map[string]bool{}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "policy.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			emitted[m[1]] = true
		}
	}
	doc, err := os.ReadFile("../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	for id := range emitted {
		if !slices.Contains(RuleIDs, id) {
			t.Errorf("%s is emitted but not in RuleIDs", id)
		}
		if !strings.Contains(string(doc), "| "+id+" |") {
			t.Errorf("%s is not documented in a table of docs/rules.md", id)
		}
	}
	for _, id := range RuleIDs {
		if !emitted[id] {
			t.Errorf("%s is in RuleIDs but nothing emits it", id)
		}
	}
	if !slices.IsSorted(RuleIDs) {
		t.Error("RuleIDs is not sorted")
	}
}
