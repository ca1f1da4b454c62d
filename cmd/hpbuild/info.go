package main

import (
	"io"

	"github.com/urfave/cli/v2"
)

// infoOptions is what 'hpbuild info' was asked to do, validated.
type infoOptions struct {
	File      string // the PE image to describe
	Format    string // "text" or "json"
	Functions bool   // list the function table
	Map       string // link map file (MSVC or GNU ld) adding function names; "" for none
	PDBFile   string // --pdb: the image's PDB; "" to look for it
	PDB       pdbSearch
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "describe a PE image: headers, sections, functions",
		UsageText: "hpbuild info [--format text|json] [--functions] [--map FILE] [--pdb FILE | --no-pdb] [--symbol-path DIRS] FILE",
		Description: `Info prints what hpbuild sees in a DLL or EXE: machine, image base,
sections, exports, imports and, with --functions, the function table with
where each function boundary came from (pdata, export, symbol, map, pdb).
With --format json, stdout carries one JSON object and nothing else.

The image's PDB, when found, names every procedure and data object and
gives their exact extents: --pdb FILE, else the file named by the image's
CodeView record next to the image, else a symbol store from --symbol-path
or $HPBUILD_SYMBOL_PATH. A PDB whose GUID or age differs from the image's
is refused with a warning. --no-pdb looks for none.

Examples:
  hpbuild info app.dll
  hpbuild info --functions app.dll
  hpbuild info app.dll --functions --format json
  hpbuild info --functions --map app.map app.dll
  hpbuild info --functions --pdb app.pdb app.dll
  hpbuild info --functions --symbol-path /srv/symbols app.dll`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text or json"},
			&cli.BoolFlag{Name: "functions", Usage: "list the function table", DisableDefaultText: true},
			&cli.StringFlag{Name: "map", Usage: "read function names from the link map `FILE` (MSVC or GNU ld)"},
			&cli.StringFlag{Name: "pdb", Usage: "read procedures and data objects from the PDB `FILE`"},
		}, pdbFlags()...),
		Action: func(c *cli.Context) error {
			opts, err := infoOptionsFrom(c)
			if err != nil {
				return err
			}
			return runInfo(opts, c.App.Writer)
		},
	}
}

// infoOptionsFrom validates the command line of 'hpbuild info'.
func infoOptionsFrom(c *cli.Context) (infoOptions, error) {
	if err := exactArgs(c, "FILE"); err != nil {
		return infoOptions{}, err
	}
	format, err := oneOf(c, "format", false, "text", "json")
	if err != nil {
		return infoOptions{}, err
	}
	search, err := pdbSearchFrom(c, "pdb")
	if err != nil {
		return infoOptions{}, err
	}
	return infoOptions{
		File:      c.Args().First(),
		Format:    format,
		Functions: c.Bool("functions"),
		Map:       c.String("map"),
		PDBFile:   c.String("pdb"),
		PDB:       search,
	}, nil
}

// runInfo prints the description of opts.File to stdout.
func runInfo(opts infoOptions, stdout io.Writer) error {
	return describeImage(opts, stdout)
}
