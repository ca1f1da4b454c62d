#!/usr/bin/env python3
"""Object-level function diff for the fixture cases (a cross-check, not hpbuild).

Compares build/<case>/<arch>/old.o with new.o function by function.  A
function is the range from its COFF function symbol to the next function
symbol (or the end of its section).  Bytes covered by relocations are masked
and the relocation target is compared instead, resolved to

  * a symbol name (+offset) for named symbols,
  * function+offset / data-symbol+offset for section-relative references,
  * the referenced bytes themselves for anonymous read-only data
    (string literals, floating-point constants, jump tables),

so that a layout shift alone never makes a function "changed".  Used by
`make verify` to check each case's expect.json; needs objdump for instruction
boundaries (x64 REL32 addends are relative to the end of the instruction).

usage: fndiff.py OLD.o NEW.o            print the diff as JSON
       fndiff.py --verify CASE...       check build/CASE/{x64,x86} vs CASE/expect.json
"""
import json
import os
import re
import struct
import subprocess
import sys

OBJDUMP = {0x8664: 'x86_64-w64-mingw32-objdump', 0x14c: 'i686-w64-mingw32-objdump'}
# relocation type -> (size, pc-relative, extra bytes n of REL32_n)
RELOCS = {
    0x8664: {1: (8, False, 0), 2: (4, False, 0), 3: (4, False, 0), 4: (4, True, 0),
             5: (4, True, 1), 6: (4, True, 2), 7: (4, True, 3), 8: (4, True, 4),
             9: (4, True, 5), 0xA: (2, False, 0), 0xB: (4, False, 0)},
    0x14c: {6: (4, False, 0), 7: (4, False, 0), 0x14: (4, True, 0), 0xA: (2, False, 0),
            0xB: (4, False, 0)},
}
SCN_CODE = 0x20
SCN_UNINIT = 0x80


