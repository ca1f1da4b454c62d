package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/report"
)

// infoReport is what 'hpbuild info' prints, as text or as JSON.
type infoReport struct {
	Path               string          `json:"path"`
	SHA256             string          `json:"sha256"`
	Size               int64           `json:"size"`
	Machine            string          `json:"machine"`
	ImageBase          uint64          `json:"image_base"`
	EntryPoint         uint32          `json:"entry_point"`
	SizeOfImage        uint32          `json:"size_of_image"`
	Timestamp          uint32          `json:"timestamp"`
	Checksum           uint32          `json:"checksum"`
	Subsystem          uint16          `json:"subsystem"`
	DllCharacteristics uint16          `json:"dll_characteristics"`
	Sections           []infoSection   `json:"sections"`
	Exports            []infoExport    `json:"exports"`
	Imports            []infoImport    `json:"imports"`
	Relocations        int             `json:"relocations"`
	Debug              []infoDebug     `json:"debug"`
	Rich               []infoRich      `json:"rich"`
	LoadConfig         *infoLoadConfig `json:"load_config,omitempty"`
	TLS                *infoTLS        `json:"tls,omitempty"`
	Pdata              int             `json:"pdata"`
	PDB                *infoPDB        `json:"pdb,omitempty"`
	FunctionCount      int             `json:"function_count"`
	Functions          []infoFunction  `json:"functions,omitempty"`
	Warnings           []string        `json:"warnings"`
}

type infoSection struct {
	Name            string `json:"name"`
	RVA             uint32 `json:"rva"`
	VirtualSize     uint32 `json:"virtual_size"`
	RawSize         uint32 `json:"raw_size"`
	Characteristics uint32 `json:"characteristics"`
}

type infoExport struct {
	Name      string `json:"name"`
	Ordinal   uint32 `json:"ordinal"`
	RVA       uint32 `json:"rva"`
	Forwarder string `json:"forwarder,omitempty"`
}

type infoImport struct {
	DLL       string   `json:"dll"`
	Delay     bool     `json:"delay"`
	Functions []string `json:"functions"`
}

type infoDebug struct {
	Type    string `json:"type"`
	PDBPath string `json:"pdb_path,omitempty"`
	PDBGUID string `json:"pdb_guid,omitempty"`
	PDBAge  uint32 `json:"pdb_age,omitempty"`
}

// infoPDB says which PDB named the functions and data.
type infoPDB struct {
	Path  string `json:"path"`
	GUID  string `json:"guid"`
	Age   uint32 `json:"age"`
	Found string `json:"found"`
	Procs int    `json:"procedures"`
	Data  int    `json:"data"`
}

type infoRich struct {
	Product string `json:"product"`
	ProdID  uint16 `json:"prod_id"`
	Build   uint16 `json:"build"`
	Count   uint32 `json:"count"`
}

type infoLoadConfig struct {
	Size                uint32 `json:"size"`
	SecurityCookie      uint64 `json:"security_cookie"`
	GuardFlags          uint32 `json:"guard_flags"`
	CFGFunctions        int    `json:"cfg_functions"`
	SafeSEHHandlers     int    `json:"safeseh_handlers"`
	HotPatchTableOffset uint32 `json:"hotpatch_table_offset"`
}

type infoTLS struct {
	Callbacks      []uint32 `json:"callbacks"`
	TemplateSize   uint64   `json:"template_size"`
	SizeOfZeroFill uint32   `json:"size_of_zero_fill"`
}

type infoFunction struct {
	RVA     uint32      `json:"rva"`
	Size    uint32      `json:"size"`
	Name    string      `json:"name"`
	Display string      `json:"display,omitempty"`
	Sources []string    `json:"sources"`
	Chunks  []infoChunk `json:"chunks,omitempty"`
	Refs    int         `json:"refs"`
	Partial bool        `json:"partial,omitempty"`
}

type infoChunk struct {
	RVA  uint32 `json:"rva"`
	Size uint32 `json:"size"`
}

