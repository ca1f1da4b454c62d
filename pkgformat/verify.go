package pkgformat

import (
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/hpbuild/hpbuild/signing"
	"github.com/klauspost/compress/zstd"
)

// Failure classes of verification, for callers and test vectors.
const (
	FailSignature = "bad-signature" // a signature by a known key does not verify
	FailUnknown   = "unknown-key"   // no signature is by a key the verifier trusts
	FailThreshold = "threshold"     // fewer valid signatures than required
	FailTampered  = "tampered-blob" // a blob does not match its digest, or does not decompress to its size
	FailWrongBase = "wrong-base"    // the package is for another base image
)

// VerifyError is a verification failure of a well-formed package.
type VerifyError struct {
	Class string // one of the Fail* constants
	Msg   string
}

func (e *VerifyError) Error() string { return e.Msg }

// Verify checks the signatures against the trusted keys: every signature
// by a trusted key must verify, and at least threshold distinct trusted
// keys must have signed. Signatures by other keys are ignored.
func (p *Package) Verify(keys []*signing.PublicKey, threshold int) error {
	return verifySigs(p.Digest(), p.Sigs, keys, threshold)
}

func verifySigs(d [32]byte, sigs []Signature, keys []*signing.PublicKey, threshold int) error {
	valid := 0
	for _, s := range sigs {
		var k *signing.PublicKey
		for _, c := range keys {
			if c.ID == s.KeyID {
				k = c
			}
		}
		if k == nil {
			continue
		}
		if !signing.Verify(k, d, s.Sig[:]) {
			return &VerifyError{FailSignature, fmt.Sprintf("signature by key %s does not verify: the package was changed after signing, or the signature is forged", s.KeyID)}
		}
		valid++
	}
	if valid == 0 {
		ids := ""
		for i, s := range sigs {
			if i > 0 {
				ids += ", "
			}
			ids += s.KeyID.String()
		}
		return &VerifyError{FailUnknown, fmt.Sprintf("no signature by a trusted key (package signed by %s)", ids)}
	}
	if valid < threshold {
		return &VerifyError{FailThreshold, fmt.Sprintf("%d valid signature(s) by trusted keys, %d required", valid, threshold)}
	}
	return nil
}

// VerifyBlobs checks every stored blob against its digest (without
// decompressing it).
func (p *Package) VerifyBlobs() error {
	for i := range p.Stored {
		if err := p.checkDigest(i); err != nil {
			return err
		}
	}
	return nil
}

func (p *Package) checkDigest(i int) error {
	sum := sha256.Sum256(p.Stored[i])
	if HexDigest(sum) != p.Manifest.Blobs[i].SHA256 {
		return &VerifyError{FailTampered, fmt.Sprintf("blob %d does not match its digest in the signed manifest: the package was tampered with", i)}
	}
	return nil
}

// CheckBase checks that file is the base image the package applies to.
func (p *Package) CheckBase(file []byte) error {
	sum := sha256.Sum256(file)
	if got := HexDigest(sum); got != p.Manifest.Base.SHA256 {
		return &VerifyError{FailWrongBase, fmt.Sprintf("the package applies to %s (sha256 %s, %d bytes), not to this file (sha256 %s, %d bytes)",
			p.Manifest.Base.Name, p.Manifest.Base.SHA256, p.Manifest.Base.Size, got, len(file))}
	}
	return nil
}

// Blob returns blob i decompressed. It checks the digest first, and never
// produces more than the manifest's size for it. A file delta's blob needs
// its source file (see Forward and Reverse).
func (p *Package) Blob(i int) ([]byte, error) {
	if i < 0 || i >= len(p.Stored) {
		return nil, fmt.Errorf("blob %d does not exist", i)
	}
	if err := p.checkDigest(i); err != nil {
		return nil, err
	}
	if d := p.Manifest.Blobs[i].Delta; d != DeltaNone {
		return nil, fmt.Errorf("blob %d is a file delta: it expands only with the %s file", i, d)
	}
	return Decompress(p.Stored[i], p.Manifest.Blobs[i].Size)
}

// Forward turns base, which must be the package's base file, into the
// target file with the package's forward delta.
func (p *Package) Forward(base []byte) ([]byte, error) {
	return p.applyDelta(p.Manifest.Forward, base, p.Manifest.Base.SHA256, p.Manifest.Target)
}

// Reverse turns target, which must be the package's target file, back
// into the base file.
func (p *Package) Reverse(target []byte) ([]byte, error) {
	return p.applyDelta(p.Manifest.Reverse, target, p.Manifest.Target.SHA256, Target{Name: p.Manifest.Base.Name, Size: p.Manifest.Base.Size, SHA256: p.Manifest.Base.SHA256})
}

func (p *Package) applyDelta(blob int, src []byte, srcSHA string, dst Target) ([]byte, error) {
	if got := HexDigest(sha256.Sum256(src)); got != srcSHA {
		return nil, &VerifyError{FailWrongBase, fmt.Sprintf("the delta applies to the file with sha256 %s, not to this one (%s)", srcSHA, got)}
	}
	if err := p.checkDigest(blob); err != nil {
		return nil, err
	}
	d, err := DecompressDelta(p.Stored[blob], p.Manifest.Blobs[blob].Size, src)
	if err != nil {
		return nil, err
	}
	out, err := ApplyDelta(src, d, dst.Size)
	if err != nil {
		return nil, err
	}
	if HexDigest(sha256.Sum256(out)) != dst.SHA256 {
		return nil, &VerifyError{FailTampered, fmt.Sprintf("the file delta does not produce %s (sha256 %s)", dst.Name, dst.SHA256)}
	}
	return out, nil
}

// Decompress expands one zstd frame that must hold exactly size bytes.
// Memory is bounded by size: a frame that would expand further is refused,
// not expanded.
func Decompress(stored []byte, size uint64) ([]byte, error) {
	return decompress(stored, size, nil)
}

func decompress(stored []byte, size uint64, dict []byte) ([]byte, error) {
	// The window a frame may ask for is bounded by what it must produce,
	// the dictionary and a fixed 8 MiB.
	opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(max(size, 1<<16) + 1),
		zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(max(size, 8<<20) + uint64(len(dict)))}
	if dict != nil {
		opts = append(opts, zstd.WithDecoderDictRaw(dictID, dict))
	}
	dec, err := zstd.NewReader(nil, opts...)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out, err := dec.DecodeAll(stored, make([]byte, 0, size))
	if err != nil {
		return nil, &VerifyError{FailTampered, fmt.Sprintf("blob does not decompress within its declared %d bytes: %v", size, err)}
	}
	if uint64(len(out)) != size {
		return nil, &VerifyError{FailTampered, fmt.Sprintf("blob decompresses to %d bytes, the manifest says %d", len(out), size)}
	}
	return out, nil
}

// Compress returns one single-segment zstd frame of data, the same bytes
// for the same input. The frame has no checksum: every blob is checked
// against its SHA-256 in the signed manifest before it is expanded.
func Compress(data []byte) ([]byte, error) {
	enc, err := plainEncoder()
	if err != nil {
		return nil, err
	}
	return enc.EncodeAll(data, nil), nil
}

// plainEncoder is made once: EncodeAll may be called concurrently, and a
// package has a blob per function.
var plainEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true), zstd.WithSingleSegment(true))
})
