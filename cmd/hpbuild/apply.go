package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/hpbuild/hpbuild/apply"
	"github.com/hpbuild/hpbuild/pkgformat"
	"github.com/hpbuild/hpbuild/signing"
	"github.com/urfave/cli/v2"
)

// openVerified reads a package and checks its signatures and blobs: the
// first thing apply and rollback do.
func openVerified(path string, keys []*signing.PublicKey) (*pkgformat.Package, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := pkgformat.ReadVerified(b, keys, 1)
	if err == nil {
		err = p.VerifyBlobs()
	}
	if err != nil {
		return nil, &verifyError{err: fmt.Errorf("%s: %w", path, err)}
	}
	return p, nil
}

// patchTarget says where apply and rollback act: a process or a file.
type patchTarget struct {
	pid          int
	module       string
	file, output string
}

func targetFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "pub", Usage: "trust the public key in `FILE` (repeatable; one valid signature is needed)"},
		&cli.IntFlag{Name: "pid", Usage: "patch the running process `N` (Windows)"},
		&cli.StringFlag{Name: "module", Usage: "the module's `NAME` in the process (default: the package's base name)"},
		&cli.StringFlag{Name: "file", Usage: "patch the image `FILE` on disk instead of a process"},
		&cli.StringFlag{Name: "o", Aliases: []string{"output"}, Usage: "with --file: write the result to `OUT` (checked, then renamed into place)"},
	}
}

func readTarget(c *cli.Context) (patchTarget, []*signing.PublicKey, error) {
	t := patchTarget{pid: c.Int("pid"), module: c.String("module"), file: c.String("file"), output: c.String("o")}
	if err := exactArgs(c, "PACKAGE"); err != nil {
		return t, nil, err
	}
	if len(c.StringSlice("pub")) == 0 {
		return t, nil, &usageError{err: fmt.Errorf("%s needs at least one --pub KEY", c.Command.Name)}
	}
	switch {
	case t.pid != 0 && t.file != "":
		return t, nil, &usageError{err: errors.New("--pid and --file exclude each other")}
	case t.pid == 0 && t.file == "":
		return t, nil, &usageError{err: fmt.Errorf("%s needs --pid N (a running process) or --file IMAGE -o OUT (on disk)", c.Command.Name)}
	case t.file != "" && t.output == "":
		return t, nil, &usageError{err: errors.New("--file needs -o OUT")}
	case t.file == "" && t.output != "":
		return t, nil, &usageError{err: errors.New("-o goes with --file")}
	case t.pid < 0:
		return t, nil, &usageError{err: fmt.Errorf("--pid must be positive, got %d", t.pid)}
	}
	keys, err := loadPublicKeys(c.StringSlice("pub"))
	return t, keys, err
}

func applyCommand() *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "put a package into a running process, or move an image file to the target build",
		UsageText: "hpbuild apply --pub KEY --pid N [--module NAME] PACKAGE\n   hpbuild apply --pub KEY --file OLD -o NEW PACKAGE",
		Description: `Apply verifies PACKAGE's signature and contents first; nothing is touched
when that fails (exit 4).

With --pid (Windows) it finds the module in process N, checks that it is
the package's base build (TimeDateStamp, CheckSum, SizeOfImage, the file it
was loaded from, every replaced function's code and every site's bytes),
places the new code in a patch area within ±2 GiB of the module, resolves
its references against the module's load address and the process's
exports, registers its x64 unwind info, then suspends the threads and
writes the jumps. All sites or none: a failure restores what was written.
A thread executing bytes about to be rewritten makes it retry, then refuse
with the function named. A package whose sequence is not newer than the
one applied to the module is refused.

With --file it turns the base image OLD into the target build with the
package's file delta; the result is checked against the signed SHA-256
before it is renamed into place as OUT.

Examples:
  hpbuild apply --pub release.pub --pid 4242 fix-1.hpkg
  hpbuild apply --pub release.pub --file app.dll -o app.new.dll fix-1.hpkg`,
		Flags:  targetFlags(),
		Action: func(c *cli.Context) error { return patchAction(c, false) },
	}
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "take a package out of a running process, or move an image file back to the base build",
		UsageText: "hpbuild rollback --pub KEY --pid N PACKAGE\n   hpbuild rollback --pub KEY --file NEW -o OLD PACKAGE",
		Description: `Rollback verifies PACKAGE like apply. With --pid (Windows) it checks that
every site still holds the jump apply wrote, writes the original bytes
back with the threads suspended, and releases the patch area once no
thread is executing in it. With --file it turns the target image NEW back
into the base build with the package's reverse delta, checked against the
signed SHA-256 before it is renamed into place as OLD.

Examples:
  hpbuild rollback --pub release.pub --pid 4242 fix-1.hpkg
  hpbuild rollback --pub release.pub --file app.new.dll -o app.dll fix-1.hpkg`,
		Flags:  targetFlags(),
		Action: func(c *cli.Context) error { return patchAction(c, true) },
	}
}

