//! Turns one DNS request into one response: a pure function of the zone and the bytes.
//!
//! Both transports call [`respond`]; it takes no lock, awaits nothing and logs nothing,
//! so the answer path costs one parse, one hash lookup and one encode.

use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::{DNSClass, LowerName, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};

use crate::zone::{Lookup, Zone};

/// The largest UDP answer we send, whatever the client offers: the DNS Flag Day 2020
/// value, which avoids IP fragmentation on every common path.
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Without EDNS(0) a UDP answer is at most 512 bytes (RFC 1035 §4.2.1).
const CLASSIC_UDP_PAYLOAD: u16 = 512;

/// How the request arrived: decides the size limit of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// What was asked and answered, for metrics and the debug query log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The question, if the request had one we could read.
    pub question: Option<(LowerName, RecordType)>,
    pub rcode: ResponseCode,
    /// Whether the name is in one of our domains (AA set).
    pub authoritative: bool,
    pub truncated: bool,
    /// The name is inside our domains but the zone does not have it (NXDOMAIN with no
    /// CNAME leading there): the one case `--fallthrough` hands to an upstream.
    pub no_such_name: bool,
}

/// Writes the response to `request` into `out` (cleared first). Returns `None` when no
/// response must be sent: the packet is too short to carry an ID, or is itself a
/// response (answering those would let two servers bounce packets forever).
pub fn respond(
    zone: Option<&Zone>,
    request: &[u8],
    transport: Transport,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    out.clear();
    let header = Header::read(&mut BinDecoder::new(request)).ok()?;
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    let mut meta = Metadata::response_from_request(&header.metadata);

    let message = match Message::from_vec(request) {
        Ok(message) => message,
        Err(_) => return Some(error(meta, ResponseCode::FormErr, None, None, out)),
    };
    let edns = message.edns.as_ref().map(response_edns);
    if header.metadata.op_code != OpCode::Query {
        return Some(error(meta, ResponseCode::NotImp, None, edns, out));
    }
    let [query] = &message.queries[..] else {
        return Some(error(meta, ResponseCode::FormErr, None, edns, out));
    };
    // RFC 6891 §6.1.3: we speak EDNS version 0 only.
    if message.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return Some(error(meta, ResponseCode::BADVERS, Some(query), edns, out));
    }
    let qname = LowerName::from(query.name());
    let qtype = query.query_type();
    let question = Some((qname.clone(), qtype));
    let refuse = |meta, edns, out: &mut Vec<u8>| Outcome {
        question: question.clone(),
        ..error(meta, ResponseCode::Refused, Some(query), edns, out)
    };
    // Only the Internet class, and no zone transfers (nothing is configured for them).
    if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY)
        || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
    {
        return Some(refuse(meta, edns, out));
    }
    let Some(zone) = zone else {
        // Not built yet: tell resolvers to try another server, not that the name is gone.
        return Some(Outcome {
            question,
            ..error(meta, ResponseCode::ServFail, Some(query), edns, out)
        });
    };
    let answer = match zone.lookup(&qname, qtype) {
        Lookup::Answer(answer) => answer,
        // Never an open resolver: names outside our domains are refused, not recursed.
        Lookup::NotAuthoritative => return Some(refuse(meta, edns, out)),
    };
    meta.authoritative = true;
    meta.response_code = answer.rcode;
    let limit = match transport {
        Transport::Tcp => u16::MAX,
        Transport::Udp => message.edns.as_ref().map_or(CLASSIC_UDP_PAYLOAD, |e| {
            e.max_payload().clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
        }),
    };
    let mut truncated = !encode(
        &meta,
        query,
        (&answer.answers, answer.authorities, &answer.additionals),
        edns.as_ref(),
        limit,
        out,
    );
    if truncated {
        // RFC 2181 §9: a truncated answer is discarded by the client and retried over
        // TCP, so send only the question and TC rather than a misleading partial set.
        meta.truncation = true;
        truncated = !encode(&meta, query, (&[], &[], &[]), edns.as_ref(), limit, out);
    }
    Some(Outcome {
        question,
        rcode: answer.rcode,
        authoritative: true,
        truncated,
        no_such_name: answer.rcode == ResponseCode::NXDomain
            && answer.answers.is_empty()
            && super::forward::may_fall_through(&qname),
    })
}

