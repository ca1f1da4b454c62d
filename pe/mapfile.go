package pe

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

const maxMapFileSize = 256 << 20

var (
	// MSVC: " 0001:00000010       ?foo@@YAHH@Z               0000000180001010 f   foo.obj"
	msvcMapLine = regexp.MustCompile(`^\s*[0-9A-Fa-f]{4}:[0-9A-Fa-f]{8}\s+(\S+)\s+([0-9A-Fa-f]{8,16})\s+(f\s+)?(i\s+)?\S*`)
	// GNU ld: "                0x0000000180001010                compute"
	gnuMapLine = regexp.MustCompile(`^\s+0x([0-9A-Fa-f]{8,16})\s+([A-Za-z_.$?@][^\s=]*)\s*$`)
)

// ReadMapFile reads a link map written by MSVC link.exe (/MAP) or GNU ld
// (-Map) and returns its symbols as RVAs relative to imageBase. Functions
// are marked when the map says so (MSVC "f"); GNU ld maps do not say, and
// their symbols are treated as functions when they lie in code.
func ReadMapFile(path string, imageBase uint64) ([]Symbol, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("map file: %w", err)
	}
	if st.Size() > maxMapFileSize {
		return nil, fmt.Errorf("map file %s: too large (%d bytes, limit %d)", path, st.Size(), maxMapFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("map file: %w", err)
	}
	syms, err := ParseMap(data, imageBase)
	if err != nil {
		return nil, fmt.Errorf("map file %s: %w", path, err)
	}
	return syms, nil
}

// ParseMap parses the text of a link map; see ReadMapFile.
func ParseMap(data []byte, imageBase uint64) ([]Symbol, error) {
	msvc := bytes.Contains(data, []byte("Publics by Value"))
	var out []Symbol
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var name, addr string
		fn := false
		if msvc {
			m := msvcMapLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			name, addr, fn = m[1], m[2], m[3] != ""
		} else {
			m := gnuMapLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			addr, name = m[1], m[2]
			if strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__") {
				continue // linker-defined markers (__bss_start__, ...)
			}
			fn = true // decided by section later
		}
		va, err := strconv.ParseUint(addr, 16, 64)
		if err != nil || va < imageBase || va-imageBase > 1<<32-1 {
			continue
		}
		out = append(out, Symbol{Name: name, RVA: uint32(va - imageBase), Func: fn, Source: "map"})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no symbols found (not an MSVC or GNU ld map file, or made for another image base than %#x)", imageBase)
	}
	return out, nil
}

// addMapSymbols merges link-map symbols into f.Symbols.
func (f *File) addMapSymbols(syms []Symbol) {
	for _, s := range syms {
		if f.Section(s.RVA) == nil {
			continue
		}
		s.Func = f.IsCode(s.RVA)
		f.Symbols = append(f.Symbols, s)
	}
	sortSymbols(f.Symbols)
}
