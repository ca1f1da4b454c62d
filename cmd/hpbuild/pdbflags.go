package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/hpbuild/hpbuild/pe"
	"github.com/urfave/cli/v2"
)

// symbolPathEnv names the environment variable that lists symbol stores
// when --symbol-path is not given.
const symbolPathEnv = "HPBUILD_SYMBOL_PATH"

// pdbSearch is where info, diff and build look for PDBs, validated.
type pdbSearch struct {
	Off        bool     // --no-pdb: use no PDB at all
	SymbolPath []string // symbol store directories
}

// pdbFlags are the flags every command that opens images shares.
func pdbFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "symbol-path", Usage: "look for PDBs in the symbol stores `DIRS` (STORE/name.pdb/GUIDAGE/name.pdb; list separated by \"" + string(os.PathListSeparator) + "\"; default $" + symbolPathEnv + ")"},
		&cli.BoolFlag{Name: "no-pdb", Usage: "use no PDB, not even one next to the image", DisableDefaultText: true},
	}
}

// pdbSearchFrom reads the shared PDB flags; explicit lists the flags that
// name a PDB file, which --no-pdb contradicts.
func pdbSearchFrom(c *cli.Context, explicit ...string) (pdbSearch, error) {
	s := pdbSearch{Off: c.Bool("no-pdb")}
	for _, name := range explicit {
		if s.Off && c.String(name) != "" {
			return s, &usageError{err: errors.New("--no-pdb and --" + name + " contradict each other"), hint: "drop one of them"}
		}
	}
	sp := c.String("symbol-path")
	if !c.IsSet("symbol-path") {
		sp = os.Getenv(symbolPathEnv)
	}
	for _, d := range filepath.SplitList(sp) {
		if d = strings.TrimSpace(d); d != "" {
			s.SymbolPath = append(s.SymbolPath, d)
		}
	}
	return s, nil
}

// options turns the search into pe.Open options; explicit is the PDB a
// flag named for this image ("" for none).
func (s pdbSearch) options(explicit string) []pe.Option {
	if s.Off {
		return nil
	}
	if explicit != "" {
		return []pe.Option{pe.WithPDB(explicit)}
	}
	return []pe.Option{pe.WithPDBSearch(s.SymbolPath)}
}
