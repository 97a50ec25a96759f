//! Comparisons in their checked domain, and `LIKE`.

use super::*;

/// Whether an ordering satisfies the comparison.
#[inline]
pub(super) fn ordered(c: Cmp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering;
    match c {
        Cmp::Eq => o == Ordering::Equal,
        Cmp::Ne => o != Ordering::Equal,
        Cmp::Lt => o == Ordering::Less,
        Cmp::Le => o != Ordering::Greater,
        Cmp::Gt => o == Ordering::Greater,
        Cmp::Ge => o != Ordering::Less,
    }
}

/// Row `i` of `x` against row `j` of `y` in domain `d` (NaN: only `!=` holds).
#[inline]
pub(super) fn compare(c: Cmp, d: Domain, x: &Vector, i: usize, y: &Vector, j: usize) -> bool {
    let ord = match d {
        Domain::Bytes => Some(x.bytes(i).cmp(y.bytes(j))),
        Domain::Float => x.float(i).partial_cmp(&y.float(j)),
        Domain::Int { left, right } => Some(x.int(i).saturating_mul(left).cmp(&y.int(j).saturating_mul(right))),
    };
    match ord {
        None => c == Cmp::Ne,
        Some(o) => ordered(c, o),
    }
}

/// `s` matches a LIKE pattern (`_` is one UTF-8 character).
#[inline]
pub(super) fn like(s: &[u8], parts: &[LikePart]) -> bool {
    // The usual shapes without recursion: 'x%', '%x', '%x%', 'x'.
    match parts {
        [LikePart::Literal(l), LikePart::Any] => return s.starts_with(l),
        [LikePart::Any, LikePart::Literal(l)] => return s.ends_with(l),
        [LikePart::Any, LikePart::Literal(l), LikePart::Any] => {
            return l.is_empty() || s.windows(l.len()).any(|w| w == l.as_slice())
        }
        [LikePart::Literal(l)] => return s == l.as_slice(),
        _ => {}
    }
    like_general(s, parts)
}

pub(super) fn like_general(s: &[u8], parts: &[LikePart]) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((LikePart::Literal(l), rest)) => s.starts_with(l) && like_general(&s[l.len()..], rest),
        Some((LikePart::One, rest)) => match s.first() {
            None => false,
            Some(b) => {
                let w = utf8_width(*b).min(s.len());
                like_general(&s[w..], rest)
            }
        },
        Some((LikePart::Any, rest)) => {
            if rest.is_empty() {
                return true;
            }
            (0..=s.len()).any(|k| like_general(&s[k..], rest))
        }
    }
}

fn utf8_width(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}
