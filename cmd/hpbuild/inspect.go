package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hpbuild/hpbuild/pkgformat"
	"github.com/urfave/cli/v2"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show what a package holds",
		UsageText: "hpbuild inspect [--format text|json] PACKAGE",
		Description: `Inspect shows a package's identities (base and target images, sequence),
the functions it patches with their trampoline sites, methods and the
bytes rollback restores, the data it carries, its sizes (hot-patch part
and file deltas) and its signatures. It reads the package strictly but
does not check signatures: that is 'hpbuild verify'.

Examples:
  hpbuild inspect fix-1.hpkg
  hpbuild inspect --format json fix-1.hpkg`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text or json"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "PACKAGE"); err != nil {
				return err
			}
			format, err := oneOf(c, "format", false, "text", "json")
			if err != nil {
				return err
			}
			p, err := readPackage(c.Args().Get(0))
			if err != nil {
				return err
			}
			r := newInspectReport(p)
			if format == "json" {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return r.writeText(c.App.Writer)
		},
	}
}

// inspectReport is the JSON form of 'hpbuild inspect' (docs/cli.md).
type inspectReport struct {
	Schema      string            `json:"schema"`
	Format      string            `json:"format"`
	Tool        string            `json:"tool"`
	Sequence    uint64            `json:"sequence"`
	MinSequence uint64            `json:"min_sequence"`
	Base        pkgformat.Base    `json:"base"`
	Target      pkgformat.Target  `json:"target"`
	Functions   []inspectFunction `json:"functions"`
	Data        []inspectData     `json:"data"`
	Imports     []string          `json:"imports"`
	Sizes       inspectSizes      `json:"sizes"`
	Signatures  []string          `json:"signatures"` // key ids
}

type inspectFunction struct {
	Name     string          `json:"name"`
	OldRVA   uint32          `json:"old_rva"`
	NewRVA   uint32          `json:"new_rva"`
	CodeSize uint64          `json:"code_size"`
	Fixups   int             `json:"fixups"`
	Site     *pkgformat.Site `json:"site"`
}

type inspectData struct {
	Name     string `json:"name"`
	Size     uint32 `json:"size"`
	ReadOnly bool   `json:"read_only"`
}

type inspectSizes struct {
	Package  uint64 `json:"package"`  // the whole file: hotpatch + overhead + forward + reverse + report
	Hotpatch uint64 `json:"hotpatch"` // what grows with the patch: code, data and unwind blobs as stored, and the manifest's function and data records
	Overhead uint64 `json:"overhead"` // the rest: magic, identities, blob table, signatures
	Forward  uint64 `json:"forward"`  // stored forward file delta
	Reverse  uint64 `json:"reverse"`  // stored reverse file delta
	Report   uint64 `json:"report"`   // stored diff report
	Manifest uint64 `json:"manifest"` // manifest bytes (part of hotpatch and overhead)
	Expanded uint64 `json:"expanded"` // all blobs decompressed
}

// jsonLen is the length of v's canonical JSON (as in the manifest).
func jsonLen(v any) uint64 {
	b, _ := pkgformat.CanonicalJSON(v) // manifest types always encode
	return uint64(len(b))
}

