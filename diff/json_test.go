package diff

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestWriteJSONMatchesEncoder protects the JSON contract's bytes: the
// streaming writer must produce exactly what json.Encoder with a two-space
// indent produces, for nil, empty and filled function lists.
func TestWriteJSONMatchesEncoder(t *testing.T) {
	o, n := openPair(t, "../testdata/cxx_vtable", "x64", "stripped")
	full := Compare(o, n)
	empty := *full
	empty.Functions = []Function{}
	none := *full
	none.Functions = nil
	for name, r := range map[string]*Report{"full": full, "empty": &empty, "nil": &none} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := r.WriteJSON(&got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%s: WriteJSON differs from json.Encoder:\n got %.300q\nwant %.300q", name, got.Bytes(), want.Bytes())
		}
	}
}
