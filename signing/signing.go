// Package signing holds hpbuild's ed25519 keys and the signatures over a
// package manifest: key files (docs/format.md, "Key files"), key ids, and
// the domain-separated message that is signed.
//
// A private key file is written with mode 0600 and refused when group or
// world can read it. A public key file names its key id, which is the
// first 8 bytes of the SHA-256 of the public key: signatures in a package
// carry it, so that a verifier knows which key to try.
package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Key file headers.
const (
	privateHeader = "hpbuild-private-key-v1"
	publicHeader  = "hpbuild-public-key-v1"
)

// KeyIDSize is the size of a key id in bytes.
const KeyIDSize = 8

// KeyID identifies a public key: the first 8 bytes of its SHA-256.
type KeyID [KeyIDSize]byte

func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// IDOf returns the key id of a public key.
func IDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], sum[:KeyIDSize])
	return id
}

// PrivateKey is a signing key with its id.
type PrivateKey struct {
	Key ed25519.PrivateKey
	ID  KeyID
}

// PublicKey is a verification key with its id.
type PublicKey struct {
	Key ed25519.PublicKey
	ID  KeyID
}

// Public returns the public half of k.
func (k *PrivateKey) Public() *PublicKey {
	pub := k.Key.Public().(ed25519.PublicKey)
	return &PublicKey{Key: pub, ID: k.ID}
}

// Generate makes a new key pair from rnd (crypto/rand when nil).
func Generate(rnd io.Reader) (*PrivateKey, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return &PrivateKey{Key: priv, ID: IDOf(priv.Public().(ed25519.PublicKey))}, nil
}

// FromSeed makes the key pair of a 32-byte seed (for test vectors).
func FromSeed(seed []byte) (*PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &PrivateKey{Key: priv, ID: IDOf(priv.Public().(ed25519.PublicKey))}, nil
}

// MarshalPrivate returns the private key file contents.
func MarshalPrivate(k *PrivateKey) []byte {
	return fmt.Appendf(nil, "%s\n%s\n", privateHeader, base64.StdEncoding.EncodeToString(k.Key.Seed()))
}

// MarshalPublic returns the public key file contents.
func MarshalPublic(k *PublicKey) []byte {
	return fmt.Appendf(nil, "%s %s %s\n", publicHeader, k.ID, base64.StdEncoding.EncodeToString(k.Key))
}

// ParsePrivate reads a private key file's contents.
func ParsePrivate(b []byte) (*PrivateKey, error) {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || lines[0] != privateHeader {
		return nil, errors.New("not an hpbuild private key (want a \"" + privateHeader + "\" line and a base64 seed line)")
	}
	seed, err := base64.StdEncoding.Strict().DecodeString(lines[1])
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("private key seed is not %d bytes of base64", ed25519.SeedSize)
	}
	return FromSeed(seed)
}

// ParsePublic reads a public key file's contents and checks that the key
// id it names is the key's.
func ParsePublic(b []byte) (*PublicKey, error) {
	f := strings.Fields(string(b))
	if len(f) != 3 || f[0] != publicHeader || !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
		return nil, errors.New("not an hpbuild public key (want one line \"" + publicHeader + " KEYID BASE64\")")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(f[2])
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key is not %d bytes of base64", ed25519.PublicKeySize)
	}
	k := &PublicKey{Key: ed25519.PublicKey(raw), ID: IDOf(raw)}
	if k.ID.String() != f[1] {
		return nil, fmt.Errorf("public key file names key id %s, but the key's id is %s", f[1], k.ID)
	}
	return k, nil
}

// LoadPrivate reads a private key file, refusing one that group or world
// can read.
func LoadPrivate(path string) (*PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	// Windows reports every writable file as 0666: its ACLs are not
	// modes, so the check is for systems where modes mean something.
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: private key is readable by others (mode %04o); run chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivate(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadPublic reads a public key file.
func LoadPublic(path string) (*PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePublic(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// signedPrefix separates hpbuild package signatures from every other use
// of the same key.
const signedPrefix = "hpbuild.package/v1 signature\x00"

// Message returns what is signed for a package whose signed part (header
// and manifest) has the given SHA-256.
func Message(digest [32]byte) []byte {
	return append([]byte(signedPrefix), digest[:]...)
}

// Sign signs a package digest.
func Sign(k *PrivateKey, digest [32]byte) []byte {
	return ed25519.Sign(k.Key, Message(digest))
}

// Verify checks a signature over a package digest.
func Verify(k *PublicKey, digest [32]byte, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.Key, Message(digest), sig)
}
