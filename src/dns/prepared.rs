//! Prepared answers: the bytes the general encoder wrote for a question, kept and reused.
//!
//! Most traffic asks the same few names again and again. The second time a question is
//! seen (for a given zone version), [`handler::respond`] answers it and the bytes are
//! kept in a bounded, per-worker table; the next time the same question comes (any ID, RD
//! on or off and, where it makes no other difference, any case of the name, RFC 4343 /
//! the 0x20 trick), the kept bytes are copied and patched: the ID, RD and the question's
//! letters. No hickory `Message`, no allocation, no lookup in the zone.
//!
//! The kept bytes are always the general encoder's own output, so the fast path can never
//! disagree with it: before an answer is kept, the encoder is run again on variants of
//! the question (other ID, RD flipped, the name in upper and lower case) and the patch
//! must reproduce each byte for byte, else the answer is not kept (or kept for the exact
//! case only). Only the header, one question and a bare OPT record are read here; any
//! other request (several questions, EDNS options, TSIG, compression in the question,
//! trailing bytes, an opcode other than QUERY) goes to the general parser unchanged.

use std::borrow::Cow;

use super::handler;
use super::response::{MAX_UDP_PAYLOAD, Outcome, Transport};
use crate::zone::Zone;

/// Questions kept per worker. With answers of ~100 bytes this is ~300 KiB per worker.
const SLOTS: usize = 2048;
/// Answers longer than this are not kept (bounded memory; they are rare and slow anyway).
const MAX_KEPT: usize = MAX_UDP_PAYLOAD as usize;
/// The header bytes of a request.
const HEADER: usize = 12;
/// RD in the second byte of the flags (RFC 1035 §4.1.1).
const RD: u8 = 0x01;
/// Fixed part of the key before the name: transport, flags, type, class, OPT.
const KEY_FIXED: usize = 1 + 2 + 2 + 2 + 1 + 2 + 4;
/// Longest name on the wire (RFC 1035 §3.1).
const MAX_NAME: usize = 255;
const OPT: u16 = 41;

/// A worker's table of prepared answers. Not shared: each worker owns one, so a hit
/// takes no lock. Bounded: a fixed number of slots, a new question replaces the one in
/// its slot.
pub struct PreparedAnswers {
    slots: Box<[Slot]>,
    /// The zone version the slots were filled from: its address and serial.
    zone: Option<(usize, u32)>,
    /// Bumped when the zone changes: slots of an older generation are empty.
    generation: u64,
    /// Scratch buffers for the variants encoded when an answer is kept.
    scratch_request: Vec<u8>,
    scratch_template: Vec<u8>,
    scratch_expected: Vec<u8>,
    scratch_patched: Vec<u8>,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    /// The last question that missed here: kept when it comes again.
    seen: u64,
    key: Vec<u8>,
    response: Vec<u8>,
    /// Whether the name's case can be patched in; else only the lower-case question hits.
    case_free: bool,
    outcome: Option<Outcome>,
}

/// What the fast parse learnt about a request: where its name is, and the table key.
struct Question {
    /// The name's wire bytes in the request: `HEADER..name_end`.
    name_end: usize,
    key: [u8; KEY_FIXED + MAX_NAME],
    key_len: usize,
    /// Whether the name has an upper-case letter.
    has_upper: bool,
}

impl Default for PreparedAnswers {
    fn default() -> Self {
        Self::new()
    }
}

impl PreparedAnswers {
    pub fn new() -> Self {
        PreparedAnswers {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            zone: None,
            generation: 1,
            scratch_request: Vec::new(),
            scratch_template: Vec::new(),
            scratch_expected: Vec::new(),
            scratch_patched: Vec::new(),
        }
    }

