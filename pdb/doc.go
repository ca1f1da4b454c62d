// Package pdb reads the parts of a Microsoft PDB (program database, MSF 7.0
// container) that hpbuild needs to name and delimit the code and data of a
// Windows image exactly: the identity of the PDB (GUID and age, matched
// against the image's CodeView debug record), the image's section headers,
// the DBI stream's module list and section contributions, the public
// symbols (S_PUB32, decorated names), the global and per-module symbols
// (S_GPROC32/S_LPROC32 and their _ID forms with their code lengths,
// S_THUNK32, S_SEPCODE for separated code, S_GDATA32/S_LDATA32 and the
// thread-local forms) and, from the TPI stream, only as much of the type
// records as data sizes need (structures, unions, arrays, pointers,
// modifiers, enums and the built-in types).
//
// Every address is returned as an RVA, converted through the section
// headers the linker stored in the PDB. Line numbers, source files, local
// variables, the IPI stream and the hash tables are not read.
//
// # Security
//
// Parse is meant for untrusted input. The MSF layer checks every block
// number against the blocks the file holds and every stream size against
// the file size before reading; the total of stream bytes materialised is
// bounded by a small multiple of the file size, so a directory that lists
// the same blocks for many streams cannot make Parse allocate without
// bound. Every count and length read from a stream is checked against the
// bytes that remain before it drives a loop or an allocation, and type
// resolution is iterative with a depth bound, so a cycle of type records
// cannot recurse forever. Malformed input yields a *FormatError that says
// which stream and offset; Parse never panics on input.
package pdb
