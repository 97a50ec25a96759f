//! The seed benchmark's `transactions` event, generated reproducibly from a seed.
//!
//! `event_id` UUID v4, `user_id` uniform 1–10,000,000 (also the message key, so a
//! user's events stay in one partition), `amount` 0.01–9,999.99, one of 7 regions, one
//! of 6 event types, `event_time` = now in ISO-8601 with milliseconds, UTC.

use penstock_codec::datetime::write_iso_millis;
use penstock_codec::Timestamp;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// How a malformed message is broken; `penstock gen --malformed` rotates through them
/// so a pipeline's dead-letter path sees each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformation {
    /// The event cut off in the middle (invalid JSON).
    Truncated,
    /// Not JSON at all.
    NotJson,
    /// Valid JSON, but `amount` is a word.
    WrongType,
    /// Valid JSON without the required `event_id`.
    MissingEventId,
}

impl Malformation {
    /// Every kind, in rotation order.
    pub const ALL: [Malformation; 4] =
        [Malformation::Truncated, Malformation::NotJson, Malformation::WrongType, Malformation::MissingEventId];

    /// Breaks the well-formed event in `json` in this way.
    pub fn apply(self, json: &mut String) {
        match self {
            Malformation::Truncated => json.truncate(json.len() / 2),
            Malformation::NotJson => {
                json.clear();
                json.push_str("not json: penstock gen malformed message");
            }
            Malformation::WrongType => {
                if let (Some(start), Some(end)) = (json.find(r#""amount":"#), json.find(r#","region""#)) {
                    json.replace_range(start + 9..end, r#""twelve""#);
                }
            }
            Malformation::MissingEventId => {
                if let Some(comma) = json.find(r#","user_id""#) {
                    json.replace_range(1..=comma, "");
                }
            }
        }
    }
}

/// The seven regions of the seed benchmark.
pub const REGIONS: [&str; 7] =
    ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1"];
/// The six event types of the seed benchmark.
pub const EVENT_TYPES: [&str; 6] = ["purchase", "refund", "view", "add_to_cart", "checkout", "login"];

/// Generates events into reusable buffers, formatting by hand (no `core::fmt` on the
/// per-event path: `penstock gen` must keep up with the broker's raw produce rate).
pub struct TransactionGenerator {
    rng: SmallRng,
    /// The last millisecond formatted, and its ISO-8601 text.
    time_cache: Option<(i64, String)>,
}

/// One generated event's parts that tests check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFacts {
    /// User id (the key).
    pub user_id: u64,
    /// Amount in cents.
    pub amount_cents: u64,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the low `digits` hex digits of `v`.
fn push_hex(out: &mut String, v: u64, digits: u32) {
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xF) as usize] as char);
    }
}

/// Appends `v` in decimal.
fn push_decimal(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for d in digits[..n].iter().rev() {
        out.push(*d as char);
    }
}

