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
// extent and the sources that found it: .pdata (chained unwind fragments are
// merged into their parent), exports, COFF symbols, a link map, the entry
// point, TLS callbacks, SafeSEH handlers, the Control Flow Guard function
// table, direct call targets (recursive descent), code addresses taken by
// relocated pointers or RIP-relative lea, and a final sweep over code that
// no other source reached. Extents come from .pdata when present and from
// control flow otherwise; jump tables are recognised as data.
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
