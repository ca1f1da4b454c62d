package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/hpbuild/hpbuild/assemble"
	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/internal/atomicfile"
	"github.com/hpbuild/hpbuild/internal/membudget"
	"github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/pkgformat"
	"github.com/hpbuild/hpbuild/signing"
	"github.com/urfave/cli/v2"
)

// writeFileAtomic writes data to path through a temporary file renamed
// into place: a reader never sees half a file, and a failure leaves
// nothing behind.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.Write(path, data, perm)
}

// writeNewFile creates path, which must not exist (a key is never
// overwritten, even by a race), and writes data to it; on failure nothing
// is left.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "make an ed25519 key pair for signing packages",
		UsageText: "hpbuild keygen -o NAME",
		Description: `Keygen writes NAME.key (the private key, mode 0600) and NAME.pub (the
public key with its key id). It never overwrites an existing file.

Examples:
  hpbuild keygen -o release`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "o", Usage: "write `NAME`.key and NAME.pub"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c); err != nil {
				return err
			}
			name := c.String("o")
			if name == "" {
				return &usageError{err: errors.New("keygen needs -o NAME"), hint: "hpbuild keygen -o release"}
			}
			for _, p := range []string{name + ".key", name + ".pub"} {
				if _, err := os.Lstat(p); err == nil {
					return fmt.Errorf("%s already exists; keygen does not overwrite keys", p)
				}
			}
			k, err := signing.Generate(nil)
			if err != nil {
				return err
			}
			if err := writeNewFile(name+".key", signing.MarshalPrivate(k), 0o600); err != nil {
				return err
			}
			if err := writeNewFile(name+".pub", signing.MarshalPublic(k.Public()), 0o644); err != nil {
				os.Remove(name + ".key")
				return err
			}
			fmt.Fprintf(c.App.Writer, "wrote %s.key (keep it secret) and %s.pub, key id %s\n", name, name, k.ID)
			return nil
		},
	}
}

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build a signed hot-patch package bringing OLD to NEW",
		UsageText: "hpbuild build --key KEY -o OUT.hpkg [--sequence N] [--min-sequence N] [--policy FILE] [--old-pdb FILE] [--new-pdb FILE] [--symbol-path DIRS] [--no-pdb] OLD NEW",
		Description: `Build diffs OLD and NEW, and when the update is hot-patchable writes a
package signed with KEY: the new code with its fixups, trampoline sites and
the bytes they replace, new data, the diff report, and file deltas to move
the file on disk forward and back. A reboot-required update is refused
with exit status 3 and the reasons; no file is written then, nor on any
other failure. PDBs are found and checked as for diff.

Examples:
  hpbuild build --key release.key -o fix-1.hpkg old/app.dll new/app.dll
  hpbuild build --key build.key -o fix-2.hpkg --sequence 2 --min-sequence 1 old/app.dll new/app.dll`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "sign with the private key in `FILE`"},
			&cli.StringFlag{Name: "o", Usage: "write the package to `FILE`"},
			&cli.Uint64Flag{Name: "sequence", Value: 1, Usage: "the package's sequence number `N`"},
			&cli.Uint64Flag{Name: "min-sequence", Usage: "the lowest installed sequence `N` this package may replace"},
			&cli.StringFlag{Name: "policy", Usage: "apply the rule policy in `FILE`"},
			&cli.StringFlag{Name: "old-pdb", Usage: "read OLD's procedures and data objects from the PDB `FILE`"},
			&cli.StringFlag{Name: "new-pdb", Usage: "read NEW's procedures and data objects from the PDB `FILE`"},
		}, pdbFlags()...),
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "OLD", "NEW"); err != nil {
				return err
			}
			if c.String("key") == "" || c.String("o") == "" {
				return &usageError{err: errors.New("build needs --key KEY and -o OUT.hpkg"), hint: "hpbuild build --key release.key -o fix.hpkg OLD NEW"}
			}
			if c.Uint64("min-sequence") > c.Uint64("sequence") {
				return &usageError{err: fmt.Errorf("--min-sequence %d is above --sequence %d", c.Uint64("min-sequence"), c.Uint64("sequence"))}
			}
			key, err := signing.LoadPrivate(c.String("key"))
			if err != nil {
				return err
			}
			policy, err := loadPolicy(c.String("policy"))
			if err != nil {
				return err
			}
			search, err := pdbSearchFrom(c, "old-pdb", "new-pdb")
			if err != nil {
				return err
			}
			defer memoryBudget(c.Args().Get(0), c.Args().Get(1)).Release()
			oldF, newF, err := openPair(c.Args().Get(0), c.Args().Get(1), search.options(c.String("old-pdb")), search.options(c.String("new-pdb")))
			if err != nil {
				return err
			}
			defer oldF.Close()
			defer newF.Close()
			r := diff.Compare(oldF, newF)
			r.ApplyPolicy(policy)
			p, err := assemble.BuildSigned(oldF, newF, r, assemble.Options{
				Sequence: c.Uint64("sequence"), MinSequence: c.Uint64("min-sequence"), Tool: "hpbuild " + version(),
			}, key)
			var rr *assemble.RebootRequiredError
			if errors.As(err, &rr) {
				return &failOnError{err: fmt.Errorf("%w:\n  %s", err, strings.Join(rr.Reasons, "\n  "))}
			}
			if err != nil {
				return err
			}
			b, err := p.Marshal()
			if err != nil {
				return err
			}
			if err := writeFileAtomic(c.String("o"), b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "wrote %s: %d bytes, %d function(s), %d data object(s), signed by %s\n",
				c.String("o"), len(b), len(p.Manifest.Functions), len(p.Manifest.Data), key.ID)
			return nil
		},
	}
}

