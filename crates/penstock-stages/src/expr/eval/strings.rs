//! String functions over whole columns of bytes.

use super::*;

pub(super) fn string_fn(f: StrFn, vs: &[Vector], ty: &Ty, n: usize) -> Vector {
    let refs: Vec<&Vector> = vs.iter().collect();
    let nulls = nulls_of(&refs, n);
    if f == StrFn::Length {
        return out(ty, Data::Int((0..n).map(|i| vs[0].bytes(i).len() as i128).collect()), nulls);
    }
    let mut s = Strings::with_capacity(n);
    for i in 0..n {
        let a = vs[0].bytes(i);
        s.push_with(|o| match f {
            StrFn::Lower => o.extend(a.iter().map(u8::to_ascii_lowercase)),
            StrFn::Upper => o.extend(a.iter().map(u8::to_ascii_uppercase)),
            StrFn::Trim | StrFn::TrimLeft | StrFn::TrimRight => {
                let mut t = a;
                if f != StrFn::TrimRight {
                    while let [b' ', rest @ ..] = t {
                        t = rest;
                    }
                }
                if f != StrFn::TrimLeft {
                    while let [rest @ .., b' '] = t {
                        t = rest;
                    }
                }
                o.extend_from_slice(t);
            }
            StrFn::Concat => vs.iter().for_each(|v| o.extend_from_slice(v.bytes(i))),
            StrFn::Substring => {
                let len = a.len() as i128;
                let offset = vs[1].int(i);
                let start = match offset {
                    0 => len,
                    o if o > 0 => o - 1,
                    o => len + o,
                };
                let end = match vs.get(2).map(|v| v.int(i)) {
                    None => len,
                    Some(l) if l >= 0 => start.saturating_add(l),
                    Some(l) => len + l,
                };
                let (start, end) = (start.clamp(0, len) as usize, end.clamp(0, len) as usize);
                if start < end {
                    o.extend_from_slice(&a[start..end]);
                }
            }
            StrFn::ReplaceAll => {
                let (from, to) = (vs[1].bytes(i), vs[2].bytes(i));
                if from.is_empty() {
                    o.extend_from_slice(a);
                } else {
                    let mut rest = a;
                    while let Some(p) = rest.windows(from.len()).position(|w| w == from) {
                        o.extend_from_slice(&rest[..p]);
                        o.extend_from_slice(to);
                        rest = &rest[p + from.len()..];
                    }
                    o.extend_from_slice(rest);
                }
            }
            StrFn::Length => unreachable!("handled above"),
        });
    }
    out(ty, Data::Str(s), nulls)
}
