// Package diff compares two builds of a PE image function by function.
//
// The pipeline follows kpatch's create-diff-object in four phases, each in
// its own file:
//
//   - fingerprint.go: every function is turned into its code bytes with each
//     address-bearing field masked, plus one token per masked field saying
//     what it points at in its own image (a function, an import "dll!name",
//     a data object, a place inside the function itself). Branches inside a
//     function's main extent keep their bytes: their displacements do not
//     depend on where the function was placed.
//   - correlate.go: old and new functions are paired from strong anchors
//     outward: names, unique fingerprints, callees of paired functions
//     (repeated until nothing new is paired), then similarity of the masked
//     code among candidates of similar size. Unpaired old functions are
//     removed, unpaired new ones added.
//   - compare.go: a pair is unchanged when the masked bytes are equal and
//     every reference points at corresponding things: paired functions, the
//     same import, the same place in the function, read-only data with the
//     same contents, writable data that the other unchanged code agrees
//     corresponds. A layout shift alone never makes a function changed;
//     identical bytes whose references point at different targets do.
//   - changes.go: data objects and image-level differences (sections,
//     exports, imports, TLS, entry point, resources, debug directory,
//     timestamps, toolchain).
//
// Classification into hot-patchable and reboot-required, with named rules,
// is done in classify.go; the report model and its JSON form are in
// report.go.
package diff
