//! Exactly-once into Kafka from **several source streams** at once (Kafka → Kafka: one
//! stream per source topic-partition), without transactions.
//!
//! [`crate::kafka_sink`] holds for one totally ordered source. A Kafka source has one
//! order per partition and none across them: the sink interleaves its streams, so the
//! newest message of an output partition says nothing about the *other* streams. The
//! rule of `kafka_sink` is applied per stream instead, which needs, per output
//! partition (a *destination*) and per stream, the newest message of that stream there.
//! Scanning back until every stream is found could read a whole partition (a stream may
//! rarely go there), so the sink writes a **checkpoint** header now and then:
//!
//! - every message carries its own position (`[stream, offset, row]`);
//! - the first message a session sends to a destination, and every
//!   [`CHECKPOINT_EVERY`]-th after it, carries a [`Checkpoint`]: for every stream, the
//!   position at or below which everything of that stream meant for this destination is
//!   in it (*delivered*: what recovery found there, raised by what this session sent
//!   there — the checkpoint's own message included), and the stream's acknowledged
//!   *floor* (everything of that stream at or below it landed everywhere).
//!
//! A checkpoint is true exactly when its message is in the log: the producer is
//! idempotent and gap-less, so the message landing means everything sent to that
//! destination before it landed too. Recovery reads each destination back to its newest
//! checkpoint ([`destination_tails`]): a stream's tail there is the greater of the
//! checkpoint's mark and the newest message of the stream after it. Then
//! [`plan_streams`] applies [`crate::kafka_sink::plan`] to each stream alone, and
//! [`StreamSender`] — the session's pure core — skips what each destination holds and
//! says which messages carry a checkpoint.
//!
//! Dead letters are just more destinations (the dead-letter topic's partitions): a bad
//! message's dead letter is sent, recovered and skipped by the same rule.

use crate::kafka_sink::{plan, ResumePlan, Tail};
use crate::position::{Position, PositionParseError};
use std::collections::{BTreeMap, VecDeque};

/// Messages to one destination between two checkpoints (bounds the recovery scan).
pub const CHECKPOINT_EVERY: u32 = 64;

/// One stream's line of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamMark {
    /// Stream name (`topic/partition`).
    pub stream: String,
    /// At or below this, everything of the stream meant for the destination is there.
    pub delivered: Option<Position>,
    /// At or below this, everything of the stream is acknowledged everywhere.
    pub floor: Option<Position>,
}

/// The checkpoint header: one line per stream, `stream TAB delivered TAB floor`, each
/// position as its header text or `-`. (Kafka topic names have no tabs or newlines.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint(pub Vec<StreamMark>);

impl Checkpoint {
    /// Writes the header text into `out` (cleared first).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        let mut text = Vec::new();
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(m.stream.as_bytes());
            for p in [&m.delivered, &m.floor] {
                out.push(b'\t');
                match p {
                    Some(p) => {
                        p.write_header(&mut text);
                        out.extend_from_slice(&text);
                    }
                    None => out.push(b'-'),
                }
            }
        }
    }

    /// Parses the header text.
    pub fn parse(bytes: &[u8]) -> Result<Checkpoint, PositionParseError> {
        let mut marks = Vec::new();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut parts = line.split(|&b| b == b'\t');
            let (Some(stream), Some(delivered), Some(floor), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(line, "a checkpoint line is `stream TAB delivered TAB floor`"));
            };
            let position = |b: &[u8]| if b == b"-" { Ok(None) } else { Position::parse(b).map(Some) };
            let stream =
                std::str::from_utf8(stream).map_err(|_| bad(line, "a checkpoint's stream name is not UTF-8"))?;
            marks.push(StreamMark {
                stream: stream.to_string(),
                delivered: position(delivered)?,
                floor: position(floor)?,
            });
        }
        Ok(Checkpoint(marks))
    }
}

fn bad(line: &[u8], reason: &str) -> PositionParseError {
    PositionParseError { text: String::from_utf8_lossy(line).into_owned(), reason: reason.to_string() }
}

