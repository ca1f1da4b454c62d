// Package pe is hpbuild's model of a Windows PE image: headers, sections,
// directories, the function table and the references from code to code,
// imports and data.
//
// The package wraps github.com/saferwall/pe for the directories it parses
// well (exports, imports, delay imports, base relocations, the debug
// directory, the Rich header and COFF symbols) and parses the rest itself:
// the headers and section table (strictly, so that every error carries a
// file offset), the exception directory (.pdata RUNTIME_FUNCTION entries and
// UNWIND_INFO, which saferwall v1.6.5 decodes wrongly), the load
// configuration directory (which saferwall drops when it is larger than 320
// bytes) and the TLS directory. No saferwall type appears in this package's
// API.
//
// Only x86 (IMAGE_FILE_MACHINE_I386) and x64 (IMAGE_FILE_MACHINE_AMD64)
// images with native code are accepted. Other machines (ARM64, ARM,
// ARM64EC/CHPE hybrids, IA64, ...) and IL-only .NET assemblies are refused
// with an error that names what the file is.
//
// # Function table
//
// [File.Functions] lists every function the image model could find, with its
// extent and the sources that found it: a PDB (see below), .pdata (chained
// unwind fragments are merged into their parent), exports, COFF symbols, a
// link map, the entry
// point, TLS callbacks, SafeSEH handlers, the Control Flow Guard function
// table, direct call targets (recursive descent), code addresses taken by
// relocated pointers or RIP-relative lea, and a final sweep over code that
// no other source reached. Extents come from .pdata when present and from
// control flow otherwise; jump tables are recognised as data.
//
// # PDB symbols
//
// [WithPDB] and [WithPDBSearch] make the image's PDB (package
// github.com/hpbuild/hpbuild/pdb) the strongest source. It is used only when
// its GUID and age equal those of the image's CodeView debug record and its
// machine and section headers equal the image's; otherwise it is refused
// with a warning naming both GUIDs and the image is modelled without it.
// Every S_GPROC32/S_LPROC32 (and S_THUNK32) procedure becomes a function
// whose extent is the PDB's length, replacing the .pdata or control-flow
// extent; S_SEPCODE blocks become chunks of their procedure; calls into a
// procedure's interior never start a function. A function's names are its
// export name, the decorated S_PUB32 names at its address and the
// procedure's name (file-local procedures whose name several modules use
// get "object!name"), in that order; [Function.Display] keeps the
// undecorated procedure name. S_GDATA32/S_LDATA32 objects, and data publics
// no data record describes (string literals), become [Symbol]s with their
// size from the TPI type records (or section contributions), which the
// diff uses as the object's exact extent. Where a PDB lacks a procedure
// (objects built without debug information), the other sources still find
// the code.
//
// # Security
//
// Open is meant for untrusted input. Every size and count in the file is
// checked against the bytes actually present before it drives an allocation
// or a loop; the work done is bounded by the file size (decoding visits each
// code byte a bounded number of times); calls into saferwall/pe are guarded
// by recover and its log output is captured as warnings instead of being
// printed. Malformed input yields a *FormatError carrying the file offset of
// the problem; Open never panics on input.
//
// On Unix systems Open maps the file read-only instead of copying it into
// the heap (a 33 MB image is then 33 MB of shared, evictable page cache, not
// 33 MB the garbage collector must leave room for twice). The one thing a
// mapping cannot survive is the file being truncated by another process
// while it is open; release engineers' build outputs are not rewritten in
// place, and OpenBytes is there for callers that cannot promise it.
package pe
