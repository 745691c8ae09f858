//! The manifests loader on arbitrary YAML/JSON text: never a panic; whatever objects it
//! reads turn into entries, a zone, zone files and answers without one either.
#![no_main]

use std::path::Path;

use hickory_proto::rr::{Name, RecordType};
use k8s_gateway::config::Filters;
use k8s_gateway::dns::handler::respond;
use k8s_gateway::dns::response::Transport;
use k8s_gateway::sources::{kind, manifests};
use k8s_gateway::zone::{Settings, build_with, render};
use k8s_gateway_fuzz::check_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The loader reads files as UTF-8 text; other bytes are an error before it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (objects, errors) = manifests::read_text(Path::new("fuzz.yaml"), text);
    for error in &errors {
        assert!(!error.to_string().is_empty(), "an error says something");
    }
    let output = kind::entries(&objects, &Filters::default());
    let domain = Name::from_ascii("home.example.").expect("a valid name");
    let settings = Settings::with_defaults(vec![domain]);
    let zone = build_with(output.entries, output.skipped, &settings, None, 1);
    let _ = render::zone_files(&zone);
    // Ask for one name the objects may have published.
    let mut message = hickory_proto::op::Message::new(
        7,
        hickory_proto::op::MessageType::Query,
        hickory_proto::op::OpCode::Query,
    );
    let name = zone
        .authorities()
        .iter()
        .flat_map(|a| a.nodes().map(|n| n.name()))
        .next()
        .unwrap_or_else(|| Name::from_ascii("home.example.").expect("a valid name"));
    message.add_query(hickory_proto::op::Query::query(name, RecordType::A));
    let request = message.to_vec().expect("an encodable query");
    let mut out = Vec::new();
    if respond(Some(&zone), &request, Transport::Udp, &mut out).is_some() {
        check_response(&request, Transport::Udp, &out);
    }
});
