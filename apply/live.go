package apply

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/pkgformat"
)

// ErrNeedsWindows is returned by the live operations on other systems.
var ErrNeedsWindows = errors.New("live mode (--pid) needs Windows: it patches a running Windows process; use --file for the image on disk")

// Prot is a page protection of the patch area.
type Prot int

// Protections.
const (
	ProtRead Prot = iota
	ProtReadExec
	ProtReadWrite
)

// ModuleInfo is a module loaded in a process.
type ModuleInfo struct {
	Name string // file name, e.g. "app.dll"
	Path string // full path
	Base uint64
	Size uint32
}

// Process is what the live operations need of a running process. The
// Windows implementation is OpenProcess.
type Process interface {
	Is64() bool
	Read(addr uint64, n int) ([]byte, error)
	Write(addr uint64, b []byte) error
	// Alloc reserves and commits size bytes (read-write) within ±2 GiB of
	// near when it can, anywhere otherwise.
	Alloc(near uint64, size uint32) (uint64, error)
	Protect(addr uint64, size uint32, p Prot) error
	Free(addr uint64) error
	FlushCode(addr uint64, size uint32) error
	Modules() ([]ModuleInfo, error)
	// Suspend stops every thread but the caller's and returns their
	// instruction pointers.
	Suspend() (Suspended, error)
	// Call runs fn(args...) on a new thread of the process and waits.
	Call(fn uint64, args ...uint64) (uint64, error)
	// Regions lists the starts of committed private regions (where patch
	// areas live).
	Regions() ([]uint64, error)
}

// Suspended is a process whose threads are stopped.
type Suspended interface {
	IPs() []uint64
	// Stacks returns, per thread, the live part of its stack: from its
	// stack pointer to the end of the committed region that holds it.
	Stacks() ([][]byte, error)
	Resume() error
}

// SiteBusyError says a thread was executing bytes that were about to be
// written, for every attempt.
type SiteBusyError struct{ Func string }

func (e *SiteBusyError) Error() string {
	return fmt.Sprintf("a thread is executing the entry of %s, which the patch must rewrite; tried %d times, nothing written", e.Func, suspendTries)
}

// suspendTries bounds how often apply and rollback suspend the process
// waiting for threads to leave the bytes they rewrite.
const suspendTries = 20

// FindModule returns the loaded module named name (case-insensitive).
func FindModule(proc Process, name string) (ModuleInfo, error) {
	mods, err := proc.Modules()
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("listing modules: %w", err)
	}
	for _, m := range mods {
		if strings.EqualFold(m.Name, name) {
			return m, nil
		}
	}
	return ModuleInfo{}, fmt.Errorf("no module %s in the process", name)
}

// mappedHeader reads the headers of the module loaded at base: the first
// 1 KiB, and the offsets of its NT and optional headers in it (room for
// every field read here is checked).
func mappedHeader(proc Process, base uint64) (h []byte, opt uint32, err error) {
	h, err = proc.Read(base, 0x400)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the module header: %w", err)
	}
	if h[0] != 'M' || h[1] != 'Z' {
		return nil, 0, fmt.Errorf("no MZ header at %#x", base)
	}
	nt := binary.LittleEndian.Uint32(h[0x3c:])
	if nt > 0x400-0x100 || string(h[nt:nt+4]) != "PE\x00\x00" {
		return nil, 0, fmt.Errorf("no PE header at %#x", base)
	}
	return h, nt + 24, nil
}

// moduleIdentity reads TimeDateStamp, CheckSum and SizeOfImage from the
// mapped header of a module.
func moduleIdentity(proc Process, base uint64) (ts, sum, size uint32, err error) {
	h, opt, err := mappedHeader(proc, base)
	if err != nil {
		return 0, 0, 0, err
	}
	le := binary.LittleEndian
	return le.Uint32(h[opt-16:]), le.Uint32(h[opt+64:]), le.Uint32(h[opt+56:]), nil
}

