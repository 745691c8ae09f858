//! What a source hands the zone builder: one record claimed by one object.
//!
//! This is the only vocabulary shared by `sources/` and `zone/`. It is plain data: it
//! knows nothing of Kubernetes types, files or sockets.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;

/// The kinds of object that can claim names. The order of `--resources` (not the order
/// of this enum) is the precedence when kinds disagree on a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    DnsEndpoint,
    HttpRoute,
    GrpcRoute,
    TlsRoute,
    VirtualService,
    Ingress,
    Service,
}

impl Kind {
    /// Every kind, in the default precedence order.
    pub const DEFAULT_ORDER: [Kind; 7] = [
        Kind::DnsEndpoint,
        Kind::HttpRoute,
        Kind::GrpcRoute,
        Kind::TlsRoute,
        Kind::VirtualService,
        Kind::Ingress,
        Kind::Service,
    ];

    /// The Kubernetes kind name, as users write it in `--resources`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DnsEndpoint => "DNSEndpoint",
            Kind::HttpRoute => "HTTPRoute",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::TlsRoute => "TLSRoute",
            Kind::VirtualService => "VirtualService",
            Kind::Ingress => "Ingress",
            Kind::Service => "Service",
        }
    }

    /// Parses a kind name case-insensitively.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::DEFAULT_ORDER
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object a record came from, for zone-file comments, `/explain` and warnings.
/// Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The Kubernetes kind as written in the object (`Service`, `Gateway`, ...).
    pub kind: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ObjectRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Where an entry's name sits relative to the configured domains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryName {
    /// A host name that must lie under one of our domains; dropped otherwise
    /// (an Ingress host for someone else's domain is not ours to answer).
    Absolute(Name),
    /// A Service host name: absolute when it lies under one of our domains, else relative
    /// to each of them (`web.apps` becomes `web.apps.<domain>` for every domain).
    Hostname(Name),
}

/// The data of one record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordData {
    /// An A or AAAA record, by the address family.
    Address(IpAddr),
    /// An alias to another name; alone at its name (RFC 1034 §3.6.2).
    Cname(Name),
    Txt(String),
}

/// One record claimed by one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: EntryName,
    pub data: RecordData,
    /// Overrides `--ttl` for this record (DNSEndpoint `recordTTL`).
    pub ttl: Option<u32>,
    /// The precedence class the record competes in.
    pub kind: Kind,
    pub object: ObjectRef,
}

/// An object a source could not turn into entries, and why. The object is skipped whole;
/// the rest of the zone still serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub object: ObjectRef,
    /// Machine-readable reason, used as a metric label (`invalid_field`, `not_accepted`...).
    pub reason: &'static str,
    /// For people: the field and what is wrong with it.
    pub detail: String,
}
