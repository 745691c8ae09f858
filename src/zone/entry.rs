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
    /// Records of `--zone-file`s: not a `--resources` kind, always last (any object's
    /// record for a name wins over the file's).
    ZoneFile,
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
            Kind::ZoneFile => "ZoneFile",
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
/// One pointer, shared by the object as kept and every record made from it: cloning
/// and dropping it is one counter, and a zone of 100,000 records holds 100,000
/// pointers rather than 300,000 string handles.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef(Arc<ObjectName>);

/// Kind, namespace and name of an object, and the cluster it came from; read through
/// [`ObjectRef`].
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName {
    /// The `--cluster` the object was read from; `None` for the one cluster of
    /// `--kubeconfig` (or the pod's), and for manifests and zone files. Two clusters'
    /// objects of the same kind, namespace and name are different objects.
    pub cluster: Option<Arc<str>>,
    /// The Kubernetes kind as written in the object (`Service`, `Gateway`, ...).
    pub kind: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ObjectRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef(Arc::new(ObjectName {
            cluster: None,
            kind: kind_label(kind),
            namespace: namespace.into(),
            name: name.into(),
        }))
    }

    /// The same object, as read from the cluster named `cluster`.
    pub fn in_cluster(&self, cluster: &Arc<str>) -> Self {
        ObjectRef(Arc::new(ObjectName {
            cluster: Some(cluster.clone()),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }))
    }

    /// Which object this is, by allocation: equal for clones of one reference. Two
    /// references made apart for the same object differ here (but are `==`).
    pub fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

/// The kind's label, one allocation per kind (per thread) rather than per object.
fn kind_label(kind: &str) -> Arc<str> {
    thread_local! {
        static LABELS: std::cell::RefCell<Vec<Arc<str>>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LABELS.with_borrow_mut(|labels| {
        if let Some(label) = labels.iter().find(|l| ***l == *kind) {
            return label.clone();
        }
        let label: Arc<str> = kind.into();
        if labels.len() < 64 {
            labels.push(label.clone());
        }
        label
    })
}

impl std::ops::Deref for ObjectRef {
    type Target = ObjectName;

    fn deref(&self) -> &ObjectName {
        &self.0
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ObjectRef");
        if let Some(cluster) = &self.cluster {
            debug.field("cluster", cluster);
        }
        debug
            .field("kind", &self.kind)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish()
    }
}

/// `Service apps/web`, and `Service apps/web (cluster lab)` for an object of one of
/// several `--cluster`s: every view that names an object says where it lives.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)?;
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)?;
        }
        match &self.cluster {
            Some(cluster) => write!(f, " (cluster {cluster})"),
            None => Ok(()),
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
    /// A service location (RFC 2782): `priority weight port target`.
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
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

/// Why an object, or one of its records, is left out of the zone. One closed list, so
/// that `/explain`, the `skipped` metric's `reason` label and the log level all read the
/// same value; [`Skip::as_str`] is that label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A field holds something that is not what it must be (a host name, an address).
    InvalidField,
    /// A DNSEndpoint asks for a record type we do not serve.
    UnknownRecordType,
    /// Nothing to point the names at yet (no load-balancer status, no Gateway address).
    NoAddress,
    /// `--ingress-class` or `--gateway-class` leaves it out.
    ClassFiltered,
    /// The route's parent Gateway has not accepted it (Gateway API `status.parents`).
    NotAccepted,
    /// The Gateway it attaches to does not exist (or carries the ignore label).
    GatewayNotFound,
    /// The parentRef's `sectionName`/`port` names no listener of the Gateway.
    NoListener,
    /// The route and the listeners have no hostname in common.
    NoHostname,
    /// No listener the route attaches to admits routes from its namespace (Gateway
    /// API `allowedRoutes.namespaces`: `Same` by default, `All`, or a `Selector`).
    NamespaceNotAllowed,
    /// No listener the route attaches to admits its kind (`allowedRoutes.kinds`, or
    /// the listener's protocol: a TLSRoute through an HTTPS listener).
    KindNotAllowed,
    /// An Istio Gateway without `spec.selector`: Istio applies it to every workload,
    /// and we take no addresses from every LoadBalancer Service.
    NoSelector,
    /// An Istio VirtualService's `exportTo` hides it from the Gateway's namespace.
    NotExported,
    /// No server of the Istio Gateway admits the host.
    NotAdmitted,
    /// The name is under none of the configured domains.
    OutsideDomains,
    /// A CNAME that cannot stand beside the name's other records (RFC 1034 §3.6.2).
    CnameConflict,
}

impl Skip {
    /// The reason as `/explain` and the metric label spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::InvalidField => "invalid_field",
            Skip::UnknownRecordType => "unknown_record_type",
            Skip::NoAddress => "no_address",
            Skip::ClassFiltered => "class_filtered",
            Skip::NotAccepted => "not_accepted",
            Skip::GatewayNotFound => "gateway_not_found",
            Skip::NoListener => "no_listener",
            Skip::NoHostname => "no_hostname",
            Skip::NamespaceNotAllowed => "namespace_not_allowed",
            Skip::KindNotAllowed => "kind_not_allowed",
            Skip::NoSelector => "no_selector",
            Skip::NotExported => "not_exported",
            Skip::NotAdmitted => "not_admitted",
            Skip::OutsideDomains => "outside_domains",
            Skip::CnameConflict => "cname_conflict",
        }
    }

    /// The reason for a person reading `kubectl describe` (an Event's note).
    pub fn in_words(self) -> &'static str {
        match self {
            Skip::InvalidField => "a field holds a value that is not valid",
            Skip::UnknownRecordType => "a record type we do not serve",
            Skip::NoAddress => {
                "there is no address to point the names at yet (no load-balancer IP, no Gateway status.addresses, or no LoadBalancer Service for the Istio Gateway)"
            }
            Skip::ClassFiltered => "its class is not one of --ingress-class / --gateway-class",
            Skip::NotAccepted => {
                "its parent Gateway has not accepted it (status.parents has no Accepted=True)"
            }
            Skip::GatewayNotFound => {
                "the Gateway it names does not exist (or carries the ignore label)"
            }
            Skip::NoListener => "no listener of the Gateway matches its sectionName or port",
            Skip::NoHostname => "its hostnames and the listeners' have nothing in common",
            Skip::NamespaceNotAllowed => {
                "no listener's allowedRoutes.namespaces admits its namespace"
            }
            Skip::KindNotAllowed => {
                "no listener admits its kind (allowedRoutes.kinds, or the listener's protocol)"
            }
            Skip::NoSelector => {
                "the Istio Gateway has no spec.selector (set it, or the external-dns.kubernetes.io/target annotation)"
            }
            Skip::NotExported => "its exportTo hides it from the Gateway's namespace",
            Skip::NotAdmitted => "no server of the Istio Gateway admits the host",
            Skip::OutsideDomains => "the name is under none of our --domain",
            Skip::CnameConflict => "a CNAME cannot stand beside the name's other records",
        }
    }

    /// Whether the object is wrong (worth a warning), rather than waiting on something
    /// or left out on purpose (worth a debug line).
    pub fn is_mistake(self) -> bool {
        matches!(self, Skip::InvalidField | Skip::UnknownRecordType)
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object a source could not turn into entries, and why. The object is skipped whole;
/// the rest of the zone still serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub object: ObjectRef,
    pub reason: Skip,
    /// For people: the field and what is wrong with it.
    pub detail: String,
}