// Applied lists the patch records in a process, with the address of the
// area each is in.
func Applied(proc Process) ([]Record, error) {
	regions, err := proc.Regions()
	if err != nil {
		return nil, fmt.Errorf("listing memory: %w", err)
	}
	var out []Record
	for _, a := range regions {
		head, err := proc.Read(a, 12)
		if err != nil {
			continue
		}
		n := RecordLen(head)
		if n == 0 {
			continue
		}
		b, err := proc.Read(a, n)
		if err != nil {
			continue // not all of it readable: not one of ours
		}
		r, _, err := ParseRecord(b)
		if err != nil {
			continue // the magic by chance, or damaged: not one we can act on
		}
		if r.Area == a {
			out = append(out, r)
		}
	}
	return out, nil
}

// LiveOptions configure Live.
type LiveOptions struct {
	Module string // module name in the process; "" for the package's base name
}

// Live applies a verified package to a running process: it checks the
// module's identity and every site's and old body's bytes, places the
// patch area, then writes every site with the threads suspended. It
// returns the record of what was applied. On any failure nothing stays
// written and the area is released.
func Live(proc Process, p *pkgformat.Package, opts LiveOptions) (*Record, error) {
	m := &p.Manifest
	if (m.Base.Machine == "amd64") != proc.Is64() {
		return nil, fmt.Errorf("package is for %s, the process is %s", m.Base.Machine, map[bool]string{true: "64-bit", false: "32-bit"}[proc.Is64()])
	}
	name := opts.Module
	if name == "" {
		name = m.Base.Name
	}
	mod, err := FindModule(proc, name)
	if err != nil {
		return nil, err
	}
	ts, sum, size, err := moduleIdentity(proc, mod.Base)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", mod.Name, err)
	}
	if ts != m.Base.TimeDateStamp || sum != m.Base.CheckSum || size != m.Base.SizeOfImage {
		return nil, &pkgformat.VerifyError{Class: pkgformat.FailWrongBase, Msg: fmt.Sprintf(
			"module %s in the process is another build: TimeDateStamp %#x, CheckSum %#x, SizeOfImage %#x; the package is for %#x, %#x, %#x",
			mod.Name, ts, sum, size, m.Base.TimeDateStamp, m.Base.CheckSum, m.Base.SizeOfImage)}
	}
	applied, err := Applied(proc)
	if err != nil {
		return nil, err
	}
	for _, r := range applied {
		if r.Base != mod.Base {
			continue
		}
		d := p.Digest()
		switch {
		case r.Package == hex.EncodeToString(d[:]):
			return nil, fmt.Errorf("this package (sequence %d) is already applied to %s", r.Sequence, mod.Name)
		case m.Sequence <= r.Sequence:
			return nil, fmt.Errorf("package sequence %d is not newer than sequence %d, applied to %s", m.Sequence, r.Sequence, mod.Name)
		default:
			return nil, fmt.Errorf("sequence %d is applied to %s; roll it back before applying sequence %d", r.Sequence, mod.Name, m.Sequence)
		}
	}
	// The module's file: its function table gives the old bodies' extents
	// and relocations.
	f, err := pe.Open(mod.Path)
	if err != nil {
		return nil, fmt.Errorf("module %s: reading its file %s: %w", mod.Name, mod.Path, err)
	}
	defer f.Close()
	if pkgformat.HexDigest(f.SHA256) != m.Base.SHA256 {
		return nil, &pkgformat.VerifyError{Class: pkgformat.FailWrongBase, Msg: fmt.Sprintf("module %s was loaded from %s, which is not the package's base build (sha256 %s)", mod.Name, mod.Path, m.Base.SHA256)}
	}
	if err := checkOldBodies(proc, f, mod.Base, m); err != nil {
		return nil, err
	}
	l, err := Plan(p)
	if err != nil {
		return nil, err
	}
	area, err := proc.Alloc(mod.Base, l.Size())
	if err != nil {
		return nil, fmt.Errorf("allocating %d bytes for the patch area: %w", l.Size(), err)
	}
	rec, err := place(proc, l, mod, f.ImageBase, area)
	if err != nil {
		if ferr := proc.Free(area); ferr != nil {
			err = errors.Join(err, fmt.Errorf("releasing the patch area: %w", ferr))
		}
		return nil, err
	}
	return rec, nil
}