/// One of this pipeline's messages read back from a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Its stream.
    pub stream: String,
    /// Its position.
    pub position: Position,
    /// Its checkpoint header, if it has one.
    pub checkpoint: Option<Checkpoint>,
}

/// What a destination says about each stream, from its messages newest first down to
/// (and including) the newest one with a checkpoint; messages older than that are not
/// looked at.
pub fn destination_tails(newest_first: &[Recovered]) -> BTreeMap<String, Tail> {
    let mut tails: BTreeMap<String, Tail> = BTreeMap::new();
    for m in newest_first {
        let t = tails.entry(m.stream.clone()).or_default();
        if t.position.is_none() {
            t.position = Some(m.position.clone());
        }
        if let Some(c) = &m.checkpoint {
            for mark in &c.0 {
                let t = tails.entry(mark.stream.clone()).or_default();
                t.position = t.position.take().max(mark.delivered.clone());
                t.floor = t.floor.take().max(mark.floor.clone());
            }
            break;
        }
    }
    tails
}

/// Per stream, the plan of [`crate::kafka_sink::plan`] over every destination (index =
/// destination); a destination that knows nothing of a stream counts as holding none
/// of it. Streams no destination knows are absent (start them from the beginning).
pub fn plan_streams(destinations: &[BTreeMap<String, Tail>]) -> BTreeMap<String, ResumePlan> {
    let mut streams: Vec<&String> = destinations.iter().flat_map(|d| d.keys()).collect();
    streams.sort();
    streams.dedup();
    streams
        .into_iter()
        .map(|s| {
            let tails: Vec<Tail> = destinations.iter().map(|d| d.get(s).cloned().unwrap_or_default()).collect();
            (s.clone(), plan(&tails))
        })
        .collect()
}

/// Tracks messages in flight in send order, each tagged with its stream, and yields
/// each stream's floor: its last position within the acknowledged prefix.
#[derive(Debug, Default)]
pub struct StreamAckWindow {
    first_seq: u64,
    inflight: VecDeque<(usize, Option<Position>, bool)>,
    floors: Vec<Option<Position>>,
}

impl StreamAckWindow {
    /// A window over streams whose floors start at `floors` (index = stream).
    pub fn new(floors: Vec<Option<Position>>) -> Self {
        StreamAckWindow { first_seq: 0, inflight: VecDeque::new(), floors }
    }

    /// Records a message of `stream` about to be sent; returns its sequence number.
    /// `position` may be left out (the floor then advances less often).
    pub fn sent(&mut self, stream: usize, position: Option<Position>) -> u64 {
        self.inflight.push_back((stream, position, false));
        self.first_seq + self.inflight.len() as u64 - 1
    }

    /// Records the acknowledgement of `seq`; advances the floors over the prefix.
    pub fn acknowledged(&mut self, seq: u64) {
        let Some(i) = seq.checked_sub(self.first_seq) else { return };
        if let Some(entry) = self.inflight.get_mut(i as usize) {
            entry.2 = true;
        }
        while self.inflight.front().is_some_and(|e| e.2) {
            let (stream, p, _) = self.inflight.pop_front().expect("front exists");
            if p.is_some() {
                if self.floors.len() <= stream {
                    self.floors.resize(stream + 1, None);
                }
                self.floors[stream] = p;
            }
            self.first_seq += 1;
        }
    }

    /// A stream's floor.
    pub fn floor(&self, stream: usize) -> Option<&Position> {
        self.floors.get(stream).and_then(Option::as_ref)
    }

    /// Messages sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }
}

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The destination already holds it.
    Skip,
    /// Send it with this sequence number (and this checkpoint header, when given).
    Send {
        /// Sequence number for its delivery report.
        seq: u64,
        /// The checkpoint it carries.
        checkpoint: Option<Checkpoint>,
    },
}