func newInspectReport(p *pkgformat.Package) *inspectReport {
	m := &p.Manifest
	r := &inspectReport{Schema: "hpbuild.inspect/v1", Format: m.Format, Tool: m.Tool, Sequence: m.Sequence, MinSequence: m.MinSequence,
		Base: m.Base, Target: m.Target, Functions: []inspectFunction{}, Data: []inspectData{}, Imports: m.Imports, Signatures: []string{}}
	for _, f := range m.Functions {
		r.Functions = append(r.Functions, inspectFunction{Name: f.Name, OldRVA: f.OldRVA, NewRVA: f.NewRVA,
			CodeSize: m.Blobs[f.Code].Size, Fixups: len(f.Fixups), Site: f.Site})
	}
	for _, d := range m.Data {
		r.Data = append(r.Data, inspectData{Name: d.Name, Size: d.Size, ReadOnly: d.ReadOnly})
	}
	b, _ := p.Marshal() // a package that was read has signatures: it marshals
	s := &r.Sizes
	s.Package = uint64(len(b))
	s.Manifest = s.Package - uint64(len(pkgformat.Magic)) - 4 - 2 - uint64(len(p.Sigs))*pkgformat.SignatureSize
	for i, bl := range m.Blobs {
		s.Expanded += bl.Size
		s.Manifest -= bl.Stored
		switch i {
		case m.Forward:
			s.Forward = bl.Stored
		case m.Reverse:
			s.Reverse = bl.Stored
		case m.Report:
			s.Report = bl.Stored
		default:
			s.Hotpatch += bl.Stored
		}
	}
	s.Hotpatch += jsonLen(m.Functions) + jsonLen(m.Data)
	s.Overhead = s.Package - s.Hotpatch - s.Forward - s.Reverse - s.Report
	for _, sg := range p.Sigs {
		r.Signatures = append(r.Signatures, sg.KeyID.String())
	}
	return r
}

// printable quotes s when it holds anything but printable characters: an
// unverified package must not drive the terminal.
func printable(s string) string {
	for _, c := range s {
		if !strconv.IsPrint(c) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

func (r *inspectReport) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "package   %s (%s)\n", r.Format, printable(r.Tool))
	fmt.Fprintf(&b, "base      %s  %s  %d bytes  machine %s  timestamp %#x  checksum %#x  image size %#x\n",
		printable(r.Base.Name), r.Base.SHA256, r.Base.Size, r.Base.Machine, r.Base.TimeDateStamp, r.Base.CheckSum, r.Base.SizeOfImage)
	fmt.Fprintf(&b, "target    %s  %s  %d bytes\n", printable(r.Target.Name), r.Target.SHA256, r.Target.Size)
	fmt.Fprintf(&b, "sequence  %d (replaces %d and later)\n", r.Sequence, r.MinSequence)
	fmt.Fprintf(&b, "sizes     %d bytes: hot patch %d, identities and signatures %d, forward delta %d, reverse delta %d, report %d; %d expanded\n",
		r.Sizes.Package, r.Sizes.Hotpatch, r.Sizes.Overhead, r.Sizes.Forward, r.Sizes.Reverse, r.Sizes.Report, r.Sizes.Expanded)
	fmt.Fprintf(&b, "\nfunctions (%d)\n", len(r.Functions))
	for _, f := range r.Functions {
		site := "no site (new function, or callers re-pointed)"
		if f.Site != nil {
			site = fmt.Sprintf("site %#x %s, restores %s", f.Site.RVA, f.Site.Method, f.Site.Original)
		}
		old := "new"
		if f.OldRVA != 0 {
			old = fmt.Sprintf("%#x", f.OldRVA)
		}
		fmt.Fprintf(&b, "  %-28s old %-8s new %#-8x %5d bytes %3d fixups  %s\n", printable(f.Name), old, f.NewRVA, f.CodeSize, f.Fixups, site)
	}
	if len(r.Data) > 0 {
		fmt.Fprintf(&b, "\ndata (%d)\n", len(r.Data))
		for _, d := range r.Data {
			kind := "writable"
			if d.ReadOnly {
				kind = "read-only"
			}
			fmt.Fprintf(&b, "  %-28s %5d bytes %s\n", printable(d.Name), d.Size, kind)
		}
	}
	if len(r.Imports) > 0 {
		fmt.Fprintf(&b, "\nimports resolved by the applier\n")
		for _, i := range r.Imports {
			fmt.Fprintf(&b, "  %s\n", printable(i))
		}
	}
	fmt.Fprintf(&b, "\nsignatures (%d): %s\n", len(r.Signatures), strings.Join(r.Signatures, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}