/// An answer with only a response code (and the question when there was one).
fn error(
    mut meta: Metadata,
    rcode: ResponseCode,
    query: Option<&Query>,
    edns: Option<Edns>,
    out: &mut Vec<u8>,
) -> Outcome {
    meta.response_code = rcode;
    let queries = query.map(std::slice::from_ref).unwrap_or_default();
    let mut encoder = BinEncoder::new(out);
    let ok = hickory_proto::op::emit_message_parts(
        &meta,
        &mut queries.iter(),
        &mut [].iter() as &mut std::slice::Iter<'_, Record>,
        &mut [].iter() as &mut std::slice::Iter<'_, Record>,
        &mut [].iter() as &mut std::slice::Iter<'_, Record>,
        edns.as_ref(),
        None,
        &mut encoder,
    )
    .is_ok();
    if !ok {
        out.clear();
    }
    Outcome {
        question: None,
        rcode,
        authoritative: false,
        truncated: false,
        no_such_name: false,
    }
}

/// Encodes a response; `false` when it did not fit in `limit` bytes.
fn encode(
    meta: &Metadata,
    query: &Query,
    (answers, authorities, additionals): (&[Record], &[Record], &[Record]),
    edns: Option<&Edns>,
    limit: u16,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    let mut encoder = BinEncoder::new(out);
    encoder.set_max_size(limit);
    match hickory_proto::op::emit_message_parts(
        meta,
        &mut std::iter::once(query),
        &mut answers.iter(),
        &mut authorities.iter(),
        &mut additionals.iter(),
        edns,
        None,
        &mut encoder,
    ) {
        Ok(header) => !header.metadata.truncation,
        Err(_) => false,
    }
}

/// Our OPT record: EDNS version 0, our payload size, the client's DO bit copied
/// (RFC 3225 §3), no options.
pub(super) fn response_edns(request: &Edns) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(MAX_UDP_PAYLOAD);
    edns.set_dnssec_ok(request.flags().dnssec_ok);
    edns
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    use super::*;
    use crate::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Settings, build};

    fn zone() -> Zone {
        let settings = Settings::with_defaults(vec![Name::from_ascii("home.example.").unwrap()]);
        let entries = (0..50u32).map(|i| Entry {
            name: EntryName::Absolute(
                Name::from_ascii(format!("app{}.home.example.", i % 10)).unwrap(),
            ),
            data: RecordData::Address(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))),
            ttl: None,
            kind: Kind::Service,
            object: ObjectRef::new("Service", "apps", "app"),
        });
        build(entries, &settings, None, 1)
    }

    fn query(name: &str, rtype: RecordType) -> Vec<u8> {
        let mut message = Message::new(9, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        message.set_edns(edns);
        message.to_vec().unwrap()
    }

    /// xorshift64*: a fixed-seed generator, so a failure reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn random_and_mutated_packets_never_panic_and_answers_parse() {
        let zone = zone();
        let seeds = [
            query("app1.home.example.", RecordType::A),
            query("missing.home.example.", RecordType::AAAA),
            query("home.example.", RecordType::NS),
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut out = Vec::new();
        let mut answered = 0;
        for round in 0..60_000 {
            let mut packet = seeds[round % seeds.len()].clone();
            match rng.next() % 4 {
                // Flip a few bytes.
                0 | 1 => {
                    for _ in 0..=(rng.next() % 4) {
                        let at = (rng.next() as usize) % packet.len();
                        packet[at] = rng.next() as u8;
                    }
                }
                // Cut it short.
                2 => packet.truncate((rng.next() as usize) % packet.len()),
                // Pure noise of any length.
                _ => packet = (0..(rng.next() % 600)).map(|_| rng.next() as u8).collect(),
            }
            for transport in [Transport::Udp, Transport::Tcp] {
                if respond(Some(&zone), &packet, transport, &mut out).is_some() {
                    answered += 1;
                    let answer = Message::from_vec(&out)
                        .unwrap_or_else(|e| panic!("unparsable answer to {packet:?}: {e}"));
                    assert_eq!(answer.metadata.message_type, MessageType::Response);
                    if transport == Transport::Udp {
                        assert!(
                            out.len() <= usize::from(MAX_UDP_PAYLOAD),
                            "{} bytes over UDP",
                            out.len()
                        );
                    }
                }
            }
        }
        assert!(
            answered > 10_000,
            "most mutated queries still get an answer ({answered})"
        );
    }

    #[test]
    fn servfail_until_the_first_zone() {
        let mut out = Vec::new();
        let outcome = respond(
            None,
            &query("app1.home.example.", RecordType::A),
            Transport::Udp,
            &mut out,
        )
        .unwrap();
        assert_eq!(outcome.rcode, ResponseCode::ServFail);
        assert_eq!(
            Message::from_vec(&out).unwrap().metadata.response_code,
            ResponseCode::ServFail
        );
    }
}
