package signing

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyFilesRoundTrip: key files written by Marshal* read back to the
// same keys, and a signature made with one verifies with the other.
func TestKeyFilesRoundTrip(t *testing.T) {
	k, err := FromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParsePrivate(MarshalPrivate(k))
	if err != nil || !bytes.Equal(k2.Key, k.Key) || k2.ID != k.ID {
		t.Fatalf("private key round trip: %v", err)
	}
	pub, err := ParsePublic(MarshalPublic(k.Public()))
	if err != nil || pub.ID != k.ID {
		t.Fatalf("public key round trip: %v", err)
	}
	var d [32]byte
	d[0] = 1
	sig := Sign(k, d)
	if !Verify(pub, d, sig) {
		t.Error("signature does not verify")
	}
	d[0] = 2
	if Verify(pub, d, sig) {
		t.Error("signature verifies for another digest")
	}
	// The message is domain-separated: a bare signature of the digest is
	// not a package signature.
	if !strings.HasPrefix(string(Message(d)), "hpbuild.package/v1 signature\x00") {
		t.Error("message lacks its domain prefix")
	}
}

// TestParseRejects: malformed key files and a public key whose id does
// not match are refused with a reason.
func TestParseRejects(t *testing.T) {
	k, _ := FromSeed(bytes.Repeat([]byte{7}, 32))
	pub := string(MarshalPublic(k.Public()))
	for in, want := range map[string]string{
		"": "not an hpbuild public key",
		strings.Replace(pub, k.ID.String(), "0000000000000000", 1): "names key id 0000000000000000",
		strings.TrimSuffix(pub, "\n"):                              "not an hpbuild public key",
		"hpbuild-public-key-v1 00 AAAA\n":                          "not 32 bytes of base64",
	} {
		if _, err := ParsePublic([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePublic(%q): %v, want %q", in, err, want)
		}
	}
	for in, want := range map[string]string{
		"hpbuild-private-key-v1\nAAAA\n": "not 32 bytes of base64",
		"something else\n":               "not an hpbuild private key",
	} {
		if _, err := ParsePrivate([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePrivate(%q): %v, want %q", in, err, want)
		}
	}
}

// TestLoadPrivateRefusesReadable: a private key group or others can read
// is refused, naming the mode.
func TestLoadPrivateRefusesReadable(t *testing.T) {
	k, _ := Generate(nil)
	path := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(path, MarshalPrivate(k), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivate(path); err != nil {
		t.Fatalf("mode 0600: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		os.Chmod(path, mode)
		if _, err := LoadPrivate(path); err == nil || !strings.Contains(err.Error(), "readable by others") {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
}
