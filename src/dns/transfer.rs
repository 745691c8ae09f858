//! Zone transfers to secondaries: AXFR (RFC 5936), and IXFR answered with the whole zone
//! (RFC 1995 §4), over TCP from the `--transfer-allow` ranges only.
//!
//! [`handler::respond`](super::handler::respond) refuses every transfer; the TCP loop
//! hands the ones from allowed peers here. A transfer is a stream of messages: the SOA,
//! every record, the SOA again, built one message at a time and handed on as it is
//! built. A message that cannot be encoded ends it there ([`TransferError`]).

use std::net::IpAddr;

use hickory_proto::ProtoError;
use hickory_proto::op::{Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{LowerName, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

use super::response::Outcome;
use crate::zone::{AddressRange, Authority, Zone};

/// Bytes of records per message at most: well under the 64 KiB of a TCP frame, and what
/// BIND and Knot use too (RFC 5936 §2.2 leaves the packing to the server).
const MESSAGE_BUDGET: usize = 16 * 1024;

/// Whether the request `respond` answered was a transfer (AXFR or IXFR).
pub fn is_transfer(outcome: &Outcome) -> bool {
    matches!(
        outcome.question,
        Some((_, RecordType::AXFR | RecordType::IXFR))
    )
}

/// Whether `peer` may transfer our zones.
pub fn allowed(ranges: &[AddressRange], peer: IpAddr) -> bool {
    ranges.iter().any(|range| range.contains(peer))
}

/// Why a transfer ended before its closing SOA. The messages before the failure were
/// handed on whole; none after it: the secondary sees a cut transfer and retries, where
/// a skipped or empty message would have given it a zone with a hole in it.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// One record that no DNS message can hold (a TXT of more than 64 KiB, say).
    #[error("{record} is too large for a DNS message")]
    RecordTooLarge {
        /// Its name and type (`big.home.example. TXT`).
        record: String,
        #[source]
        source: Box<ProtoError>,
    },
    /// Records that fit one by one, but not with the header around them: the encoder
    /// would leave records out and set TC, which ends no transfer well.
    #[error("a transfer message would be longer than 65,535 bytes")]
    MessageTooLarge,
    /// Any other failure to encode a message.
    #[error("a transfer message could not be encoded")]
    Encode(#[source] Box<ProtoError>),
}

/// Answers the transfer `request`, handing each message to `send` as soon as it is
/// built, so that a large zone is never held whole in memory. `send` returns `false`
/// when the client has gone: nothing more is built. The response code when the answer
/// was handed on whole (nothing at all when the request has no header).
pub fn respond_transfer(
    zone: Option<&Zone>,
    request: &[u8],
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<ResponseCode, TransferError> {
    let Ok(header) = Header::read(&mut BinDecoder::new(request)) else {
        return Ok(ResponseCode::FormErr);
    };
    let meta = Metadata::response_from_request(&header.metadata);
    let mut single = |query: Option<&Query>,
                      rcode: ResponseCode,
                      answers: &[Record]|
     -> Result<ResponseCode, TransferError> {
        let message = encode(meta, query, rcode, answers)?;
        send(message);
        Ok(rcode)
    };
    let Ok(message) = Message::from_vec(request) else {
        return single(None, ResponseCode::FormErr, &[]);
    };
    let [query] = &message.queries[..] else {
        return single(None, ResponseCode::FormErr, &[]);
    };
    let Some(zone) = zone else {
        return single(Some(query), ResponseCode::ServFail, &[]);
    };
    let qname = LowerName::from(query.name());
    let Some(authority) = zone.authorities().iter().find(|a| *a.origin() == qname) else {
        // RFC 5936 §2.2.1: not a zone we are authoritative for (a name inside one is not
        // a zone either).
        let rcode = if zone.authority_for(&qname).is_some() {
            ResponseCode::NotAuth
        } else {
            ResponseCode::Refused
        };
        return single(Some(query), rcode, &[]);
    };
    if query.query_type() == RecordType::IXFR
        && let Some(theirs) = message.authorities.iter().find_map(soa_serial)
        && !serial_is_newer(zone.serial(), theirs)
    {
        // RFC 1995 §2: the client is up to date: our SOA alone.
        return single(
            Some(query),
            ResponseCode::NoError,
            std::slice::from_ref(authority.soa()),
        );
    }
    stream(meta, query, zone_records(authority), send)?;
    Ok(ResponseCode::NoError)
}

/// RFC 5936 §2.2: the SOA first and last, every other record once in between (apex
/// first, then by name, so two transfers of one serial are identical).
fn zone_records(authority: &Authority) -> impl Iterator<Item = Record> {
    std::iter::once(authority.soa().clone())
        .chain(authority.records_in_order().map(|(record, _)| record))
        .chain(std::iter::once(authority.soa().clone()))
}

/// Packs `records` into as few messages as fit [`MESSAGE_BUDGET`] each and hands each
/// to `send` when full; the question is in the first (RFC 5936 §2.2.1 lets later ones
/// omit it). Stops at the first record or message that cannot be encoded.
fn stream(
    meta: Metadata,
    query: &Query,
    records: impl IntoIterator<Item = Record>,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), TransferError> {
    let mut first = Some(query);
    let mut chunk: Vec<Record> = Vec::new();
    let mut size = 0;
    let mut scratch = Vec::new();
    for record in records {
        scratch.clear();
        let mut encoder = BinEncoder::new(&mut scratch);
        record
            .emit(&mut encoder)
            .map_err(|source| TransferError::RecordTooLarge {
                record: format!("{} {}", record.name, record.record_type()),
                source: Box::new(source),
            })?;
        let len = scratch.len();
        if !chunk.is_empty() && size + len > MESSAGE_BUDGET {
            if !send(encode(meta, first.take(), ResponseCode::NoError, &chunk)?) {
                return Ok(());
            }
            chunk.clear();
            size = 0;
        }
        chunk.push(record);
        size += len;
    }
    send(encode(meta, first, ResponseCode::NoError, &chunk)?);
    Ok(())
}

/// One message, whole: at most 65,535 bytes (the encoder's limit), so it always fits a
/// TCP frame.
fn encode(
    mut meta: Metadata,
    query: Option<&Query>,
    rcode: ResponseCode,
    answers: &[Record],
) -> Result<Vec<u8>, TransferError> {
    meta.message_type = MessageType::Response;
    meta.op_code = OpCode::Query;
    meta.authoritative = rcode == ResponseCode::NoError;
    meta.response_code = rcode;
    let mut out = Vec::new();
    let mut encoder = BinEncoder::new(&mut out);
    let queries = query.map(std::slice::from_ref).unwrap_or_default();
    let header = hickory_proto::op::emit_message_parts(
        &meta,
        &mut queries.iter(),
        &mut answers.iter(),
        &mut [].iter() as &mut std::slice::Iter<'_, Record>,
        &mut [].iter() as &mut std::slice::Iter<'_, Record>,
        None,
        None,
        &mut encoder,
    )
    .map_err(|e| TransferError::Encode(Box::new(e)))?;
    // NB: past 65,535 bytes the encoder drops the records that do not fit and sets TC.
    if header.metadata.truncation {
        return Err(TransferError::MessageTooLarge);
    }
    Ok(out)
}

fn soa_serial(record: &Record) -> Option<u32> {
    match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// RFC 1982 serial arithmetic: whether `ours` is after `theirs`.
pub fn serial_is_newer(ours: u32, theirs: u32) -> bool {
    ours != theirs && ours.wrapping_sub(theirs) < 0x8000_0000
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Edns;
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::SOA;

    use super::*;
    use crate::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Settings, build};

    fn zone(count: u32) -> Zone {
        zone_with(count, Vec::new())
    }

    /// `count` addresses `app{i}`, and `extra` entries.
    fn zone_with(count: u32, extra: Vec<Entry>) -> Zone {
        let mut settings =
            Settings::with_defaults(vec![Name::from_ascii("home.example.").unwrap()]);
        settings.reverse_zones = vec!["10.0.0.0/8".parse().unwrap()];
        let entries = (0..count).map(|i| Entry {
            name: EntryName::Absolute(Name::from_ascii(format!("app{i}.home.example.")).unwrap()),
            data: RecordData::Address(std::net::Ipv4Addr::from(0x0a00_0000 + i).into()),
            ttl: None,
            kind: Kind::Service,
            object: ObjectRef::new("Service", "apps", "app"),
        });
        build(entries.chain(extra), &settings, None, 7)
    }

    fn request(name: &str, rtype: RecordType, serial: Option<u32>) -> Vec<u8> {
        let mut message = Message::new(42, MessageType::Query, OpCode::Query);
        let name = Name::from_ascii(name).unwrap();
        message.add_query(Query::query(name.clone(), rtype));
        if let Some(serial) = serial {
            let soa = SOA::new(name.clone(), name.clone(), serial, 0, 0, 0, 0);
            message
                .authorities
                .push(Record::from_rdata(name, 0, RData::SOA(soa)));
        }
        message.set_edns(Edns::new());
        message.to_vec().unwrap()
    }

    /// The response code (or why it was cut off) and the messages handed on.
    fn respond_transfer(
        zone: Option<&Zone>,
        request: &[u8],
    ) -> (Result<ResponseCode, TransferError>, Vec<Vec<u8>>) {
        let mut messages = Vec::new();
        let result = super::respond_transfer(zone, request, &mut |m| {
            messages.push(m);
            true
        });
        (result, messages)
    }

    fn records(messages: &[Vec<u8>]) -> Vec<Record> {
        messages
            .iter()
            .flat_map(|m| Message::from_vec(m).unwrap().answers)
            .collect()
    }

    #[test]
    fn axfr_is_soa_every_record_soa_over_several_messages() {
        let zone = zone(2_000);
        let (rcode, messages) = respond_transfer(
            Some(&zone),
            &request("home.example.", RecordType::AXFR, None),
        );
        assert_eq!(rcode.unwrap(), ResponseCode::NoError);
        assert!(messages.len() > 1, "2000 records take several messages");
        let all = records(&messages);
        // SOA, NS, 2000 A, SOA.
        assert_eq!(all.len(), 2_003);
        assert_eq!(all[0].record_type(), RecordType::SOA);
        assert_eq!(all[all.len() - 1].record_type(), RecordType::SOA);
        assert_eq!(
            all.iter()
                .filter(|r| r.record_type() == RecordType::SOA)
                .count(),
            2
        );
        for (index, bytes) in messages.iter().enumerate() {
            let message = Message::from_vec(bytes).unwrap();
            assert_eq!(message.metadata.id, 42);
            assert!(message.metadata.authoritative);
            assert_eq!(message.queries.len(), usize::from(index == 0));
            assert!(bytes.len() < usize::from(u16::MAX));
        }
        // The reverse zone transfers too, with its PTRs.
        let (_, reverse) = respond_transfer(
            Some(&zone),
            &request("10.in-addr.arpa.", RecordType::AXFR, None),
        );
        let ptrs = records(&reverse)
            .iter()
            .filter(|r| r.record_type() == RecordType::PTR)
            .count();
        assert_eq!(ptrs, 2_000);
    }

    #[test]
    fn a_record_no_message_can_hold_cuts_the_transfer_after_whole_messages() {
        // (what is too large, the error): a TXT longer than any message; one that fits a
        // message alone but not with the header around it.
        let cases = [(70_000, "RecordTooLarge"), (65_250, "MessageTooLarge")];
        for (len, expected) in cases {
            let big = Entry {
                name: EntryName::Absolute(Name::from_ascii("zz.home.example.").unwrap()),
                data: RecordData::Txt("x".repeat(len)),
                ttl: None,
                kind: Kind::DnsEndpoint,
                object: ObjectRef::new("DNSEndpoint", "network", "big"),
            };
            let zone = zone_with(2_000, vec![big]);
            let (result, messages) = respond_transfer(
                Some(&zone),
                &request("home.example.", RecordType::AXFR, None),
            );
            let error = result.unwrap_err();
            assert!(
                format!("{error:?}").starts_with(expected),
                "{len}: {error:?}"
            );
            // The messages before it, whole; no empty one, no closing SOA.
            assert!(messages.len() > 1, "{len}");
            assert!(messages.iter().all(|m| Message::from_vec(m).is_ok()));
            let all = records(&messages);
            let soas = all
                .iter()
                .filter(|r| r.record_type() == RecordType::SOA)
                .count();
            assert_eq!(soas, 1, "{len}");
        }
    }

    #[test]
    fn a_client_gone_stops_the_building() {
        let zone = zone(2_000);
        let mut handed = 0;
        let result = super::respond_transfer(
            Some(&zone),
            &request("home.example.", RecordType::AXFR, None),
            &mut |_| {
                handed += 1;
                false
            },
        );
        assert_eq!(result.unwrap(), ResponseCode::NoError);
        assert_eq!(handed, 1);
    }

    #[test]
    fn ixfr_gets_the_whole_zone_or_just_the_soa_when_current() {
        let zone = zone(3);
        // RFC 1995 §4: an older serial gets the full zone, AXFR-style.
        let (_, messages) = respond_transfer(
            Some(&zone),
            &request("home.example.", RecordType::IXFR, Some(6)),
        );
        assert_eq!(records(&messages).len(), 6);
        // RFC 1995 §2: an up-to-date client gets our SOA alone.
        let (_, messages) = respond_transfer(
            Some(&zone),
            &request("home.example.", RecordType::IXFR, Some(7)),
        );
        let all = records(&messages);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn only_zone_apexes_transfer() {
        let zone = zone(3);
        // (name, rcode)
        let cases = [
            ("app1.home.example.", ResponseCode::NotAuth),
            ("example.org.", ResponseCode::Refused),
        ];
        for (name, expected) in cases {
            let (rcode, messages) =
                respond_transfer(Some(&zone), &request(name, RecordType::AXFR, None));
            assert_eq!(rcode.unwrap(), expected, "{name}");
            assert_eq!(
                Message::from_vec(&messages[0])
                    .unwrap()
                    .metadata
                    .response_code,
                expected
            );
        }
        let (rcode, _) = respond_transfer(None, &request("home.example.", RecordType::AXFR, None));
        assert_eq!(rcode.unwrap(), ResponseCode::ServFail);
        assert_eq!(respond_transfer(Some(&zone), &[1, 2]).1.len(), 0);
    }

    #[test]
    fn serials_compare_as_rfc_1982_says() {
        assert!(serial_is_newer(2, 1));
        assert!(!serial_is_newer(1, 1));
        assert!(!serial_is_newer(1, 2));
        assert!(serial_is_newer(1, u32::MAX));
    }
}
