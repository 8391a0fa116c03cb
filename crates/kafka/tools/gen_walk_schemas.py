# Regenerates crates/kafka/src/walk/schemas.rs when kafka-protocol is upgraded:
#   python3 crates/kafka/tools/gen_walk_schemas.py $(cat crates/kafka/tools/requests.txt) \
#     > crates/kafka/src/walk/schemas.rs && cargo fmt
# It reads the crate's generated decoders (the exact fields, types and versions it will
# decode) and prints them as the walker's table, so the walk and the decode agree.
import re, sys, glob, os
SRC = glob.glob(os.path.expanduser('~/.cargo/registry/src/*/kafka-protocol-0.18.*/src/messages'))[0]

def balanced(s, i):
    # s[i] == '{'; return index after matching '}'
    d = 0
    for j in range(i, len(s)):
        if s[j] == '{': d += 1
        elif s[j] == '}':
            d -= 1
            if d == 0: return j + 1
    raise Exception('unbalanced')

def split_top(body):
    out, d, cur = [], 0, ''
    for ch in body:
        cur += ch
        if ch == '{': d += 1
        elif ch == '}':
            d -= 1
            if d == 0 and cur.strip().startswith('if '):
                out.append(cur.strip()); cur = ''
        elif ch == ';' and d == 0:
            out.append(cur.strip()); cur = ''
    if cur.strip(): out.append(cur.strip())
    return out

def cond_ok(cond, v):
    c = cond.replace('&&', ' and ').replace('||', ' or ').replace('version', str(v))
    return eval(c)

def eval_expr(e, v):
    e = e.strip()
    if e.startswith('if '):
        i = e.index('{')
        cond = e[3:i]
        j = balanced(e, i)
        then = e[i+1:j-1]
        rest = e[j:].strip()
        assert rest.startswith('else'), e
        rest = rest[4:].strip()
        if rest.startswith('if '):
            els = rest
        else:
            k = balanced(rest, 0); els = rest[1:k-1]
        return eval_expr(then, v) if cond_ok(cond, v) else eval_expr(els, v)
    m = re.search(r'(types::.*)\.decode\(buf\)\?', e)
    if m: return m.group(1)
    if 'bail!' in e: return 'BAIL'
    return None

PRIM = {'Int8':'I8','Int16':'I16','Int32':'I32','Int64':'I64','UInt16':'I16','Float64':'I64','Uuid':'Uuid','Boolean':'I8','UnsignedVarInt':'Varint','VarInt':'Varint'}
def norm(dec, ftype, structs, v, flex):
    dec = dec.replace(' ', '')
    m = re.fullmatch(r'types::(Compact)?Array\((.*)\)', dec)
    if m:
        assert bool(m.group(1)) == flex, (dec, v)
        inner = norm(m.group(2), ftype, structs, v, flex)
        return 'Ty::Array(&%s)' % inner if not inner.startswith('Ty::') else 'Ty::Array(&%s)' % inner
    m = re.fullmatch(r'types::(Compact)?(String|Bytes)', dec)
    if m:
        assert bool(m.group(1)) == flex, (dec, v)
        return 'Ty::Str' if m.group(2) == 'String' else 'Ty::Bytes'
    if dec == 'types::Struct{version}':
        names = re.findall(r'[A-Za-z_][A-Za-z0-9_]*', ftype)
        cand = [n for n in names if n in structs]
        assert len(cand) == 1, (ftype, names)
        return 'Ty::Struct(&%s)' % snake(cand[0]).upper()
    m = re.fullmatch(r'types::(\w+)', dec)
    if m and m.group(1) in PRIM: return 'Ty::' + PRIM[m.group(1)]
    raise Exception('unknown decoder ' + dec)

def snake(n): return re.sub(r'(?<!^)(?=[A-Z])', '_', n).lower()