// loadPolicy reads a policy file; "" means none.
func loadPolicy(path string) (*diff.Policy, error) {
	if path == "" {
		return nil, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	p, err := diff.ParsePolicy(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// memoryBudget bounds the Go heap of a command that compares the images at
// paths by their combined size (see internal/membudget).
func memoryBudget(paths ...string) *membudget.Budget {
	var n int64
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return membudget.Set(n)
}

// openPair models both images at once.
func openPair(oldPath, newPath string, oldOpts, newOpts []pe.Option) (*pe.File, *pe.File, error) {
	var oldF, newF *pe.File
	var oldErr, newErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		newF, newErr = pe.Open(newPath, newOpts...)
	}()
	oldF, oldErr = pe.Open(oldPath, oldOpts...)
	wg.Wait()
	if err := errors.Join(oldErr, newErr); err != nil {
		for _, f := range []*pe.File{oldF, newF} {
			if f != nil {
				f.Close()
			}
		}
		return nil, nil, err
	}
	return oldF, newF, nil
}

func signCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "add a signature to a package",
		UsageText: "hpbuild sign --key KEY --pub TRUSTED [--pub TRUSTED ...] PACKAGE",
		Description: `Sign adds KEY's signature to PACKAGE (a release key after the build key,
say), replacing an earlier signature by the same key. It signs only what it
has verified: the package must already carry a valid signature by one of the
trusted public keys, and every blob must match its signed digest; otherwise
it exits with status 4. The package is rewritten in place, atomically.

Examples:
  hpbuild sign --key release.key --pub build.pub fix-1.hpkg`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "sign with the private key in `FILE`"},
			&cli.StringSliceFlag{Name: "pub", Usage: "require a valid signature by the public key in `FILE` first (repeatable)"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "PACKAGE"); err != nil {
				return err
			}
			if c.String("key") == "" || len(c.StringSlice("pub")) == 0 {
				return &usageError{err: errors.New("sign needs --key KEY and at least one --pub TRUSTED"), hint: "hpbuild sign --key release.key --pub build.pub fix.hpkg"}
			}
			key, err := signing.LoadPrivate(c.String("key"))
			if err != nil {
				return err
			}
			trusted, err := loadPublicKeys(c.StringSlice("pub"))
			if err != nil {
				return err
			}
			path := c.Args().Get(0)
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			p, err := pkgformat.ReadVerified(b, trusted, 1)
			if err == nil {
				err = p.VerifyBlobs()
			}
			if err != nil {
				return &verifyError{err: fmt.Errorf("%s: %w; not signing", path, err)}
			}
			p.Sign(key)
			out, err := p.Marshal()
			if err != nil {
				return err
			}
			if err := writeFileAtomic(path, out, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "signed %s with key %s (%d signature(s))\n", path, key.ID, len(p.Sigs))
			return nil
		},
	}
}

