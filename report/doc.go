// Package report renders diff results for people: as text (the default of
// 'hpbuild diff'), as Markdown (a CI job summary or a pull-request comment)
// and as one self-contained HTML file with side-by-side disassembly.
//
// All three share one disassembler (Disassemble: instructions in Intel
// syntax with every reference shown by name, "call parse_u32",
// "mov eax, dword ptr [g_limit]") and one way of pairing old and new
// instructions (FirstDifference for the text window, Align for whole
// functions).
//
// Markdown and HTML documents are built by a Writer: Add renders one binary
// at once and keeps only the rendered text, never the images, so a bundle
// of hundreds of binaries stays small in memory; Close writes the document,
// summary first. Add may be called from several goroutines. The output
// depends only on the binaries added, not on the order or timing of the Add
// calls: binaries are sorted by verdict (reboot-required first) and path.
//
// # Security
//
// Function names, paths, rule messages and notes come from the images and
// are untrusted: C++ names contain '<', '&' and quotes. The HTML writer
// escapes every one of them through html/template and sets a Content
// Security Policy that forbids any resource outside the file; the Markdown
// writer puts names in code spans and escapes Markdown and HTML syntax in
// text. Documents are bounded: a Markdown document stays under
// MarkdownBudget bytes (past it, "… N more" lines), and the HTML shows the
// disassembly of at most MaxDisassembled functions per binary, each at
// most MaxRows rows long.
package report
