package apply

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/hpbuild/hpbuild/pkgformat"
)

// RecordMagic starts the header page of every patch area hpbuild
// writes: Status finds applied packages by it, Rollback reads what to
// restore from it.
const RecordMagic = "HPBAPPLY"

// maxRecord bounds the record a reader accepts.
const maxRecord = 16 << 20

// Record is what a patch area says about itself: the package, the module
// it patches, and every site with its original and written bytes.
type Record struct {
	Format      string       `json:"format"`  // "hpbuild.applied/v1"
	Package     string       `json:"package"` // hex package digest
	Sequence    uint64       `json:"sequence"`
	MinSequence uint64       `json:"min_sequence"`
	Module      string       `json:"module"` // base image name from the package
	BaseSHA256  string       `json:"base_sha256"`
	Base        uint64       `json:"base"` // module load address
	Area        uint64       `json:"area"`
	Size        uint64       `json:"size"`
	Unwind      uint64       `json:"unwind"` // registered RUNTIME_FUNCTION table, 0 for none
	Sites       []RecordSite `json:"sites"`
}

// RecordSite is one written site.
type RecordSite struct {
	Func string `json:"func"`
	Addr uint64 `json:"addr"`
	Old  string `json:"old"` // hex
	New  string `json:"new"` // hex
}

// RecordFormat names the record schema.
const RecordFormat = "hpbuild.applied/v1"

func newRecord(p *pkgformat.Package, k *Linked) Record {
	m := &p.Manifest
	d := p.Digest()
	r := Record{Format: RecordFormat, Package: hex.EncodeToString(d[:]), Sequence: m.Sequence, MinSequence: m.MinSequence,
		Module: m.Base.Name, BaseSHA256: m.Base.SHA256, Base: k.Base, Area: k.Area,
		Size: uint64(len(k.Header) + len(k.Text) + len(k.Data)), Unwind: k.Unwind.Table, Sites: []RecordSite{}}
	for _, s := range k.Sites {
		r.Sites = append(r.Sites, RecordSite{Func: s.Func, Addr: s.Addr, Old: hex.EncodeToString(s.Old), New: hex.EncodeToString(s.New)})
	}
	return r
}

// recordBound is an upper bound of the marshalled record of a package.
func recordBound(m *pkgformat.Manifest) int {
	n := 12 + 1024 + 6*len(m.Base.Name)
	for _, f := range m.Functions {
		n += 200 + 6*len(f.Name) + 4*len(f.Name) // names may be escaped
	}
	return n
}

// Marshal returns the header bytes: magic, length, JSON.
func (r *Record) Marshal() ([]byte, error) {
	j, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	out := append([]byte(RecordMagic), binary.LittleEndian.AppendUint32(nil, uint32(len(j)))...)
	return append(out, j...), nil
}

// ParseRecord reads a header written by Marshal. ok is false when b does
// not start with the magic (not an hpbuild patch area).
func ParseRecord(b []byte) (r Record, ok bool, err error) {
	if !bytes.HasPrefix(b, []byte(RecordMagic)) || len(b) < 12 {
		return r, false, nil
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if n > maxRecord || int(n) > len(b)-12 {
		return r, true, fmt.Errorf("patch record of %d bytes runs past its header", n)
	}
	dec := json.NewDecoder(bytes.NewReader(b[12 : 12+n]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, true, fmt.Errorf("patch record: %w", err)
	}
	if r.Format != RecordFormat {
		return r, true, fmt.Errorf("patch record of format %q, this hpbuild reads %s", r.Format, RecordFormat)
	}
	if !isHex(r.Package, 64) {
		return r, true, fmt.Errorf("patch record: package digest %q is not 64 hex digits", r.Package)
	}
	for _, s := range r.Sites {
		if len(s.Old) != len(s.New) || len(s.Old) == 0 || len(s.Old) > 64 || !isHex(s.Old, len(s.Old)) || !isHex(s.New, len(s.New)) {
			return r, true, fmt.Errorf("patch record: site of %q has bytes %q / %q", s.Func, s.Old, s.New)
		}
	}
	return r, true, nil
}

// RecordLen returns how many bytes of a header must be read to parse the
// record that starts it (0 when b, at least 12 bytes, is not a record).
func RecordLen(b []byte) int {
	if !bytes.HasPrefix(b, []byte(RecordMagic)) || len(b) < 12 {
		return 0
	}
	return 12 + int(min(binary.LittleEndian.Uint32(b[8:]), maxRecord))
}

// isHex says whether s is n lower-case hex digits (n even).
func isHex(s string, n int) bool {
	if len(s) != n || n%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
