//! `respond` on arbitrary bytes, over UDP and TCP, against a zone with every record kind
//! and edge: never a panic, every response well-formed (see `check_response`), and the
//! prepared-answer fast path byte for byte the same as the general encoder.
#![no_main]

use std::cell::RefCell;
use std::sync::LazyLock;

use k8s_gateway::dns::handler::respond;
use k8s_gateway::dns::prepared::PreparedAnswers;
use k8s_gateway::dns::response::Transport;
use k8s_gateway::zone::Zone;
use k8s_gateway_fuzz::{check_response, fixed_zone};
use libfuzzer_sys::fuzz_target;

static ZONE: LazyLock<Zone> = LazyLock::new(fixed_zone);

thread_local! {
    static PREPARED: RefCell<PreparedAnswers> = RefCell::new(PreparedAnswers::new());
}

fuzz_target!(|request: &[u8]| {
    let mut out = Vec::new();
    let mut fast = Vec::new();
    for transport in [Transport::Udp, Transport::Tcp] {
        let outcome = respond(Some(&ZONE), request, transport, &mut out);
        if outcome.is_some() {
            check_response(request, transport, &out);
        }
        // Asked three times: answered, kept, then served from the table.
        PREPARED.with_borrow_mut(|prepared| {
            for _ in 0..3 {
                let fast_outcome = prepared
                    .respond(Some(&ZONE), request, transport, &mut fast)
                    .map(|o| o.into_owned());
                assert_eq!(fast_outcome, outcome, "prepared outcome");
                if outcome.is_some() {
                    assert_eq!(fast, out, "prepared bytes");
                }
            }
        });
    }
    // Before the first zone: SERVFAIL, and the same properties.
    if respond(None, request, Transport::Udp, &mut out).is_some() {
        check_response(request, Transport::Udp, &out);
    }
});