// patchAction runs apply (back false) or rollback (back true): verify the
// package, then act on the file or the process.
func patchAction(c *cli.Context, back bool) error {
	t, keys, err := readTarget(c)
	if err != nil {
		return err
	}
	path := c.Args().Get(0)
	p, err := openVerified(path, keys)
	if err != nil {
		return err
	}
	if t.file != "" {
		return fileAction(c.App.Writer, p, t, back)
	}
	proc, err := apply.OpenProcess(t.pid)
	if err != nil {
		return err
	}
	defer apply.Close(proc)
	if back {
		rec, err := apply.Rollback(proc, p, t.module)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(c.App.Writer, "rolled back %s (sequence %d) from %s in process %d: %d sites restored, patch area released\n",
			path, rec.Sequence, rec.Module, t.pid, len(rec.Sites))
		return nil
	}
	rec, err := apply.Live(proc, p, apply.LiveOptions{Module: t.module})
	if err != nil {
		return asVerify(fmt.Errorf("%s: %w", path, err))
	}
	fmt.Fprintf(c.App.Writer, "applied %s (sequence %d) to %s in process %d: %d sites, patch area %#x (%d bytes)\n",
		path, rec.Sequence, rec.Module, t.pid, len(rec.Sites), rec.Area, rec.Size)
	return nil
}

// asVerify gives identity failures (another build) the verify exit status.
func asVerify(err error) error {
	var v *pkgformat.VerifyError
	if errors.As(err, &v) {
		return &verifyError{err: err}
	}
	return err
}

// fileAction moves an image on disk forward (apply) or back (rollback).
func fileAction(w io.Writer, p *pkgformat.Package, t patchTarget, back bool) error {
	in, err := os.ReadFile(t.file)
	if err != nil {
		return err
	}
	m := &p.Manifest
	var out []byte
	if back {
		out, err = p.Reverse(in)
	} else {
		out, err = p.Forward(in)
	}
	if err != nil {
		return &verifyError{err: fmt.Errorf("%s: %w", t.file, err)}
	}
	if err := writeFileAtomic(t.output, out, 0o644); err != nil {
		return err
	}
	sum := m.Target.SHA256
	if back {
		sum = m.Base.SHA256
	}
	fmt.Fprintf(w, "wrote %s (sha256 %s, %d bytes)\n", t.output, sum, len(out))
	return nil
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "list the packages applied to a running process",
		UsageText: "hpbuild status --pid N",
		Description: `Status lists, for each module of process N (Windows) that hpbuild
patched, the packages applied with their sequence numbers, patch areas
and sites.

Examples:
  hpbuild status --pid 4242`,
		Flags: []cli.Flag{&cli.IntFlag{Name: "pid", Usage: "the process `N`"}},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c); err != nil {
				return err
			}
			pid := c.Int("pid")
			if pid <= 0 {
				return &usageError{err: errors.New("status needs --pid N")}
			}
			proc, err := apply.OpenProcess(pid)
			if err != nil {
				return err
			}
			defer apply.Close(proc)
			recs, err := apply.Applied(proc)
			if err != nil {
				return err
			}
			sort.Slice(recs, func(i, j int) bool {
				if recs[i].Module != recs[j].Module {
					return recs[i].Module < recs[j].Module
				}
				return recs[i].Sequence < recs[j].Sequence
			})
			if len(recs) == 0 {
				fmt.Fprintf(c.App.Writer, "process %d: no hpbuild packages applied\n", pid)
			}
			for _, r := range recs {
				fmt.Fprintf(c.App.Writer, "%s at %#x: sequence %d (package %s), %d sites, patch area %#x (%d bytes)\n",
					r.Module, r.Base, r.Sequence, r.Package[:16], len(r.Sites), r.Area, r.Size)
			}
			return nil
		},
	}
}