    /// Answers exactly as [`handler::respond`] does (same bytes, same outcome), from the
    /// table when the question was answered before from the same zone.
    pub fn respond<'a>(
        &'a mut self,
        zone: Option<&Zone>,
        request: &[u8],
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Option<Cow<'a, Outcome>> {
        let (Some(zone), Some(question)) = (zone, parse(request, transport)) else {
            return handler::respond(zone, request, transport, out).map(Cow::Owned);
        };
        let version = (std::ptr::from_ref(zone) as usize, zone.serial());
        if self.zone != Some(version) {
            self.zone = Some(version);
            self.generation += 1;
        }
        let hash = key_hash(&question.key[..question.key_len]);
        let index = (hash % SLOTS as u64) as usize;
        let slot = &self.slots[index];
        let hit = slot.generation == self.generation
            && slot.key == question.key[..question.key_len]
            && (slot.case_free || !question.has_upper);
        if hit {
            let slot = &self.slots[index];
            out.clear();
            out.extend_from_slice(&slot.response);
            patch(out, request, question.name_end, slot.case_free);
            return slot.outcome.as_ref().map(Cow::Borrowed);
        }
        let outcome = handler::respond(Some(zone), request, transport, out)?;
        let slot = &mut self.slots[index];
        if slot.generation != self.generation || slot.key != question.key[..question.key_len] {
            // Kept the second time it is asked (of this zone version): a flood of names
            // asked once (random subdomains) costs no extra encodes and evicts nothing.
            let mark = hash ^ self.generation.rotate_left(32);
            if slot.seen == mark {
                self.keep(zone, request, &question, transport, out, &outcome, index);
            } else {
                slot.seen = mark;
            }
        }
        Some(Cow::Owned(outcome))
    }

    /// Checks that the answer `answered` (to `request`) can be patched for other IDs, RD
    /// and cases, and keeps it in slot `index` if so.
    #[allow(clippy::too_many_arguments)]
    fn keep(
        &mut self,
        zone: &Zone,
        request: &[u8],
        question: &Question,
        transport: Transport,
        answered: &[u8],
        outcome: &Outcome,
        index: usize,
    ) {
        if answered.is_empty() || answered.len() > MAX_KEPT {
            return;
        }
        let name = HEADER..question.name_end;
        // The template: the answer to the question in lower case.
        let mut template = std::mem::take(&mut self.scratch_template);
        self.scratch_request.clear();
        self.scratch_request.extend_from_slice(request);
        self.scratch_request[name.clone()].make_ascii_lowercase();
        let Some(template_outcome) =
            handler::respond(Some(zone), &self.scratch_request, transport, &mut template)
        else {
            self.scratch_template = template;
            return;
        };
        let lower_ok = template_outcome == *outcome;
        // Variant 1: the request as it came (patching the template must give `answered`).
        let actual_ok = self.reproduces(&template, request, question.name_end, true, answered);
        // Variant 2: other ID, RD flipped, the name in upper case.
        self.scratch_request[0] ^= 0xff;
        self.scratch_request[1] ^= 0x5a;
        self.scratch_request[2] ^= RD;
        self.scratch_request[name.clone()].make_ascii_uppercase();
        let upper_ok = self.variant_reproduces(zone, transport, &template, question.name_end, true);
        let case_free = lower_ok && actual_ok && upper_ok;
        let kept = case_free || {
            // Variant 3: other ID and RD, the name in lower case: the exact-case entry.
            self.scratch_request[name].make_ascii_lowercase();
            lower_ok
                && self.variant_reproduces(zone, transport, &template, question.name_end, false)
        };
        if kept {
            // NB: an answer that cannot be patched leaves the slot to the one it holds.
            let slot = &mut self.slots[index];
            std::mem::swap(&mut slot.response, &mut template);
            slot.generation = self.generation;
            slot.key.clear();
            slot.key
                .extend_from_slice(&question.key[..question.key_len]);
            slot.case_free = case_free;
            slot.outcome = Some(template_outcome);
        }
        self.scratch_template = template;
    }

    /// Whether patching `template` for the request in `scratch_request` gives what the
    /// general encoder answers to it.
    fn variant_reproduces(
        &mut self,
        zone: &Zone,
        transport: Transport,
        template: &[u8],
        name_end: usize,
        case: bool,
    ) -> bool {
        let mut expected = std::mem::take(&mut self.scratch_expected);
        let request = std::mem::take(&mut self.scratch_request);
        let ok = handler::respond(Some(zone), &request, transport, &mut expected).is_some()
            && self.reproduces(template, &request, name_end, case, &expected);
        self.scratch_expected = expected;
        self.scratch_request = request;
        ok
    }

    fn reproduces(
        &mut self,
        template: &[u8],
        request: &[u8],
        name_end: usize,
        case: bool,
        expected: &[u8],
    ) -> bool {
        self.scratch_patched.clear();
        self.scratch_patched.extend_from_slice(template);
        patch(&mut self.scratch_patched, request, name_end, case);
        self.scratch_patched == expected
    }
}

/// Writes the request's ID, RD and (with `case`) the question name's letters into a
/// kept answer. The question is the first name of the answer, so it sits right after
/// the header with the same length as in the request.
fn patch(response: &mut [u8], request: &[u8], name_end: usize, case: bool) {
    if response.len() < HEADER || request.len() < HEADER {
        return;
    }
    response[..2].copy_from_slice(&request[..2]);
    response[2] = (response[2] & !RD) | (request[2] & RD);
    if case
        && let (Some(to), Some(from)) = (
            response.get_mut(HEADER..name_end),
            request.get(HEADER..name_end),
        )
    {
        to.copy_from_slice(from);
    }
}