/// The pure core of a producer session over several streams: decides, message by
/// message, whether to skip it and which checkpoint it carries.
#[derive(Debug)]
pub struct StreamSender {
    streams: Vec<String>,
    /// Per destination, per stream: at or below this the destination holds the stream.
    delivered: Vec<Vec<Option<Position>>>,
    /// Per destination: messages sent there since its last checkpoint (`None`: none yet
    /// in this session).
    since_checkpoint: Vec<Option<u32>>,
    every: u32,
    window: StreamAckWindow,
}

impl StreamSender {
    /// A session over `streams` (index = stream) and `destinations` destinations, after
    /// recovery's `plans`.
    pub fn new(streams: Vec<String>, destinations: usize, plans: &BTreeMap<String, ResumePlan>) -> Self {
        let delivered = (0..destinations)
            .map(|d| streams.iter().map(|s| plans.get(s).and_then(|p| p.delivered.get(d).cloned().flatten())).collect())
            .collect();
        let floors = streams.iter().map(|s| plans.get(s).and_then(|p| p.floor.clone())).collect();
        StreamSender {
            streams,
            delivered,
            since_checkpoint: vec![None; destinations],
            every: CHECKPOINT_EVERY,
            window: StreamAckWindow::new(floors),
        }
    }

    /// The same with a checkpoint every `every` messages per destination.
    pub fn with_checkpoint_every(mut self, every: u32) -> Self {
        self.every = every.max(1);
        self
    }

    /// Where `stream` resumes: after this position (`None`: from its beginning, or
    /// wherever a stream no destination knows starts).
    pub fn resume_after(plans: &BTreeMap<String, ResumePlan>, stream: &str) -> Option<Position> {
        plans.get(stream).and_then(|p| p.resume_after.clone())
    }

    /// Decides about the message of `stream` at `position` for `destination`.
    /// `sample` says whether the floor may advance to it (a clone of the position).
    pub fn decide(&mut self, stream: usize, destination: usize, position: &Position, sample: bool) -> Decision {
        let held = &mut self.delivered[destination][stream];
        if held.as_ref().is_some_and(|d| position <= d) {
            return Decision::Skip;
        }
        // In place: no allocation per message once the slot holds a position.
        match held {
            Some(h) => h.clone_from(position),
            None => *held = Some(position.clone()),
        }
        let due = match &mut self.since_checkpoint[destination] {
            slot @ None => {
                *slot = Some(0);
                true
            }
            Some(n) => {
                *n += 1;
                if *n >= self.every {
                    *n = 0;
                    true
                } else {
                    false
                }
            }
        };
        let checkpoint = due.then(|| self.checkpoint(destination));
        let seq = self.window.sent(stream, sample.then(|| position.clone()));
        Decision::Send { seq, checkpoint }
    }

    fn checkpoint(&self, destination: usize) -> Checkpoint {
        Checkpoint(
            self.streams
                .iter()
                .enumerate()
                .map(|(i, s)| StreamMark {
                    stream: s.clone(),
                    delivered: self.delivered[destination][i].clone(),
                    floor: self.window.floor(i).cloned(),
                })
                .collect(),
        )
    }

    /// Records a delivery report.
    pub fn acknowledged(&mut self, seq: u64) {
        self.window.acknowledged(seq);
    }