// checkOldBodies compares every replaced function's body in the process
// with the package's digest (relocated fields masked).
func checkOldBodies(proc Process, f *pe.File, base uint64, m *pkgformat.Manifest) error {
	for _, fn := range m.Functions {
		if fn.OldRVA == 0 {
			continue
		}
		old, ok := f.FunctionAt(fn.OldRVA)
		if !ok {
			return fmt.Errorf("function %s: the module has no function at RVA %#x", fn.Name, fn.OldRVA)
		}
		var body []byte
		for _, part := range old.Parts() {
			b, err := proc.Read(base+uint64(part.RVA), int(part.Size))
			if err != nil {
				return fmt.Errorf("function %s: reading its code: %w", fn.Name, err)
			}
			body = append(body, b...)
		}
		if uint32(len(body)) != fn.OldSize {
			return fmt.Errorf("function %s: the module's body has %d bytes, the package's %d", fn.Name, len(body), fn.OldSize)
		}
		if d := sha256.Sum256(f.MaskRelocs(old, body)); hex.EncodeToString(d[:]) != fn.OldSHA256 {
			return fmt.Errorf("function %s: its code in the process is not the package's base code (already patched or modified); nothing written", fn.Name)
		}
	}
	return nil
}

// place links and writes the patch area at area, then the sites.
func place(proc Process, l *Layout, mod ModuleInfo, preferred, area uint64) (*Record, error) {
	k, err := l.Link(mod.Base, preferred, area, func(imp string) (uint64, error) { return ResolveImport(proc, imp) })
	if err != nil {
		return nil, err
	}
	// Sites must hold their original bytes.
	for _, s := range k.Sites {
		cur, err := proc.Read(s.Addr, len(s.Old))
		if err != nil {
			return nil, fmt.Errorf("function %s: reading its site: %w", s.Func, err)
		}
		if !bytes.Equal(cur, s.Old) {
			return nil, fmt.Errorf("function %s: site at %#x holds %x, the package expects %x; nothing written", s.Func, s.Addr, cur, s.Old)
		}
	}
	// The area: contents, then protections, then unwind registration.
	if err := proc.Write(k.TextAddr(), k.Text); err != nil {
		return nil, fmt.Errorf("writing the patch code: %w", err)
	}
	if len(k.Data) > 0 {
		if err := proc.Write(k.DataAddr(), k.Data); err != nil {
			return nil, fmt.Errorf("writing the patch data: %w", err)
		}
	}
	if err := proc.Write(area, k.Header); err != nil {
		return nil, fmt.Errorf("writing the patch record: %w", err)
	}
	if err := proc.Protect(area, uint32(len(k.Header)), ProtRead); err != nil {
		return nil, err
	}
	if err := proc.Protect(k.TextAddr(), uint32(len(k.Text)), ProtReadExec); err != nil {
		return nil, err
	}
	if err := proc.FlushCode(k.TextAddr(), uint32(len(k.Text))); err != nil {
		return nil, err
	}
	if k.Unwind.Count > 0 {
		if err := registerUnwind(proc, k); err != nil {
			return nil, err
		}
	}
	if err := writeSites(proc, k.Sites, false); err != nil {
		if k.Unwind.Count > 0 {
			_ = unregisterUnwind(proc, k.Unwind.Table)
		}
		return nil, err
	}
	return &k.Record, nil
}

