//! external-dns `DNSEndpoint` records (externaldns.k8s.io/v1alpha1): explicit records,
//! the way to publish what no Service or route describes.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{Output, Source};
use super::objects::ObjectSet;
use super::shared::{object_ref, slim_meta};
use crate::config::Filters;
use crate::zone::names::{parse_absolute, parse_ip};
use crate::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Skip, Skipped};

/// The spec of a DNSEndpoint. Only the fields we read; unknown ones are ignored, and a
/// record type we do not serve skips that endpoint, not the object.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "externaldns.k8s.io",
    version = "v1alpha1",
    kind = "DNSEndpoint",
    root = "DnsEndpoint",
    derive = "PartialEq",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct DnsEndpointSpec {
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// One record set: a name, a type and its targets.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default)]
    pub dns_name: Option<String>,
    #[serde(default)]
    pub record_type: Option<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    /// Overrides `--ttl` for these records.
    #[serde(default, rename = "recordTTL")]
    pub record_ttl: Option<i64>,
}

impl Source for DnsEndpoint {
    const NEEDED_BY: &'static [Kind] = &[Kind::DnsEndpoint];

    /// The spec is already only what we read.
    type Kept = Self;

    fn keep(mut self) -> Self {
        self.metadata = slim_meta(self.metadata, &[]);
        self
    }

    fn entries(objects: &ObjectSet, _: &Filters, out: &mut Output) {
        for endpoint in objects.published::<DnsEndpoint>() {
            out.extend(dns_endpoint_entries(endpoint));
        }
    }
}

/// The records a DNSEndpoint publishes. Each endpoint contributes to its own `dnsName`
/// only (the maintained k8s_gateway fork answered every name of the object with every
/// endpoint's targets). An endpoint with an unknown record type or a malformed target is
/// skipped with the reason; the other endpoints still publish.
pub fn dns_endpoint_entries(endpoint: &DnsEndpoint) -> (Vec<Entry>, Vec<Skipped>) {
    let object = object_ref(&DnsEndpoint::label(), &endpoint.metadata);
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for (i, record) in endpoint.spec.endpoints.iter().enumerate() {
        match endpoint_entries(record, i, &object) {
            Ok(found) => entries.extend(found),
            Err((reason, detail)) => skipped.push(Skipped {
                object: object.clone(),
                reason,
                detail,
            }),
        }
    }
    (entries, skipped)
}

fn endpoint_entries(
    record: &Endpoint,
    i: usize,
    object: &ObjectRef,
) -> Result<Vec<Entry>, (Skip, String)> {
    let field = |name: &str| format!("spec.endpoints[{i}].{name}");
    let dns_name = record.dns_name.as_deref().unwrap_or_default();
    let name = parse_absolute(dns_name, true)
        .map_err(|e| (Skip::InvalidField, format!("{}: {e}", field("dnsName"))))?;
    let record_type = record
        .record_type
        .as_deref()
        .unwrap_or("A")
        .to_ascii_uppercase();
    let ttl = match record.record_ttl {
        Some(ttl) if ttl > 0 => Some(u32::try_from(ttl).unwrap_or(u32::MAX)),
        _ => None,
    };
    let invalid = |j: usize, e: String| {
        (
            Skip::InvalidField,
            format!("{}: {e} (for {dns_name})", field(&format!("targets[{j}]"))),
        )
    };
    let mut data = Vec::new();
    for (j, target) in record.targets.iter().enumerate() {
        data.push(match record_type.as_str() {
            "A" | "AAAA" => {
                let ip = parse_ip(target).map_err(|e| invalid(j, e))?;
                if ip.is_ipv4() != (record_type == "A") {
                    return Err(invalid(j, format!("{target} is not an address for a {record_type} record")));
                }
                RecordData::Address(ip)
            }
            "CNAME" => RecordData::Cname(parse_absolute(target, false).map_err(|e| invalid(j, e))?),
            "TXT" => RecordData::Txt(target.clone()),
            "SRV" => parse_srv(target).map_err(|e| invalid(j, e))?,
            other => {
                return Err((
                    Skip::UnknownRecordType,
                    format!("{}: {other} records are not served (A, AAAA, CNAME, TXT, SRV are), for {dns_name}", field("recordType")),
                ));
            }
        });
    }
    Ok(data
        .into_iter()
        .map(|data| Entry {
            name: EntryName::Absolute(name.clone()),
            data,
            ttl,
            kind: Kind::DnsEndpoint,
            object: object.clone(),
        })
        .collect())
}