def gen(fname):
    src = open(os.path.join(SRC, fname)).read()
    structs = {}
    for m in re.finditer(r'pub struct (\w+) \{', src):
        i = m.end() - 1; j = balanced(src, i)
        fields = dict(re.findall(r'pub (\w+): ([^,\n]+),', src[i:j]))
        structs[m.group(1)] = fields
    out = []
    for m in re.finditer(r'impl Decodable for (\w+) \{', src):
        name = m.group(1)
        i = m.end() - 1; j = balanced(src, i)
        block = src[i:j]
        k = block.index('-> Result<Self> {') + len('-> Result<Self> ')
        body = block[k+1:balanced(block, k)-1]
        body = body[:body.index('Ok(Self')]
        vr = re.search(r'if version < (\d+) \|\| version > (\d+)', body)
        if vr: lo, hi = int(vr.group(1)), int(vr.group(2))
        else:
            vr = re.search(r'if version != (\d+)', body); lo = hi = int(vr.group(1))
        body = body[body.index('}', vr.end())+1:]
        stmts = split_top(body)
        flex_from = None; fields = []; tagged = []
        for s in stmts:
            if s.startswith('let mut'): continue
            if s.startswith('let num_tagged_fields'):
                flex_from = lo; continue
            if (s.startswith('if ') or s.startswith('for _')) and 'num_tagged_fields' in s:
                flex_from = int(re.match(r'if version >= (\d+)', s).group(1)) if s.startswith('if ') else lo
                for am in re.finditer(r'(\d+) => \{', s):
                    a = am.end() - 1; b = balanced(s, a)
                    arm = s[a+1:b-1].strip()
                    fm = re.search(r'(\w+) = ', arm)
                    per = {}
                    for v in range(lo, hi+1):
                        if arm.startswith('if '):
                            d = eval_expr(arm.replace(fm.group(0), ''), v)
                        else:
                            d = eval_expr(arm.replace(fm.group(0), '').rstrip(';'), v)
                        per[v] = d
                    tagged.append((int(am.group(1)), fm.group(1), per))
                continue
            lm = re.match(r'let (\w+) = (.*);$', s, re.S)
            assert lm, s
            fname_, expr = lm.group(1), lm.group(2)
            per = {v: eval_expr(expr, v) for v in range(lo, hi+1)}
            fields.append((None, fname_, per))
        if flex_from is None: flex_from = 10**4
        out.append((name, lo, hi, flex_from, fields, tagged, structs[name]))
    return out

def emit(msgs):
    lines = []
    for (name, lo, hi, flex, fields, tagged, ftypes) in reversed(msgs):
        entries = []
        for (tag, fname_, per) in fields + [(t, f, p) for (t, f, p) in tagged]:
            runs = []
            for v in range(lo, hi+1):
                d = per[v]
                if tag is not None and v < flex: continue
                if d is None or d == 'BAIL': continue
                ty = norm(d, ftypes.get(fname_, ''), {n for n,_,_,_,_,_,_ in []} | set(STRUCTS), v, v >= flex)
                if runs and runs[-1][0] == ty and runs[-1][2] == v - 1: runs[-1][2] = v
                else: runs.append([ty, v, v])
            for ty, a, b in runs:
                tg = 'None' if tag is None else 'Some(%d)' % tag
                entries.append('    Field { name: "%s", ty: %s, versions: (%d, %d), tag: %s },' % (fname_, ty, a, b, tg))
        lines.append('pub(super) static %s: Struct = Struct {\n  name: "%s",\n  fields: &[\n%s\n  ],\n};' % (snake(name).upper(), name, '\n'.join(entries)))
    return lines

STRUCTS = []
if __name__ == '__main__':
    print('//! Generated by crates/kafka/tools/gen_walk_schemas.py from the decoders of\n//! kafka-protocol 0.18: the request layouts the walker checks before decoding.\n\nuse super::{Field, Message, Struct, Ty};')
    for stem in sys.argv[1:]:
        msgs = gen(stem + '.rs')
        STRUCTS[:] = [m[0] for m in msgs]
        assert len({m[3] for m in msgs}) == 1, (stem, [(m[0], m[3]) for m in msgs])
        top = msgs[-1] if snake(msgs[-1][0]) == stem else [m for m in msgs if snake(m[0]) == stem][0]
        print('\npub mod %s {\nuse super::*;' % stem)
        print('pub(crate) static MESSAGE: Message = Message { versions: (%d, %d), flexible_from: %d, body: &%s };' % (top[1], top[2], top[3], snake(top[0]).upper()))
        print('\n'.join(emit(msgs)))
        print('}')