func newInfoReport(f *pe.File, withFunctions bool) *infoReport {
	r := &infoReport{
		Path: f.Path, SHA256: hex.EncodeToString(f.SHA256[:]), Size: f.Size,
		Machine: f.Machine.String(), ImageBase: f.ImageBase, EntryPoint: f.EntryPoint,
		SizeOfImage: f.SizeOfImage, Timestamp: f.TimeDateStamp, Checksum: f.CheckSum,
		Subsystem: f.Subsystem, DllCharacteristics: f.DllCharacteristics,
		Relocations: len(f.Relocs), Pdata: len(f.Unwind), FunctionCount: len(f.Functions()),
		Sections: []infoSection{}, Exports: []infoExport{}, Imports: []infoImport{},
		Debug: []infoDebug{}, Rich: []infoRich{}, Warnings: append([]string{}, f.Warnings...),
	}
	if p := f.PDB; p != nil {
		r.PDB = &infoPDB{Path: p.Path, GUID: p.GUID, Age: p.Age, Found: p.Found, Procs: p.Procs, Data: p.Data}
	}
	for _, s := range f.Sections {
		r.Sections = append(r.Sections, infoSection{s.Name, s.VirtualAddress, s.VirtualSize, s.SizeOfRawData, s.Characteristics})
	}
	for _, e := range f.Exports {
		r.Exports = append(r.Exports, infoExport{e.Name, e.Ordinal, e.RVA, e.Forwarder})
	}
	for _, imp := range f.Imports {
		ii := infoImport{DLL: imp.DLL, Delay: imp.Delay, Functions: []string{}}
		for _, fn := range imp.Funcs {
			if fn.Name != "" {
				ii.Functions = append(ii.Functions, fn.Name)
			} else {
				ii.Functions = append(ii.Functions, fmt.Sprintf("#%d", fn.Ordinal))
			}
		}
		r.Imports = append(r.Imports, ii)
	}
	for _, d := range f.Debug {
		r.Debug = append(r.Debug, infoDebug{d.TypeName, d.PDBPath, d.PDBGUID, d.PDBAge})
	}
	if f.Rich != nil {
		for _, e := range f.Rich.Entries {
			r.Rich = append(r.Rich, infoRich{e.Product, e.ProdID, e.Build, e.Count})
		}
	}
	if lc := f.LoadConfig; lc != nil {
		r.LoadConfig = &infoLoadConfig{lc.Size, lc.SecurityCookie, lc.GuardFlags, len(lc.GuardCFFunctions), len(lc.SEHandlers), lc.HotPatchTableOffset}
	}
	if t := f.TLS; t != nil {
		r.TLS = &infoTLS{Callbacks: append([]uint32{}, t.Callbacks...), SizeOfZeroFill: t.SizeOfZeroFill}
		if t.EndAddressOfRawData > t.StartAddressOfRawData {
			r.TLS.TemplateSize = t.EndAddressOfRawData - t.StartAddressOfRawData
		}
	}
	if withFunctions {
		r.Functions = []infoFunction{}
		for _, fn := range f.Functions() {
			jf := infoFunction{RVA: fn.RVA, Size: fn.Size, Name: fn.DisplayName(), Display: fn.Display(), Sources: fn.Sources.Strings(), Refs: len(fn.Refs), Partial: fn.Partial}
			for _, c := range fn.Chunks() {
				jf.Chunks = append(jf.Chunks, infoChunk{c.RVA, c.Size})
			}
			r.Functions = append(r.Functions, jf)
		}
	}
	return r
}

// describeImage opens opts.File and prints its description.
func describeImage(opts infoOptions, stdout io.Writer) error {
	var popts []pe.Option
	if opts.Map != "" {
		popts = append(popts, pe.WithMap(opts.Map))
	}
	popts = append(popts, opts.PDB.options(opts.PDBFile)...)
	f, err := pe.Open(opts.File, popts...)
	if err != nil {
		return err
	}
	defer f.Close()
	r := newInfoReport(f, opts.Functions)
	if opts.Format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.writeText(stdout)
}