class Obj:
    def __init__(self, path):
        self.path = path
        d = open(path, 'rb').read()
        self.data = d
        (self.machine, nsec, _, symoff, nsym, optsz, _) = struct.unpack_from('<HHIIIHH', d, 0)
        strtab = symoff + nsym * 18
        self.strtab = d[strtab:]
        self.sections = []
        for i in range(nsec):
            off = 20 + optsz + i * 40
            raw = d[off:off + 8]
            (vsize, vaddr, rawsize, rawptr, relptr, _, nrel, _, chars) = struct.unpack_from('<IIIIIIHHI', d, off + 8)
            name = raw.rstrip(b'\0').decode()
            if name.startswith('/'):
                name = self._str(int(name[1:]))
            body = b'' if chars & SCN_UNINIT else d[rawptr:rawptr + rawsize]
            relocs = []
            for r in range(nrel):
                va, si, ty = struct.unpack_from('<IIH', d, relptr + r * 10)
                relocs.append((va, si, ty))
            self.sections.append({'index': i + 1, 'name': name, 'size': rawsize, 'data': body,
                                  'relocs': relocs, 'chars': chars, 'code': bool(chars & SCN_CODE)})
        self.symbols = {}
        i = 0
        while i < nsym:
            off = symoff + i * 18
            raw = d[off:off + 8]
            if raw[:4] == b'\0\0\0\0':
                name = self._str(struct.unpack_from('<I', raw, 4)[0])
            else:
                name = raw.rstrip(b'\0').decode()
            value, secno, ty, scl, naux = struct.unpack_from('<IhHBB', d, off + 8)
            self.symbols[i] = {'name': name, 'value': value, 'sec': secno, 'type': ty, 'scl': scl}
            i += 1 + naux
        self.prefix = '_' if self.machine == 0x14c else ''
        self._insn = None

    def _str(self, off):
        end = self.strtab.index(b'\0', off)
        return self.strtab[off:end].decode()

    def sec(self, no):
        return self.sections[no - 1]

    def is_section_sym(self, s):
        return s['scl'] == 3 and s['sec'] > 0 and s['value'] == 0 and s['name'] == self.sec(s['sec'])['name']

    def cname(self, n):
        """C-level name: no x86 leading underscore, no stdcall @N suffix."""
        if self.prefix and n.startswith(self.prefix):
            n = n[len(self.prefix):]
            n = re.sub(r'@[0-9]+$', '', n)
        return n

    def insns(self):
        """section name -> [(offset, length, text)] from objdump -d."""
        if self._insn is None:
            out = subprocess.run([OBJDUMP[self.machine], '-d', '-z', '--insn-width=16', self.path],
                                 check=True, capture_output=True, text=True).stdout
            self._insn = {}
            cur = None
            for line in out.splitlines():
                m = re.match(r'Disassembly of section (.*):$', line)
                if m:
                    cur = self._insn.setdefault(m.group(1), [])
                    continue
                m = re.match(r'\s+([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(.*)$', line)
                if m and cur is not None:
                    cur.append((int(m.group(1), 16), len(m.group(2).split()), m.group(3)))
            for v in self._insn.values():
                v.sort()
        return self._insn

    def insn_end(self, secname, va):
        for off, ln, _ in self.insns().get(secname, []):
            if off <= va < off + ln:
                return off + ln
        return None

    def functions(self):
        if getattr(self, '_fns', None) is None:
            fns = {}
            bysec = {}
            for s in self.symbols.values():
                if s['sec'] > 0 and (s['type'] & 0xf0) == 0x20:
                    bysec.setdefault(s['sec'], []).append(s)
            for secno, syms in bysec.items():
                sec = self.sec(secno)
                starts = sorted(set(s['value'] for s in syms))
                for s in syms:
                    nxt = [v for v in starts if v > s['value']]
                    end = nxt[0] if nxt else sec['size']
                    fns[self.cname(s['name'])] = (secno, s['value'], end)
            self._fns = fns
        return self._fns

    def writable(self, secno):
        sec = self.sec(secno)
        return bool(sec['chars'] & 0x80000000) or not sec['data']

    def ref_targets(self, secno):
        """offsets in a section that are referenced section-relatively."""
        if getattr(self, '_reft', None) is None:
            self._reft = {}
            for sec in self.sections:
                for va, si, ty in sec['relocs']:
                    sym = self.symbols[si]
                    if self.is_section_sym(sym):
                        self._reft.setdefault(sym['sec'], set()).add(self.addend(sec, va, ty))
        return self._reft.get(secno, set())

    def data_objects(self):
        """named non-function symbols in non-code sections -> (secno, start, end)."""
        if getattr(self, '_objs', None) is not None:
            return self._objs
        objs = {}
        bysec = {}
        for s in self.symbols.values():
            if s['sec'] > 0 and (s['type'] & 0xf0) != 0x20 and not self.is_section_sym(s) \
                    and s['scl'] in (2, 3) and not self.sec(s['sec'])['code'] \
                    and not s['name'].startswith('.'):
                bysec.setdefault(s['sec'], []).append(s)
        self._objs = objs
        for secno, syms in bysec.items():
            sec = self.sec(secno)
            starts = set(s['value'] for s in syms)
            if not self.writable(secno):
                starts |= self.ref_targets(secno)   # anonymous constants end named objects
            starts = sorted(starts)
            for s in syms:
                nxt = [v for v in starts if v > s['value']]
                end = nxt[0] if nxt else sec['size']
                objs[self.cname(s['name'])] = (secno, s['value'], end)
        return objs

    def addend(self, sec, va, ty):
        size, pcrel, extra = RELOCS[self.machine].get(ty, (4, False, 0))
        a = int.from_bytes(sec['data'][va:va + size], 'little', signed=True)
        if pcrel:
            e = self.insn_end(sec['name'], va) if sec['code'] else None
            a += max(0, (e or va + size) - (va + size)) - extra
        return a

    def resolve(self, secno, off, depth=0):
        sec = self.sec(secno)
        if sec['code']:
            best = None
            for n, (sn, st, en) in self.functions().items():
                if sn == secno and st <= off < max(en, st + 1) and (best is None or (st, n) > (best[1], best[0])):
                    best = (n, st)
            if best:
                return 'fn:%s+%#x' % (best[0], off - best[1])
            return 'code:%s+%#x' % (sec['name'], off)
        objs = self.data_objects()
        if self.writable(secno):
            for n, (sn, st, en) in sorted(objs.items()):
                if sn == secno and st <= off < max(en, st + 1):
                    return 'data:%s+%#x' % (n, off - st)
            return 'data:%s+%#x' % (sec['name'], off)
        for n, (sn, st, en) in sorted(objs.items()):
            if sn == secno and st <= off < max(en, st + 1):
                return 'ro:%s+%#x' % (n, off - st)
        # anonymous read-only data: describe by content
        body = sec['data']
        end = body.find(b'\0', off)
        s = body[off:end] if end >= 0 else b''
        hasrel = any(va <= off < va + 4 or off <= va <= off + len(s) for va, _, _ in sec['relocs'])
        if end > off and not hasrel and all(32 <= c < 127 or c in (9, 10, 13) for c in s):
            return 'str:%r' % s.decode()
        if depth > 1:
            return 'ro:%s+%#x' % (sec['name'], off)
        h, refs = self.norm_bytes(secno, off, min(off + 16, len(body)), depth + 1)
        return 'const:%s%s' % (h, ''.join(' ' + r[2] for r in refs))

    def norm_bytes(self, secno, start, end, depth=0):
        """data: (hex with reloc fields masked, [(offset, type, target)])"""
        sec = self.sec(secno)
        b = bytearray(sec['data'][start:end]) if sec['data'] else bytearray(end - start)
        refs = []
        for va, si, ty in sec['relocs']:
            if not (start <= va < end):
                continue
            size = RELOCS[self.machine].get(ty, (4, False, 0))[0]
            refs.append((va - start, ty, self.target(sec, va, si, ty, depth)))
            for k in range(size):
                if va - start + k < len(b):
                    b[va - start + k] = 0
        return b.hex(), refs

    def target(self, sec, va, si, ty, depth=0):
        addend = self.addend(sec, va, ty)
        sym = self.symbols[si]
        if self.is_section_sym(sym):
            return self.resolve(sym['sec'], addend, depth)
        return '%s%+d' % (self.cname(sym['name']), addend) if addend else self.cname(sym['name'])

    PAD = re.compile(r'^(nop|xchg\s+%ax,%ax|int3|(data16 |cs )*nop[wl]?\b|lea\s+0x0\(%[er]?(si|di)(,%[er]iz,1)?\),%[er]?(si|di)|mov\s+%esi,%esi|mov\s+%edi,%edi$)')

    def code_norm(self, secno, start, end):
        sec = self.sec(secno)
        insns = [i for i in self.insns().get(sec['name'], []) if start <= i[0] < end]
        while insns and self.PAD.match(insns[-1][2]):
            insns.pop()
        relocs = {va: (si, ty) for va, si, ty in sec['relocs']}
        out = []
        for off, ln, text in insns:
            b = bytearray(sec['data'][off:off + ln])
            tags = []
            for va in range(off, off + ln):
                if va in relocs:
                    si, ty = relocs[va]
                    size = RELOCS[self.machine].get(ty, (4, False, 0))[0]
                    for k in range(size):
                        if va - off + k < len(b):
                            b[va - off + k] = 0
                    tags.append(self.target(sec, va, si, ty))
            m = re.search(r'<([^>]+)>', text)
            if not tags and m and re.match(r'(bnd\s+|notrack\s+)?(call|jmp|j[a-z]+|loop[a-z]*|xbegin)\b', text):
                i = 0
                while i < len(b) and b[i] in (0x66, 0xf2, 0xf3, 0x3e, 0x2e):
                    i += 1
                op = b[i:]
                if op[:1] in (b'\xe8', b'\xe9') or (op[:1] == b'\x0f' and len(op) > 1 and 0x80 <= op[1] <= 0x8f):
                    b[-4:] = b'\0\0\0\0'
                elif op[:1] and (op[0] == 0xeb or 0x70 <= op[0] <= 0x7f or 0xe0 <= op[0] <= 0xe3):
                    b[-1:] = b'\0'
                tgt = m.group(1)
                tags.append('br:' + (self.cname(tgt) if not tgt.startswith('.') else tgt))
            out.append((off - start, b.hex(), tags))
        return out


