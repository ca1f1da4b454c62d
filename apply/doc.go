// Package apply puts an hpbuild patch package into effect and takes it
// out again.
//
// On disk (File, RollbackFile) it moves an image file from the package's
// base build to its target build and back with the package's file
// deltas, checking every result against the signed SHA-256 before it is
// written.
//
// In a running process (Live, Rollback, Status; Windows only) it places
// the package's new code in a patch area near the module, resolves every
// fixup against the module's load address, and redirects each changed
// function by writing a jump at its trampoline site while the process's
// threads are suspended. Link is the portable part of that: it lays the
// patch area out and computes every byte to be written, so that the
// platform code only moves bytes.
//
// All sites or none: a failure at any step restores what was written.
package apply
