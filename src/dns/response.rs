//! What every answer shares, whoever makes it (the zone's [`super::handler`], the
//! upstream's [`super::forward`], a TSIG check's [`super::tsig`]): how the request came,
//! what was answered, how long the answer may be, and the OPT record we answer with.

use hickory_proto::op::{Edns, ResponseCode};
use hickory_proto::rr::{LowerName, RecordType};

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
    /// CNAME leading there), and the zone lets it go upstream
    /// ([`crate::zone::may_fall_through`]): the one case `--fallthrough` hands on.
    pub no_such_name: bool,
}

/// The largest answer to a request with `edns` over `transport`: RFC 1035 §4.2.1 (512
/// over UDP without EDNS), RFC 6891 §6.2.5 (the client's payload size, up to ours).
pub fn size_limit(edns: Option<&Edns>, transport: Transport) -> u16 {
    match transport {
        Transport::Tcp => u16::MAX,
        Transport::Udp => edns.map_or(CLASSIC_UDP_PAYLOAD, |e| {
            e.max_payload().clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
        }),
    }
}

/// Our OPT record: EDNS version 0, our payload size, the client's DO bit copied
/// (RFC 3225 §3), no options.
pub fn response_edns(request: &Edns) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(MAX_UDP_PAYLOAD);
    edns.set_dnssec_ok(request.flags().dnssec_ok);
    edns
}