// loadPublicKeys reads public key files.
func loadPublicKeys(paths []string) ([]*signing.PublicKey, error) {
	var keys []*signing.PublicKey
	for _, path := range paths {
		k, err := signing.LoadPublic(path)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// readPackage reads and parses a package file.
func readPackage(path string) (*pkgformat.Package, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := pkgformat.Read(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a package's signatures, contents and base image",
		UsageText: "hpbuild verify --pub KEY [--pub KEY ...] [--threshold N] [--target OLD] PACKAGE",
		Description: `Verify checks that PACKAGE is well formed, signed by at least N of the
trusted public keys (every signature by a trusted key must be valid), and
that every blob matches its signed digest. With --target it also checks
that OLD is the exact build the package applies to and that the package's
file deltas bring it to the target and back. Any failure exits with
status 4 and says what failed.

Examples:
  hpbuild verify --pub release.pub fix-1.hpkg
  hpbuild verify --pub build.pub --pub release.pub --threshold 2 --target app.dll fix-1.hpkg`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "pub", Usage: "trust the public key in `FILE` (repeatable)"},
			&cli.IntFlag{Name: "threshold", Value: 1, Usage: "require `N` valid signatures by distinct trusted keys"},
			&cli.StringFlag{Name: "target", Usage: "check that the package applies to the image `FILE`"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "PACKAGE"); err != nil {
				return err
			}
			if len(c.StringSlice("pub")) == 0 {
				return &usageError{err: errors.New("verify needs at least one --pub KEY")}
			}
			if c.Int("threshold") < 1 {
				return &usageError{err: fmt.Errorf("--threshold must be at least 1, got %d", c.Int("threshold"))}
			}
			keys, err := loadPublicKeys(c.StringSlice("pub"))
			if err != nil {
				return err
			}
			return runVerify(c.App.Writer, c.Args().Get(0), keys, c.Int("threshold"), c.String("target"))
		},
	}
}

func runVerify(w io.Writer, path string, keys []*signing.PublicKey, threshold int, target string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// Signatures first: nothing else of the package is decoded before.
	p, err := pkgformat.ReadVerified(b, keys, threshold)
	if err != nil {
		return &verifyError{err: fmt.Errorf("%s: %w", path, err)}
	}
	if err := p.VerifyBlobs(); err != nil {
		return &verifyError{err: fmt.Errorf("%s: %w", path, err)}
	}
	// Every blob but the file deltas (which need their source file) must
	// expand to exactly its declared size.
	for i, bl := range p.Manifest.Blobs {
		if bl.Delta != pkgformat.DeltaNone {
			continue
		}
		if _, err := p.Blob(i); err != nil {
			return &verifyError{err: fmt.Errorf("%s: blob %d: %w", path, i, err)}
		}
	}
	m := &p.Manifest
	if target != "" {
		base, err := os.ReadFile(target)
		if err != nil {
			return err
		}
		if err := p.CheckBase(base); err != nil {
			return &verifyError{err: fmt.Errorf("%s: %w", path, err)}
		}
		fwd, err := p.Forward(base)
		if err == nil {
			_, err = p.Reverse(fwd)
		}
		if err != nil {
			return &verifyError{err: fmt.Errorf("%s: %w", path, err)}
		}
	}
	var ids []string
	for _, s := range p.Sigs {
		for _, k := range keys {
			if k.ID == s.KeyID {
				ids = append(ids, s.KeyID.String())
			}
		}
	}
	fmt.Fprintf(w, "%s: OK: %s -> %s, sequence %d, signed by %s\n", path, m.Base.Name, m.Target.Name, m.Sequence, strings.Join(ids, ", "))
	if target != "" {
		fmt.Fprintf(w, "%s: applies to %s (sha256 %s)\n", path, target, m.Base.SHA256)
	}
	return nil
}
