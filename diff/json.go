package diff

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// functionsKey is the functions member of an indented Report whose
// Functions are nil. It cannot occur inside a JSON string (the quotes and
// the newline would be escaped there), so it is found exactly once.
var functionsKey = []byte("\n  \"functions\": null")

// WriteJSON writes r to w as json.Encoder does with SetIndent("", "  ")
// (the hpbuild.diff/v1 contract, byte for byte), one function entry at a
// time: a big image's report is tens of megabytes of JSON, which is never
// held in memory whole.
func (r *Report) WriteJSON(w io.Writer) error {
	head := *r
	head.Functions = nil
	doc, err := json.MarshalIndent(&head, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the report: %w", err)
	}
	i := bytes.Index(doc, functionsKey)
	if i < 0 {
		return fmt.Errorf("encoding the report: no functions member")
	}
	cut := i + len(functionsKey) - len("null")
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(doc[:cut])
	switch {
	case r.Functions == nil:
		bw.WriteString("null")
	case len(r.Functions) == 0:
		bw.WriteString("[]")
	default:
		bw.WriteString("[\n")
		// One encoder for every entry: it reuses its buffers.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("    ", "  ")
		for k := range r.Functions {
			buf.Reset()
			if err := enc.Encode(&r.Functions[k]); err != nil {
				return fmt.Errorf("encoding function %s: %w", r.Functions[k].Name, err)
			}
			bw.WriteString("    ")
			bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
			if k < len(r.Functions)-1 {
				bw.WriteByte(',')
			}
			bw.WriteByte('\n')
		}
		bw.WriteString("  ]")
	}
	bw.Write(doc[cut+len("null"):])
	bw.WriteByte('\n')
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}
