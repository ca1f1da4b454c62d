package pe

import (
	"os"
	"testing"
)

// TestParseMapMSVC reads the "Publics by Value" and "Static symbols" lines
// of an MSVC link map, with the function flag.
func TestParseMapMSVC(t *testing.T) {
	const msvc = ` demo

 Timestamp is 65a1b2c3 (Fri Jan 12 00:00:00 2024)

 Preferred load address is 0000000180000000

  Address         Publics by Value              Rva+Base               Lib:Object

 0000:00000000       __ImageBase                0000000180000000     <linker-defined>
 0001:00000000       ?compute@@YAHH@Z           0000000180001000 f   demo.obj
 0001:00000040       parse_u32                  0000000180001040 f   demo.obj
 0002:00000010       g_limit                    0000000180003010     demo.obj

 Static symbols

 0001:00000080       helper                     0000000180001080 f   demo.obj
`
	syms, err := ParseMap([]byte(msvc), 0x180000000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Symbol{
		"?compute@@YAHH@Z": {RVA: 0x1000, Func: true},
		"parse_u32":        {RVA: 0x1040, Func: true},
		"g_limit":          {RVA: 0x3010, Func: false},
		"helper":           {RVA: 0x1080, Func: true},
	}
	got := map[string]Symbol{}
	for _, s := range syms {
		got[s.Name] = s
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || g.RVA != w.RVA || g.Func != w.Func || g.Source != "map" {
			t.Errorf("%s: got %+v (present %v), want RVA %#x func %v", name, g, ok, w.RVA, w.Func)
		}
	}
}

// TestParseMapGNU reads the symbol lines of the GNU ld map committed next
// to a fixture.
func TestParseMapGNU(t *testing.T) {
	data, err := os.ReadFile("../testdata/body_change/x64/old.map")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open("../testdata/body_change/x64/old.dll")
	if err != nil {
		t.Fatal(err)
	}
	syms, err := ParseMap(data, f.ImageBase)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]uint32{}
	for _, s := range syms {
		byName[s.Name] = s.RVA
	}
	for _, e := range f.Exports {
		if got, ok := byName[e.Name]; !ok || got != e.RVA {
			t.Errorf("map has %s at %#x (present %v), export says %#x", e.Name, got, ok, e.RVA)
		}
	}
}

// TestParseMapRejectsOtherText: a file with no map lines is an error.
func TestParseMapRejectsOtherText(t *testing.T) {
	if _, err := ParseMap([]byte("hello\nworld\n"), 0x10000000); err == nil {
		t.Fatal("ParseMap accepted text that is not a map")
	}
}