def diff(old_path, new_path):
    a, b = Obj(old_path), Obj(new_path)
    fa, fb = a.functions(), b.functions()
    res = {'changed': [], 'added': sorted(set(fb) - set(fa)), 'removed': sorted(set(fa) - set(fb)),
           'unchanged': [], 'aliases_old': [], 'aliases_new': [], 'data_changed': {},
           'data_added': [], 'data_removed': []}
    for n in sorted(set(fa) & set(fb)):
        na = a.code_norm(*fa[n])
        nb = b.code_norm(*fb[n])
        (res['changed'] if na != nb else res['unchanged']).append(n)
    for o, fns, key in ((a, fa, 'aliases_old'), (b, fb, 'aliases_new')):
        seen = {}
        for n, (s, st, _) in fns.items():
            seen.setdefault((s, st), []).append(n)
        res[key] = sorted(sorted(v) for v in seen.values() if len(v) > 1)
    da, db = a.data_objects(), b.data_objects()
    res['data_added'] = sorted(set(db) - set(da))
    res['data_removed'] = sorted(set(da) - set(db))
    for n in sorted(set(da) & set(db)):
        x = a.norm_bytes(*da[n])
        y = b.norm_bytes(*db[n])
        x = (x[0].rstrip('0'), x[1])   # alignment padding after the object
        y = (y[0].rstrip('0'), y[1])
        if x != y:
            res['data_changed'][n] = {'old': x[0][:64] + ('' if not x[1] else ' ' + str([r[2] for r in x[1]])),
                                      'new': y[0][:64] + ('' if not y[1] else ' ' + str([r[2] for r in y[1]]))}
    return res