impl TransactionGenerator {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        TransactionGenerator { rng: SmallRng::seed_from_u64(seed), time_cache: None }
    }

    /// Writes the next event's JSON into `json` and its key into `key` (both cleared).
    pub fn next_into(&mut self, now: Timestamp, json: &mut String, key: &mut String) -> EventFacts {
        json.clear();
        key.clear();
        let id: u128 = self.rng.random();
        // UUID v4: version nibble 4, variant bits 10.
        let id = (id & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        let user_id = self.rng.random_range(1..=10_000_000u64);
        let amount_cents = self.rng.random_range(1..=999_999u64);
        let region = REGIONS[self.rng.random_range(0..REGIONS.len())];
        let event_type = EVENT_TYPES[self.rng.random_range(0..EVENT_TYPES.len())];
        json.push_str(r#"{"event_id":""#);
        push_hex(json, (id >> 96) as u64, 8);
        json.push('-');
        push_hex(json, (id >> 80) as u64, 4);
        json.push('-');
        push_hex(json, (id >> 64) as u64, 4);
        json.push('-');
        push_hex(json, (id >> 48) as u64, 4);
        json.push('-');
        push_hex(json, id as u64, 12);
        json.push_str(r#"","user_id":"#);
        push_decimal(json, user_id);
        json.push_str(r#","amount":"#);
        push_decimal(json, amount_cents / 100);
        json.push('.');
        push_decimal(json, amount_cents / 10 % 10);
        push_decimal(json, amount_cents % 10);
        json.push_str(r#","region":""#);
        json.push_str(region);
        json.push_str(r#"","event_type":""#);
        json.push_str(event_type);
        json.push_str(r#"","event_time":""#);
        let ms = now.secs * 1000 + i64::from(now.nanos / 1_000_000);
        match &self.time_cache {
            Some((cached, text)) if *cached == ms => json.push_str(text),
            _ => {
                let mut text = String::with_capacity(24);
                write_iso_millis(&mut text, now);
                json.push_str(&text);
                self.time_cache = Some((ms, text));
            }
        }
        json.push_str("\"}");
        push_decimal(key, user_id);
        EventFacts { user_id, amount_cents }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_messages_are_broken_in_their_way() {
        let now = Timestamp { secs: 1_779_723_355, nanos: 0 };
        let (mut json, mut key) = (String::new(), String::new());
        let mut g = TransactionGenerator::new(3);
        for kind in Malformation::ALL {
            g.next_into(now, &mut json, &mut key);
            let good = json.clone();
            kind.apply(&mut json);
            match kind {
                Malformation::Truncated => assert_eq!(json, good[..good.len() / 2]),
                Malformation::NotJson => assert!(!json.starts_with('{')),
                Malformation::WrongType => {
                    assert!(json.contains(r#""amount":"twelve","region""#), "{json}");
                    assert_eq!(json.matches('"').count(), good.matches('"').count() + 2);
                }
                Malformation::MissingEventId => {
                    assert!(json.starts_with(r#"{"user_id":"#), "{json}");
                    assert!(!json.contains("event_id"));
                }
            }
        }
    }

    #[test]
    fn hand_formatting_matches_core_fmt() {
        let now = Timestamp { secs: 1_779_723_355, nanos: 92_000_000 };
        let mut g = TransactionGenerator::new(11);
        let mut rng = SmallRng::seed_from_u64(11);
        let (mut json, mut key) = (String::new(), String::new());
        for _ in 0..2000 {
            let facts = g.next_into(now, &mut json, &mut key);
            // The same draws, formatted by core::fmt.
            let id: u128 = rng.random();
            let id = (id & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
            let user_id = rng.random_range(1..=10_000_000u64);
            let cents = rng.random_range(1..=999_999u64);
            let region = REGIONS[rng.random_range(0..REGIONS.len())];
            let event_type = EVENT_TYPES[rng.random_range(0..EVENT_TYPES.len())];
            let expected = format!(
                r#"{{"event_id":"{:08x}-{:04x}-{:04x}-{:04x}-{:012x}","user_id":{user_id},"amount":{}.{:02},"region":"{region}","event_type":"{event_type}","event_time":"2026-05-25T15:35:55.092Z"}}"#,
                (id >> 96) as u32,
                (id >> 80) as u16,
                (id >> 64) as u16,
                (id >> 48) as u16,
                id & 0xFFFF_FFFF_FFFF,
                cents / 100,
                cents % 100,
            );
            assert_eq!(json, expected);
            assert_eq!((key.clone(), facts.amount_cents), (user_id.to_string(), cents));
        }
        assert_eq!(push_decimal_string(0), "0");
        assert_eq!(push_decimal_string(u64::MAX), u64::MAX.to_string());
    }

    fn push_decimal_string(v: u64) -> String {
        let mut s = String::new();
        push_decimal(&mut s, v);
        s
    }

    #[test]
    fn events_are_valid_and_reproducible() {
        let now = Timestamp { secs: 1_779_723_355, nanos: 92_000_000 };
        let (mut a, mut b) = (TransactionGenerator::new(7), TransactionGenerator::new(7));
        let (mut ja, mut ka, mut jb, mut kb) = (String::new(), String::new(), String::new(), String::new());
        for _ in 0..1000 {
            let fa = a.next_into(now, &mut ja, &mut ka);
            let fb = b.next_into(now, &mut jb, &mut kb);
            assert_eq!((&ja, &ka, fa), (&jb, &kb, fb));
            assert!((1..=10_000_000).contains(&fa.user_id));
            assert!((1..=999_999).contains(&fa.amount_cents));
            assert_eq!(ka, fa.user_id.to_string());
            let id = &ja[13..49];
            assert_eq!(id.as_bytes()[14], b'4', "{id}");
            assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{id}");
            assert!(penstock_codec::scalar::parse_uuid(id.as_bytes()).is_some());
            assert!(ja.ends_with(r#""event_time":"2026-05-25T15:35:55.092Z"}"#), "{ja}");
        }
    }
}