    /// Messages sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.window.in_flight()
    }

    /// A stream's acknowledged floor.
    pub fn floor(&self, stream: usize) -> Option<&Position> {
        self.window.floor(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::PositionValue;
    use proptest::prelude::*;

    fn pos(stream: usize, offset: u64) -> Position {
        Position(vec![
            PositionValue::Text(format!("t/{stream}")),
            PositionValue::Int(i128::from(offset)),
            PositionValue::Int(0),
        ])
    }

    fn offset_of(p: &Position) -> u64 {
        match p.0[1] {
            PositionValue::Int(v) => v as u64,
            _ => unreachable!(),
        }
    }

    /// One landed message: (stream, offset, checkpoint).
    type Log = Vec<(usize, u64, Option<Checkpoint>)>;

    /// A crashing session: messages it reads before crashing, the landing limit per
    /// destination, how far acknowledgements get, the interleaving seed.
    type Crash = (u64, Vec<u64>, u64, u64);

    /// The model: `dest[s][i]` is the destination of stream s's i-th message. Sessions
    /// interleave the streams (each in order), send through [`StreamSender`] (checkpoint
    /// every `every` messages: small, so recovery crosses many), crash with a prefix of
    /// each destination landed and a prefix of those acknowledged; recovery reads each
    /// log back to its newest checkpoint. The last session does not crash.
    fn run_model(dest: &[Vec<usize>], destinations: usize, crashes: &[Crash]) -> Vec<Log> {
        let streams: Vec<String> = (0..dest.len()).map(|s| format!("t/{s}")).collect();
        let mut logs: Vec<Log> = vec![Vec::new(); destinations];
        let mut sessions = crashes.to_vec();
        sessions.push((u64::MAX, vec![u64::MAX; destinations], u64::MAX, 7));
        for (stop_after, land_limit, ack_limit, seed) in sessions {
            let tails: Vec<BTreeMap<String, Tail>> = logs
                .iter()
                .map(|log| {
                    let mut newest_first = Vec::new();
                    for (s, off, c) in log.iter().rev() {
                        newest_first.push(Recovered {
                            stream: streams[*s].clone(),
                            position: pos(*s, *off),
                            checkpoint: c.clone(),
                        });
                        if c.is_some() {
                            break;
                        }
                    }
                    destination_tails(&newest_first)
                })
                .collect();
            let plans = plan_streams(&tails);
            let mut next: Vec<u64> = streams
                .iter()
                .map(|s| StreamSender::resume_after(&plans, s).map_or(0, |p| offset_of(&p) + 1))
                .collect();
            let mut sender = StreamSender::new(streams.clone(), destinations, &plans).with_checkpoint_every(4);
            let mut sent_here = vec![0u64; destinations];
            let mut landed = Vec::new();
            let mut acked = 0usize;
            let mut rng = seed;
            let mut read = 0u64;
            loop {
                let open: Vec<usize> = (0..dest.len()).filter(|&s| next[s] < dest[s].len() as u64).collect();
                if open.is_empty() || read >= stop_after {
                    break;
                }
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let s = open[(rng >> 33) as usize % open.len()];
                let off = next[s];
                next[s] += 1;
                read += 1;
                let d = dest[s][off as usize];
                let Decision::Send { seq, checkpoint } = sender.decide(s, d, &pos(s, off), off.is_multiple_of(3))
                else {
                    continue;
                };
                if sent_here[d] < land_limit[d] {
                    sent_here[d] += 1;
                    logs[d].push((s, off, checkpoint));
                    landed.push(seq);
                } else {
                    sent_here[d] = u64::MAX; // gap-less: nothing later lands there
                }
                while acked < landed.len() && (acked as u64) < ack_limit {
                    sender.acknowledged(landed[acked]);
                    acked += 1;
                }
            }
        }
        logs
    }

    fn exact(dest: &[Vec<usize>], destinations: usize, logs: &[Log]) -> bool {
        (0..destinations).all(|d| {
            (0..dest.len()).all(|s| {
                let want: Vec<u64> = (0..dest[s].len() as u64).filter(|&o| dest[s][o as usize] == d).collect();
                let got: Vec<u64> = logs[d].iter().filter(|(st, _, _)| *st == s).map(|(_, o, _)| *o).collect();
                got == want
            })
        })
    }

    fn strategy() -> impl Strategy<Value = (Vec<Vec<usize>>, usize, Vec<Crash>)> {
        (1usize..4, 1usize..4).prop_flat_map(|(streams, destinations)| {
            (
                prop::collection::vec(prop::collection::vec(0..destinations, 0..90), streams),
                Just(destinations),
                prop::collection::vec(
                    (0u64..80, prop::collection::vec(0u64..40, destinations), 0u64..60, any::<u64>()),
                    0..6,
                ),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]
        #[test]
        fn every_message_of_every_stream_lands_exactly_once_in_order((dest, destinations, crashes) in strategy()) {
            let logs = run_model(&dest, destinations, &crashes);
            prop_assert!(exact(&dest, destinations, &logs), "{logs:?}");
        }
    }

    #[test]
    fn checkpoint_text_round_trips() {
        let c = Checkpoint(vec![
            StreamMark { stream: "orders/0".into(), delivered: Some(pos(0, 12)), floor: None },
            StreamMark { stream: "orders/1".into(), delivered: None, floor: Some(pos(1, 3)) },
        ]);
        let mut out = Vec::new();
        c.write(&mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), "orders/0\t[\"t/0\",12,0]\t-\norders/1\t-\t[\"t/1\",3,0]");
        assert_eq!(Checkpoint::parse(&out).unwrap(), c);
        assert!(Checkpoint::parse(b"orders/0\t-").is_err());
        assert!(Checkpoint::parse(b"orders/0\t[1\t-").is_err());
    }

    #[test]
    fn a_destination_is_read_back_to_its_checkpoint_only() {
        let cp = Checkpoint(vec![
            StreamMark { stream: "t/0".into(), delivered: Some(pos(0, 5)), floor: Some(pos(0, 2)) },
            StreamMark { stream: "t/1".into(), delivered: Some(pos(1, 9)), floor: None },
        ]);
        let newest_first = [
            Recovered { stream: "t/0".into(), position: pos(0, 8), checkpoint: None },
            Recovered { stream: "t/0".into(), position: pos(0, 7), checkpoint: Some(cp) },
            // Older than the checkpoint: not read.
            Recovered { stream: "t/2".into(), position: pos(2, 1), checkpoint: None },
        ];
        let t = destination_tails(&newest_first);
        assert_eq!(t["t/0"], Tail { position: Some(pos(0, 8)), floor: Some(pos(0, 2)) });
        assert_eq!(t["t/1"], Tail { position: Some(pos(1, 9)), floor: None });
        assert!(!t.contains_key("t/2"));
    }

    /// Trusting the newest message alone (no checkpoint) forgets streams that went
    /// there earlier, and the model sees the duplicates.
    #[test]
    fn ignoring_checkpoints_duplicates_messages() {
        let dest = vec![vec![0, 0, 0], vec![0, 0, 0]];
        let streams: Vec<String> = vec!["t/0".into(), "t/1".into()];
        // Session 1 sends t/0:0, t/1:0, t/0:1 to destination 0; all land, none acked.
        let plans = plan_streams(&[BTreeMap::new()]);
        let mut sender = StreamSender::new(streams.clone(), 1, &plans);
        for (s, o) in [(0, 0), (1, 0), (0, 1)] {
            assert!(matches!(sender.decide(s, 0, &pos(s, o), true), Decision::Send { .. }));
        }
        // Newest message only: t/1 looks absent and would be sent again.
        let newest = destination_tails(&[Recovered { stream: "t/0".into(), position: pos(0, 1), checkpoint: None }]);
        let plans = plan_streams(&[newest]);
        assert_eq!(StreamSender::resume_after(&plans, "t/1"), None);
        // With the session's checkpoints, t/1:0 is known to be there.
        let logs = run_model(&dest, 1, &[(3, vec![3], 0, 1)]);
        assert!(exact(&dest, 1, &logs), "{logs:?}");
    }

    #[test]
    fn floors_follow_the_acknowledged_prefix_per_stream() {
        let mut w = StreamAckWindow::new(vec![None, Some(pos(1, 4))]);
        let a = w.sent(0, Some(pos(0, 1)));
        let b = w.sent(1, Some(pos(1, 5)));
        let c = w.sent(0, Some(pos(0, 2)));
        w.acknowledged(c);
        w.acknowledged(b);
        assert_eq!((w.floor(0), w.floor(1)), (None, Some(&pos(1, 4))), "nothing before `a` is acknowledged");
        w.acknowledged(a);
        assert_eq!((w.floor(0), w.floor(1), w.in_flight()), (Some(&pos(0, 2)), Some(&pos(1, 5)), 0));
    }
}
