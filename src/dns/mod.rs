//! DNS over UDP ([`udp`]) and TCP ([`tcp`]): sockets in, [`handler::respond`] for each
//! request, bytes out. This module is the wiring: what the servers share
//! ([`DnsContext`]), the check of signed requests both transports make first, and the
//! count of every answer.
//!
//! Each server takes an already bound socket and a shutdown token, so tests bind
//! `127.0.0.1:0` and nothing here knows about ports or globals. Queries read the current
//! zone with one atomic load: no lock, no wait for the sources. The one exception to
//! "answer at once" is `--fallthrough` ([`forward`]): a name we lack is handed off, and
//! its answer sent later, without holding up the loop. [`response`] holds what every
//! answer shares (size limits, EDNS, [`response::Outcome`]); [`transfer`] encodes AXFR
//! and IXFR, [`notify`] tells secondaries of a new serial, [`tsig`] signs and checks.

#[cfg(target_os = "linux")]
mod batch_send;
pub mod cache;
pub mod connections;
pub mod forward;
pub mod handler;
pub mod notify;
pub mod prepared;
pub mod response;
pub mod tcp;
pub mod transfer;
pub mod tsig;
pub mod udp;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::metrics::{Answered, DnsMetrics, RequestTimer};
use crate::zone::{AddressRange, SharedZone};
pub use connections::{MAX_TCP_CONNECTIONS, MAX_TCP_PER_CLIENT};
use forward::Forwarder;
use response::{Outcome, Transport};
pub use tcp::serve_tcp;
pub use udp::{bind_udp, serve_udp};

/// What every DNS server task shares. Cheap to clone.
#[derive(Clone)]
pub struct DnsContext {
    pub zone: SharedZone,
    /// The request metrics of this listening address.
    pub metrics: Arc<DnsMetrics>,
    /// Where names the zone does not have are asked (`--fallthrough`), if anywhere.
    pub forwarder: Option<Arc<Forwarder>>,
    /// Who may transfer our zones over TCP (`--transfer-allow`); empty: nobody.
    pub transfer_allow: Arc<[AddressRange]>,
    /// The TSIG keys (`--tsig-key`); empty: TSIG off, and a transfer needs only the
    /// address. With keys, it needs a signature with one of them too.
    pub tsig_keys: Arc<[tsig::Key]>,
}

/// With `--tsig-key`, a signed request is checked before it is answered (RFC 8945 §5.2):
/// a failed check is answered here (NOTAUTH), a good one is answered as if unsigned
/// and the answer signed. `None`: not signed, answer as usual.
fn answer_signed(
    ctx: &DnsContext,
    request: &[u8],
    transport: Transport,
    response: &mut Vec<u8>,
) -> Option<(Outcome, Option<tsig::Signer>)> {
    if ctx.tsig_keys.is_empty() {
        return None;
    }
    match tsig::check(&ctx.tsig_keys, request, tsig::now()) {
        tsig::Checked::Unsigned => None,
        tsig::Checked::Rejected {
            response: rejected,
            outcome,
            error,
        } => {
            ctx.metrics.tsig_rejected(error);
            *response = rejected;
            Some((outcome, None))
        }
        tsig::Checked::Signed {
            request,
            mut signer,
            udp_limit,
        } => {
            let zone = ctx.zone.load();
            let mut outcome = handler::respond(zone.as_deref(), &request, transport, response)?;
            // NB: a signed question is never handed to --fallthrough: the upstream
            // cannot sign its answer with our key.
            outcome.no_such_name = false;
            if transfer::is_transfer(&outcome) && transport == Transport::Tcp {
                return Some((outcome, Some(signer)));
            }
            let unsigned =
                (transport == Transport::Udp).then(|| (response.clone(), signer.clone()));
            let mut signed = signer.sign(response);
            if let Some((unsigned, mut signer)) = unsigned
                && response.len() > usize::from(udp_limit)
            {
                // The TSIG record made it too long: the question alone, with TC.
                outcome.truncated = true;
                *response = tsig::question_only(&unsigned).unwrap_or_default();
                signed = signer.sign(response);
            }
            if !signed {
                response.clear();
            }
            Some((outcome, None))
        }
    }
}

/// Counts one answer and writes its optional debug log line. Called before the answer is
/// sent, so that a scrape following an answer always includes it.
fn account(
    metrics: &DnsMetrics,
    timer: &RequestTimer,
    transport: Transport,
    peer: SocketAddr,
    outcome: &Outcome,
    size: usize,
) {
    let answered = Answered {
        question: outcome.question.as_ref(),
        rcode: outcome.rcode,
        proto: transport.as_str(),
        size,
    };
    metrics.observe(timer, peer, answered);
    log_query(transport, peer, outcome);
}

/// The opt-in query log: `RUST_LOG=k8s_gateway::query=debug`. Off by default, and then it
/// costs one cached check per query.
fn log_query(transport: Transport, peer: SocketAddr, outcome: &Outcome) {
    if let Some((name, rtype)) = &outcome.question {
        tracing::debug!(target: "k8s_gateway::query", %peer, proto = transport.as_str(), %name, %rtype, rcode = %outcome.rcode, "query");
    }
}
