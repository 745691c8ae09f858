//! The zone as RFC 1035 zone files, for people and for Knot or BIND to load.

use std::fmt::Write;

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record};

use super::{Authority, ObjectRef, Zone};

/// One zone file per domain, in domain order, each record with a comment naming the
/// objects it came from (`; Service apps/web`).
pub fn zone_files(zone: &Zone) -> String {
    let mut text = String::new();
    for authority in zone.authorities() {
        authority_file(authority, &mut text);
        text.push('\n');
    }
    text
}

fn authority_file(authority: &Authority, out: &mut String) {
    let _ = writeln!(out, "$ORIGIN {}", authority.origin());
    line(out, authority.soa(), "zone apex");
    for (record, origins) in authority.records_in_order() {
        line(out, &record, &origins_label(origins));
    }
}

fn line(out: &mut String, record: &Record, from: &str) {
    let data = match &record.data {
        RData::TXT(txt) => quoted(txt),
        other => other.to_string(),
    };
    let _ = writeln!(
        out,
        "{}\t{}\tIN\t{}\t{}\t; {}",
        record.name,
        record.ttl,
        record.record_type(),
        data,
        from
    );
}

/// TXT data as RFC 1035 §5.1 quoted character-strings, so spaces and quotes survive.
fn quoted(txt: &TXT) -> String {
    let strings: Vec<String> = txt
        .txt_data
        .iter()
        .map(|bytes| {
            let mut text = String::from("\"");
            for &b in bytes.iter() {
                match b {
                    b'"' | b'\\' => {
                        text.push('\\');
                        text.push(char::from(b));
                    }
                    0x20..=0x7e => text.push(char::from(b)),
                    _ => text.push_str(&format!("\\{b:03}")),
                }
            }
            text.push('"');
            text
        })
        .collect();
    strings.join(" ")
}

/// Who a record came from, as `/zone` comments and the status page show it: the objects
/// (`Service apps/web, Ingress apps/web`), or `zone apex` for the records the zone makes.
pub fn origins_label(origins: &[ObjectRef]) -> String {
    if origins.is_empty() {
        return "zone apex".to_string();
    }
    origins
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::Name;

    use super::*;
    use crate::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Settings, build};

    #[test]
    fn renders_every_record_with_its_origin() {
        let settings = Settings::with_defaults(vec![Name::from_ascii("home.example.").unwrap()]);
        let entry = Entry {
            name: EntryName::Absolute(Name::from_ascii("web.home.example").unwrap()),
            data: RecordData::Address("192.168.1.10".parse().unwrap()),
            ttl: None,
            kind: Kind::Service,
            object: ObjectRef::new("Service", "apps", "web"),
        };
        let text = zone_files(&build(vec![entry], &settings, None, 42));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "$ORIGIN home.example.");
        assert!(lines[1].starts_with("home.example.\t60\tIN\tSOA\tdns1.kube-system.home.example. hostmaster.home.example. 42 "));
        assert_eq!(
            lines[2],
            "home.example.\t60\tIN\tNS\tdns1.kube-system.home.example.\t; zone apex"
        );
        assert_eq!(
            lines[3],
            "web.home.example.\t60\tIN\tA\t192.168.1.10\t; Service apps/web"
        );
    }

    #[test]
    fn txt_strings_are_quoted_and_escaped() {
        let txt = TXT::new(vec![
            "v=spf1 -all".into(),
            "say \"hi\"\\".into(),
            "é".into(),
        ]);
        assert_eq!(quoted(&txt), r#""v=spf1 -all" "say \"hi\"\\" "\195\169""#);
    }
}