/// An SRV target as external-dns writes it: `priority weight port target` (RFC 2782).
fn parse_srv(text: &str) -> Result<RecordData, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [priority, weight, port, target] = fields[..] else {
        return Err(format!(
            "{text:?} is not an SRV target (priority weight port target, like \"0 100 25565 mc.home.example\")"
        ));
    };
    let number = |what: &str, value: &str| {
        value
            .parse::<u16>()
            .map_err(|_| format!("{value:?} is not a {what} (0 to 65535) in {text:?}"))
    };
    let target = parse_absolute(target, false)?;
    Ok(RecordData::Srv {
        priority: number("priority", priority)?,
        weight: number("weight", weight)?,
        port: number("port", port)?,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::yaml;

    /// A DNSEndpoint as external-dns users write them.
    const RECORDS: &str = r#"
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: records
  namespace: network
spec:
  endpoints:
  - dnsName: nas.home.example
    recordTTL: 300
    recordType: A
    targets: [192.168.10.5, 192.168.10.6]
  - dnsName: nas.home.example
    recordType: AAAA
    targets: ["fd00:10::5"]
  - dnsName: _acme-challenge.home.example
    recordType: TXT
    targets: ["token-123", "v=spf1 -all"]
  - dnsName: photos.home.example
    recordType: CNAME
    targets: [nas.home.example]
  - dnsName: mail.home.example
    recordType: MX
    targets: ["10 mail.home.example"]
  - dnsName: bad.home.example
    recordType: A
    targets: [fd00::1]
"#;

    fn endpoint(text: &str) -> DnsEndpoint {
        yaml(text)
    }

    #[test]
    fn srv_targets_are_priority_weight_port_target() {
        let (entries, skipped) = dns_endpoint_entries(&endpoint(
            r#"
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {name: minecraft, namespace: games}
spec:
  endpoints:
  - dnsName: _minecraft._tcp.mc.home.example
    recordType: SRV
    targets: ["0 100 25565 mc.home.example", "10 5 25566 backup.home.example."]
  - dnsName: _bad._tcp.home.example
    recordType: SRV
    targets: ["0 100 mc.home.example"]
  - dnsName: _big._tcp.home.example
    recordType: SRV
    targets: ["0 100 70000 mc.home.example"]
"#,
        ));
        let data: Vec<&RecordData> = entries.iter().map(|e| &e.data).collect();
        let srv = |priority, weight, port, target: &str| RecordData::Srv {
            priority,
            weight,
            port,
            target: hickory_proto::rr::Name::from_ascii(target).unwrap(),
        };
        assert_eq!(
            data,
            [
                &srv(0, 100, 25565, "mc.home.example."),
                &srv(10, 5, 25566, "backup.home.example."),
            ]
        );
        // Each bad endpoint is skipped with the field and what is wrong.
        assert!(
            skipped[0].detail.contains("targets[0]")
                && skipped[0].detail.contains("priority weight port target"),
            "{skipped:?}"
        );
        assert!(
            skipped[1].detail.contains("\"70000\" is not a port"),
            "{skipped:?}"
        );
    }

    #[test]
    fn each_endpoint_publishes_its_own_name_only() {
        let (entries, _) = dns_endpoint_entries(&endpoint(RECORDS));
        let published: Vec<String> = entries
            .iter()
            .map(|e| {
                let EntryName::Absolute(name) = &e.name else {
                    panic!("absolute names")
                };
                let data = match &e.data {
                    RecordData::Address(ip) => ip.to_string(),
                    RecordData::Cname(t) => format!("CNAME {t}"),
                    RecordData::Txt(t) => format!("TXT {t}"),
                    srv @ RecordData::Srv { .. } => format!("{srv:?}"),
                };
                format!("{name} {data} ttl={:?}", e.ttl)
            })
            .collect();
        assert_eq!(
            published,
            [
                "nas.home.example. 192.168.10.5 ttl=Some(300)",
                "nas.home.example. 192.168.10.6 ttl=Some(300)",
                "nas.home.example. fd00:10::5 ttl=None",
                "_acme-challenge.home.example. TXT token-123 ttl=None",
                "_acme-challenge.home.example. TXT v=spf1 -all ttl=None",
                "photos.home.example. CNAME nas.home.example. ttl=None",
            ]
        );
        assert!(entries.iter().all(|e| e.kind == Kind::DnsEndpoint));
    }

    #[test]
    fn unknown_types_and_bad_targets_skip_only_their_endpoint() {
        let (_, skipped) = dns_endpoint_entries(&endpoint(RECORDS));
        let reasons: Vec<(Skip, &str)> = skipped
            .iter()
            .map(|s| (s.reason, s.detail.split(':').next().unwrap_or_default()))
            .collect();
        assert_eq!(
            reasons,
            [
                (Skip::UnknownRecordType, "spec.endpoints[4].recordType"),
                (Skip::InvalidField, "spec.endpoints[5].targets[0]")
            ]
        );
        assert!(
            skipped[0].detail.contains("mail.home.example"),
            "{}",
            skipped[0].detail
        );
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let yaml = RECORDS.replace("  endpoints:", "  someFutureField: {x: 1}\n  endpoints:").replace(
            "    recordTTL: 300",
            "    recordTTL: 300\n    providerSpecific: [{name: alias, value: 'true'}]\n    setIdentifier: a",
        );
        let (entries, _) = dns_endpoint_entries(&endpoint(&yaml));
        assert_eq!(entries.len(), 6);
    }
}
