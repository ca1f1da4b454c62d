package zopt

import "testing"

func BenchmarkEncodeToolchainDrift(b *testing.B) {
	old := read(b, "../../testdata/toolchain_drift/x64/old.stripped.dll")
	nw := read(b, "../../testdata/toolchain_drift/x64/new.stripped.dll")
	b.SetBytes(int64(len(nw)))
	for b.Loop() {
		if _, err := Encode(nw, old); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeTiny(b *testing.B) {
	data := []byte("abcabcabcabd the quick brown fox")
	for b.Loop() {
		if _, err := Encode(data, data[3:9]); err != nil {
			b.Fatal(err)
		}
	}
}