func (r *infoReport) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", r.Path)
	fmt.Fprintf(&b, "  sha256       %s\n", r.SHA256)
	fmt.Fprintf(&b, "  machine      %s\n", r.Machine)
	fmt.Fprintf(&b, "  image base   %#x\n", r.ImageBase)
	fmt.Fprintf(&b, "  entry point  %#x\n", r.EntryPoint)
	fmt.Fprintf(&b, "  image size   %#x\n", r.SizeOfImage)
	fmt.Fprintf(&b, "  timestamp    %#08x\n", r.Timestamp)
	fmt.Fprintf(&b, "  checksum     %#08x\n", r.Checksum)
	fmt.Fprintf(&b, "  functions    %d (%d .pdata entries)\n", r.FunctionCount, r.Pdata)
	fmt.Fprintf(&b, "  relocations  %d\n", r.Relocations)
	for _, d := range r.Debug {
		if d.PDBPath != "" {
			fmt.Fprintf(&b, "  pdb          %s %s age %d\n", d.PDBPath, d.PDBGUID, d.PDBAge)
		}
	}
	if p := r.PDB; p != nil {
		fmt.Fprintf(&b, "  pdb used     %s (%s): %d procedures, %d data objects\n", p.Path, p.Found, p.Procs, p.Data)
	}
	if len(r.Rich) > 0 {
		var tools []string
		for _, e := range r.Rich {
			tools = append(tools, fmt.Sprintf("%s %d (x%d)", e.Product, e.Build, e.Count))
		}
		fmt.Fprintf(&b, "  rich header  %s\n", strings.Join(tools, ", "))
	}
	if r.TLS != nil {
		fmt.Fprintf(&b, "  tls          %d callbacks, template %d bytes, zero fill %d\n", len(r.TLS.Callbacks), r.TLS.TemplateSize, r.TLS.SizeOfZeroFill)
	}
	if lc := r.LoadConfig; lc != nil {
		fmt.Fprintf(&b, "  load config  %d bytes, guard flags %#x, %d CFG targets, %d SafeSEH handlers\n", lc.Size, lc.GuardFlags, lc.CFGFunctions, lc.SafeSEHHandlers)
	}
	b.WriteString("\nsections\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range r.Sections {
		fmt.Fprintf(tw, "  %s\t%#x\t%#x\t%#x\t%s\n", s.Name, s.RVA, s.VirtualSize, s.RawSize, sectionFlags(s.Characteristics))
	}
	tw.Flush()
	if len(r.Exports) > 0 {
		fmt.Fprintf(&b, "\nexports (%d)\n", len(r.Exports))
		for _, e := range r.Exports {
			if e.Forwarder != "" {
				fmt.Fprintf(&b, "  %4d  %s -> %s\n", e.Ordinal, e.Name, e.Forwarder)
			} else {
				fmt.Fprintf(&b, "  %4d  %-32s %#x\n", e.Ordinal, e.Name, e.RVA)
			}
		}
	}
	if len(r.Imports) > 0 {
		b.WriteString("\nimports\n")
		for _, imp := range r.Imports {
			delay := ""
			if imp.Delay {
				delay = " (delay-load)"
			}
			fmt.Fprintf(&b, "  %s%s: %d functions\n", imp.DLL, delay, len(imp.Functions))
		}
	}
	if r.Functions != nil {
		fmt.Fprintf(&b, "\nfunctions (%d)\n", len(r.Functions))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, fn := range r.Functions {
			extra := ""
			if len(fn.Chunks) > 0 {
				extra = fmt.Sprintf(" +%d chunks", len(fn.Chunks))
			}
			if fn.Partial {
				extra += " partial"
			}
			fmt.Fprintf(tw, "  %#x\t%#x\t%s\t%s%s\n", fn.RVA, fn.Size, report.DisplayName(fn.Name, fn.Display), strings.Join(fn.Sources, ","), extra)
		}
		tw.Flush()
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\nwarnings\n")
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "  %s\n", w)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sectionFlags(c uint32) string {
	s := []byte("---")
	if c&pe.IMAGE_SCN_MEM_READ != 0 {
		s[0] = 'r'
	}
	if c&pe.IMAGE_SCN_MEM_WRITE != 0 {
		s[1] = 'w'
	}
	if c&pe.IMAGE_SCN_MEM_EXECUTE != 0 {
		s[2] = 'x'
	}
	return string(s)
}