def verify(cases):
    """Compare the object-level diff with each case's expect.json (both arches)."""
    bad = 0
    for c in cases:
        exp = json.load(open(os.path.join(c, 'expect.json')))
        for arch in ('x64', 'x86'):
            e = dict(exp)
            e.update(exp.get('arch', {}).get(arch, {}))
            old, new = 'build/%s/%s/old.o' % (c, arch), 'build/%s/%s/new.o' % (c, arch)
            r = diff(old, new)
            frags = e.get('fragments', {})
            renamed = e.get('renamed', [])
            got = {'changed': sorted(set(r['changed']) - set(frags)),
                   'added': sorted(set(r['added']) - {p['new'] for p in renamed}),
                   'removed': sorted(set(r['removed']) - {p['old'] for p in renamed}),
                   'fragments': {f: ('changed' if f in r['changed'] else 'unchanged') for f in frags},
                   'data_changed': sorted(set(r['data_changed']) | set(r['data_added']) | set(r['data_removed'])),
                   'aliases_old': r['aliases_old']}
            want = {'changed': sorted(e['changed']), 'added': sorted(e['added']), 'removed': sorted(e['removed']),
                    'fragments': frags, 'data_changed': sorted(e['data_changed']),
                    'aliases_old': e.get('aliases_old', [])}
            ok = got == want
            a, b = Obj(old), Obj(new)
            for p in renamed:
                if a.code_norm(*a.functions()[p['old']]) != b.code_norm(*b.functions()[p['new']]):
                    ok = False
                    print('     renamed %s -> %s: bodies differ' % (p['old'], p['new']))
            print('%-4s %-21s %s changed=%s added=%s removed=%s data=%s' % (
                'ok' if ok else 'FAIL', c, arch, ','.join(r['changed']) or '-', ','.join(r['added']) or '-',
                ','.join(r['removed']) or '-', ','.join(got['data_changed']) or '-'))
            if not ok:
                print('     want %s' % want)
                print('     got  %s' % got)
            bad += not ok
    return bad


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--verify':
        sys.exit(1 if verify(sys.argv[2:]) else 0)
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    json.dump(diff(sys.argv[1], sys.argv[2]), sys.stdout, indent=1)
    print()