// writeSites writes every site's new bytes (or, with restore, its old
// bytes) with the process suspended, after checking that no thread is
// inside them; it retries a bounded number of times. If a write fails,
// the sites already written are put back.
func writeSites(proc Process, sites []SiteWrite, restore bool) error {
	for try := 0; ; try++ {
		sus, err := proc.Suspend()
		if err != nil {
			return fmt.Errorf("suspending the process: %w", err)
		}
		busy := ""
		for _, s := range sites {
			for _, ip := range sus.IPs() {
				if ip >= s.Guard[0] && ip < s.Guard[1] {
					busy = s.Func
				}
			}
		}
		if busy != "" {
			if err := sus.Resume(); err != nil {
				return err
			}
			if try+1 >= suspendTries {
				return &SiteBusyError{Func: busy}
			}
			pause(try)
			continue
		}
		err = checkSites(proc, sites, restore)
		if err == nil {
			err = writeAll(proc, sites, restore)
		}
		if rerr := sus.Resume(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
}

// checkSites compares every site with what must be there before it is
// written (the original bytes, or for a restore the jump), with the
// threads stopped: nothing may have changed since the first look.
func checkSites(proc Process, sites []SiteWrite, restore bool) error {
	for _, s := range sites {
		want := s.Old
		if restore {
			want = s.New
		}
		cur, err := proc.Read(s.Addr, len(want))
		if err != nil {
			return fmt.Errorf("function %s: reading its site: %w", s.Func, err)
		}
		if !bytes.Equal(cur, want) {
			return fmt.Errorf("function %s: site at %#x changed to %x while the process was being prepared; nothing written", s.Func, s.Addr, cur)
		}
	}
	return nil
}

func writeAll(proc Process, sites []SiteWrite, restore bool) error {
	for i, s := range sites {
		if err := writeSite(proc, s, restore); err != nil {
			for _, done := range sites[:i] {
				_ = writeSite(proc, done, !restore) // undo; the first error is the one to report
			}
			return fmt.Errorf("function %s: writing its site: %w", s.Func, err)
		}
	}
	return nil
}

// writeSite writes one site. A hot-patch padding jump is written first,
// then the 2-byte entry jump; a restore goes the other way.
func writeSite(proc Process, s SiteWrite, restore bool) error {
	b := s.New
	if restore {
		b = s.Old
	}
	if s.Method == "hotpatch-pad" && len(b) == 7 {
		first, second := []byte(b[:5]), []byte(b[5:])
		firstAt, secondAt := s.Addr, s.Addr+5
		if restore {
			first, second, firstAt, secondAt = b[5:], b[:5], s.Addr+5, s.Addr
		}
		if err := proc.Write(firstAt, first); err != nil {
			return err
		}
		if err := proc.Write(secondAt, second); err != nil {
			return err
		}
	} else if err := proc.Write(s.Addr, b); err != nil {
		return err
	}
	return proc.FlushCode(s.Addr, uint32(len(b)))
}

// Rollback takes the package applied to a process (to module, when not
// "") out again: the sites
// must still hold what apply wrote; the original bytes go back and the
// patch area is released once no thread is inside it.
func Rollback(proc Process, p *pkgformat.Package, module string) (*Record, error) {
	applied, err := Applied(proc)
	if err != nil {
		return nil, err
	}
	if module != "" {
		mod, err := FindModule(proc, module)
		if err != nil {
			return nil, err
		}
		var mine []Record
		for _, r := range applied {
			if r.Base == mod.Base {
				mine = append(mine, r)
			}
		}
		applied = mine
	}
	d := p.Digest()
	want := hex.EncodeToString(d[:])
	var rec *Record
	for i := range applied {
		if applied[i].Package == want {
			rec = &applied[i]
		}
	}
	if rec == nil {
		return nil, fmt.Errorf("package (sequence %d, for %s) is not applied in this process", p.Manifest.Sequence, p.Manifest.Base.Name)
	}
	var sites []SiteWrite
	for _, s := range rec.Sites {
		old, err1 := hex.DecodeString(s.Old)
		nw, err2 := hex.DecodeString(s.New)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("patch record: %w", err)
		}
		cur, err := proc.Read(s.Addr, len(nw))
		if err != nil {
			return nil, fmt.Errorf("function %s: reading its site: %w", s.Func, err)
		}
		if bytes.Equal(cur, old) {
			continue // restored by an earlier rollback that did not finish
		}
		if !bytes.Equal(cur, nw) {
			return nil, fmt.Errorf("function %s: site at %#x holds %x, not the jump apply wrote (%x); nothing restored", s.Func, s.Addr, cur, nw)
		}
		method := "jmp-rel32"
		if len(old) == 7 {
			method = "hotpatch-pad"
		}
		// A thread must not be in the site, nor anywhere in the patch area,
		// when the area goes away.
		sites = append(sites, SiteWrite{Func: s.Func, Method: method, Addr: s.Addr, Old: old, New: nw, Guard: [2]uint64{s.Addr, s.Addr + uint64(len(old))}})
	}
	if err := writeSites(proc, sites, true); err != nil {
		return nil, err
	}
	var returns []uint64
	if l, err := Plan(p); err == nil {
		text := rec.Area + uint64(l.HeaderSize)
		for _, off := range l.ReturnOffsets() {
			returns = append(returns, text+uint64(off))
		}
	}
	if err := waitOutside(proc, rec.Area, rec.Size, returns, proc.Is64()); err != nil {
		return rec, fmt.Errorf("sites restored, but the patch area stays: %w", err)
	}
	if rec.Unwind != 0 {
		if err := unregisterUnwind(proc, rec.Unwind); err != nil {
			return rec, fmt.Errorf("sites restored, but the patch area stays: %w", err)
		}
	}
	if err := proc.Free(rec.Area); err != nil {
		return rec, fmt.Errorf("sites restored, but releasing the patch area: %w", err)
	}
	return rec, nil
}

// waitOutside waits (bounded) until no thread's instruction pointer is in
// [area, area+size) and no thread's stack holds one of the return
// addresses into the patch code (a call made from patched code that has
// not returned yet).
func waitOutside(proc Process, area, size uint64, returns []uint64, is64 bool) error {
	ret := make(map[uint64]bool, len(returns))
	for _, r := range returns {
		ret[r] = true
	}
	for try := 0; ; try++ {
		sus, err := proc.Suspend()
		if err != nil {
			return err
		}
		why := ""
		for _, ip := range sus.IPs() {
			if ip >= area && ip < area+size {
				why = fmt.Sprintf("a thread is executing patch code at %#x", ip)
			}
		}
		if why == "" && len(ret) > 0 {
			stacks, err := sus.Stacks()
			if err != nil {
				sus.Resume()
				return err
			}
			for _, st := range stacks {
				if a, ok := stackRefers(st, ret, is64); ok {
					why = fmt.Sprintf("a thread's stack holds the return address %#x into patch code", a)
				}
			}
		}
		if err := sus.Resume(); err != nil {
			return err
		}
		if why == "" {
			return nil
		}
		if try+1 >= suspendTries {
			return fmt.Errorf("%s after %d tries; roll back again when the call has returned", why, suspendTries)
		}
		pause(try)
	}
}

// stackRefers looks for one of ret in the pointer-sized slots of stack.
func stackRefers(stack []byte, ret map[uint64]bool, is64 bool) (uint64, bool) {
	w := 4
	if is64 {
		w = 8
	}
	for i := 0; i+w <= len(stack); i += w {
		v := uint64(binary.LittleEndian.Uint32(stack[i:]))
		if is64 {
			v = binary.LittleEndian.Uint64(stack[i:])
		}
		if ret[v] {
			return v, true
		}
	}
	return 0, false
}

// ResolveImport finds "dll!name" in the process: the module's export
// table, read from its memory, following forwarders.
func ResolveImport(proc Process, imp string) (uint64, error) {
	dll, name, ok := strings.Cut(imp, "!")
	if !ok {
		return 0, fmt.Errorf("import %q is not dll!name", imp)
	}
	return resolveExport(proc, dll, name, 0)
}

func resolveExport(proc Process, dll, name string, depth int) (uint64, error) {
	if depth > 8 {
		return 0, fmt.Errorf("export forwarders of %s!%s go too deep", dll, name)
	}
	if filepath.Ext(dll) == "" {
		dll += ".dll"
	}
	mod, err := FindModule(proc, dll)
	if err != nil {
		lower := strings.ToLower(dll)
		if strings.HasPrefix(lower, "api-ms-") || strings.HasPrefix(lower, "ext-ms-") {
			// An API set: the process's schema maps it to a host DLL;
			// the core sets live in these.
			for _, host := range []string{"kernelbase.dll", "kernel32.dll", "ntdll.dll"} {
				if a, herr := resolveExport(proc, host, name, depth+1); herr == nil {
					return a, nil
				}
			}
		}
		return 0, fmt.Errorf("%w (hpbuild does not load libraries into a process)", err)
	}
	h, opt, err := mappedHeader(proc, mod.Base)
	if err != nil {
		return 0, fmt.Errorf("module %s: %w", mod.Name, err)
	}
	dirs := opt + 96
	if binary.LittleEndian.Uint16(h[opt:]) == 0x20b {
		dirs = opt + 112
	}
	expRVA, expSize := binary.LittleEndian.Uint32(h[dirs:]), binary.LittleEndian.Uint32(h[dirs+4:])
	if expRVA == 0 || expSize < 40 || expRVA >= mod.Size || expSize > mod.Size-expRVA {
		return 0, fmt.Errorf("module %s has no export table", mod.Name)
	}
	exp, err := proc.Read(mod.Base+uint64(expRVA), int(expSize))
	if err != nil {
		return 0, err
	}
	le := binary.LittleEndian
	nFuncs, nNames := le.Uint32(exp[20:]), le.Uint32(exp[24:])
	funcs, names, ords := le.Uint32(exp[28:]), le.Uint32(exp[32:]), le.Uint32(exp[36:])
	if nNames > 1<<16 || nFuncs > 1<<16 {
		return 0, fmt.Errorf("module %s: export table too large", mod.Name)
	}
	read := func(rva uint32, n int) ([]byte, error) { return proc.Read(mod.Base+uint64(rva), n) }
	nameTab, err1 := read(names, 4*int(nNames))
	ordTab, err2 := read(ords, 2*int(nNames))
	funcTab, err3 := read(funcs, 4*int(nFuncs))
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, fmt.Errorf("module %s: export table: %w", mod.Name, err)
	}
	for i := range int(nNames) {
		s, err := read(le.Uint32(nameTab[4*i:]), len(name)+1)
		if err != nil || string(s) != name+"\x00" {
			continue
		}
		o := le.Uint16(ordTab[2*i:])
		if uint32(o) >= nFuncs {
			break
		}
		rva := le.Uint32(funcTab[4*int(o):])
		if rva >= expRVA && rva < expRVA+expSize { // forwarder "DLL.name"
			fw := exp[rva-expRVA:]
			if i := bytes.IndexByte(fw, 0); i >= 0 {
				fw = fw[:i]
			}
			d, n, ok := strings.Cut(string(fw), ".")
			if !ok || strings.HasPrefix(n, "#") {
				return 0, fmt.Errorf("%s!%s forwards to %q, which hpbuild does not resolve", dll, name, fw)
			}
			return resolveExport(proc, d, n, depth+1)
		}
		return mod.Base + uint64(rva), nil
	}
	return 0, fmt.Errorf("module %s does not export %s", mod.Name, name)
}

// registerUnwind calls RtlAddFunctionTable in the process for the new
// code's unwind entries.
func registerUnwind(proc Process, k *Linked) error {
	fn, err := resolveExport(proc, "kernel32.dll", "RtlAddFunctionTable", 0)
	if err != nil {
		return fmt.Errorf("registering unwind info: %w", err)
	}
	ok, err := proc.Call(fn, k.Unwind.Table, uint64(k.Unwind.Count), k.Unwind.Base)
	if err != nil {
		return fmt.Errorf("registering unwind info: %w", err)
	}
	if ok&0xff == 0 {
		return errors.New("registering unwind info: RtlAddFunctionTable failed")
	}
	return nil
}

func unregisterUnwind(proc Process, table uint64) error {
	fn, err := resolveExport(proc, "kernel32.dll", "RtlDeleteFunctionTable", 0)
	if err != nil {
		return fmt.Errorf("unregistering unwind info: %w", err)
	}
	if _, err := proc.Call(fn, table); err != nil {
		return fmt.Errorf("unregistering unwind info: %w", err)
	}
	return nil
}

// pause waits a little longer after each busy attempt.
func pause(try int) { time.Sleep(time.Duration(try+1) * 10 * time.Millisecond) }