/// Reads the header, the one question and a bare OPT record; `None` for anything else
/// (the general parser then decides, FORMERR, NOTIMP and BADVERS included).
fn parse(request: &[u8], transport: Transport) -> Option<Question> {
    let header = request.get(..HEADER)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    // A response (QR), or an opcode other than QUERY.
    if flags & 0xf800 != 0 {
        return None;
    }
    let counts = [
        u16::from_be_bytes([header[4], header[5]]),
        u16::from_be_bytes([header[6], header[7]]),
        u16::from_be_bytes([header[8], header[9]]),
        u16::from_be_bytes([header[10], header[11]]),
    ];
    if counts[0] != 1 || counts[1] != 0 || counts[2] != 0 || counts[3] > 1 {
        return None;
    }
    let mut question = Question {
        name_end: 0,
        key: [0; KEY_FIXED + MAX_NAME],
        key_len: KEY_FIXED,
        has_upper: false,
    };
    // The name: plain labels only (a pointer in a question is unusual: general path).
    let mut at = HEADER;
    loop {
        let len = usize::from(*request.get(at)?);
        if len > 63 {
            return None;
        }
        let label = request.get(at..at + 1 + len)?;
        let key_at = question.key_len;
        let key = question.key.get_mut(key_at..key_at + label.len())?;
        for (k, b) in key.iter_mut().zip(label) {
            question.has_upper |= b.is_ascii_uppercase();
            *k = b.to_ascii_lowercase();
        }
        question.key_len += label.len();
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    question.name_end = at;
    let fixed = request.get(at..at + 4)?;
    at += 4;
    let mut key = [0u8; KEY_FIXED];
    key[0] = transport as u8;
    key[1..3].copy_from_slice(&(flags & !(u16::from(RD) << 8)).to_be_bytes());
    key[3..7].copy_from_slice(fixed);
    if counts[3] == 1 {
        // OPT (RFC 6891 §6.1.2): root owner, type 41, class = payload size, TTL =
        // extended RCODE, version and flags; no options (they go to the general path).
        let opt = request.get(at..at + 11)?;
        if opt[0] != 0 || u16::from_be_bytes([opt[1], opt[2]]) != OPT || opt[9..11] != [0, 0] {
            return None;
        }
        key[7] = 1;
        key[8..10].copy_from_slice(&opt[3..5]);
        key[10..14].copy_from_slice(&opt[5..9]);
        at += 11;
    }
    if at != request.len() {
        return None;
    }
    question.key[..KEY_FIXED].copy_from_slice(&key);
    Some(question)
}

/// FNV-1a over the key: short keys, and only our own table is indexed with it.
fn key_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;
    use crate::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Settings, build};

    fn zone() -> Zone {
        let settings = Settings::with_defaults(vec![Name::from_ascii("home.example.").unwrap()]);
        let entry = Entry {
            name: EntryName::Absolute(Name::from_ascii("web.home.example.").unwrap()),
            data: RecordData::Address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            ttl: None,
            kind: Kind::Service,
            object: ObjectRef::new("Service", "apps", "web"),
        };
        build([entry], &settings, None, 1)
    }

    fn query(name: &str) -> Vec<u8> {
        let mut message = Message::new(1, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        message.to_vec().unwrap()
    }

    fn from_table(prepared: &mut PreparedAnswers, zone: &Zone, name: &str) -> bool {
        let mut out = Vec::new();
        let outcome = prepared.respond(Some(zone), &query(name), Transport::Udp, &mut out);
        matches!(outcome, Some(Cow::Borrowed(_)))
    }

    #[test]
    fn kept_on_the_second_asking_and_not_evicted_by_names_asked_once() {
        let zone = zone();
        let mut prepared = PreparedAnswers::new();
        assert!(!from_table(&mut prepared, &zone, "web.home.example."));
        assert!(!from_table(&mut prepared, &zone, "web.home.example."));
        assert!(from_table(&mut prepared, &zone, "web.home.example."));
        // A random-subdomain flood: every name once, more names than slots.
        for i in 0..SLOTS * 4 {
            assert!(!from_table(
                &mut prepared,
                &zone,
                &format!("r{i}.home.example.")
            ));
        }
        assert!(from_table(&mut prepared, &zone, "web.home.example."));
    }

    #[test]
    fn a_new_zone_version_empties_the_table() {
        let (old, new) = (zone(), zone());
        let mut prepared = PreparedAnswers::new();
        for _ in 0..3 {
            from_table(&mut prepared, &old, "web.home.example.");
        }
        assert!(from_table(&mut prepared, &old, "web.home.example."));
        assert!(!from_table(&mut prepared, &new, "web.home.example."));
    }
}
