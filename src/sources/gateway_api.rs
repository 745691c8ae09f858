//! Gateway API (gateway.networking.k8s.io): HTTPRoutes, GRPCRoutes and TLSRoutes, at the
//! addresses of the Gateways that accepted them.
//!
//! Attachment follows the specification the way ExternalDNS reads it: a route is
//! published through a parent only where the route's own `status.parents[]` says that
//! parent `Accepted` it, only through the listeners that admit it (their
//! `allowedRoutes`: the route's namespace by `from: Same` (the default), `All` or a
//! `Selector` over its Namespace's labels; its kind by `kinds`, or by the listener's
//! protocol), and only under the hostnames the route and those listeners have in
//! common. Acceptance is for the Gateway as a whole and may come from another listener,
//! so the listener rules are checked even where the status says Accepted. k8s_gateway
//! took every parentRef at its word and every listener's hostname, so a route the
//! Gateway rejected still resolved.
//!
//! The types are our own and read only what the zone needs: every served version
//! (v1, v1beta1, TLSRoute's v1alpha2/v1alpha3) decodes into them, and fields or enum
//! values a newer Gateway API adds are ignored instead of failing the object.

use std::collections::BTreeMap;

use hickory_proto::rr::Name;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as ApiLabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use kube::core::{Selector, SelectorExt};
use kube::{CustomResource, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{Output, Source};
use super::namespace::NamespaceLabels;
use super::objects::ObjectSet;
use super::shared::{
    ByName, Resolved, Why, add_new, by_name, claimed, entries_for, object_ref, slim_meta,
};
use crate::config::Filters;
use crate::zone::names::{intersect, parse_absolute, parse_ip};
use crate::zone::{Entry, EntryName, Kind, RecordData, Skip, Skipped};

/// The group a parentRef means when it names none.
const GROUP: &str = "gateway.networking.k8s.io";

/// A Gateway: its listeners (which hostnames it serves) and the addresses it got.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "Gateway",
    root = "Gateway",
    derive = "PartialEq",
    status = "GatewayStatus",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default)]
    pub gateway_class_name: Option<String>,
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    #[serde(default)]
    pub name: Option<String>,
    /// No hostname: the listener takes every hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub port: Option<i64>,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP` or an implementation's own: decides which
    /// route kinds attach when `allowedRoutes.kinds` is empty.
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// Which routes may attach to a listener.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AllowedRoutes {
    /// Unset: routes from the Gateway's own namespace only.
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    /// Empty: the kinds the listener's protocol takes.
    #[serde(default)]
    pub kinds: Vec<RouteGroupKind>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RouteNamespaces {
    /// `Same` (the default), `All` or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    /// With `from: Selector`: the labels of the route's Namespace must match.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RouteGroupKind {
    /// Unset: gateway.networking.k8s.io.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: String,
}

/// A Kubernetes label selector, as the API spells it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub match_expressions: Option<Vec<SelectorRequirement>>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SelectorRequirement {
    #[serde(default)]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

impl LabelSelector {
    /// The selector as kube matches it, or why it is not one.
    fn parse(&self) -> Result<Selector, String> {
        let api = ApiLabelSelector {
            match_labels: self.match_labels.clone(),
            match_expressions: self.match_expressions.as_ref().map(|all| {
                all.iter()
                    .map(|r| LabelSelectorRequirement {
                        key: r.key.clone(),
                        operator: r.operator.clone(),
                        values: r.values.clone(),
                    })
                    .collect()
            }),
        };
        Selector::try_from(api).map_err(|e| e.to_string())
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    #[serde(default)]
    pub addresses: Vec<GatewayAddress>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct GatewayAddress {
    /// `IPAddress` (the default), `Hostname`, or an implementation-specific type.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// What HTTPRoute, GRPCRoute and TLSRoute share and the zone reads: where they attach
/// and under which names.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default)]
    pub hostnames: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub section_name: Option<String>,
    #[serde(default)]
    pub port: Option<i64>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    #[serde(default)]
    pub parents: Vec<RouteParentStatus>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    #[serde(default)]
    pub parent_ref: ParentRef,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Condition {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    root = "HttpRoute",
    derive = "PartialEq",
    status = "RouteStatus",
    namespaced
)]
pub struct HttpRouteSpec {
    #[serde(flatten)]
    pub route: RouteSpec,
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "GRPCRoute",
    root = "GrpcRoute",
    derive = "PartialEq",
    status = "RouteStatus",
    namespaced
)]
pub struct GrpcRouteSpec {
    #[serde(flatten)]
    pub route: RouteSpec,
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "TLSRoute",
    root = "TlsRoute",
    derive = "PartialEq",
    status = "RouteStatus",
    namespaced
)]
pub struct TlsRouteSpec {
    #[serde(flatten)]
    pub route: RouteSpec,
}

impl Source for Gateway {
    /// Not published itself: the parent routes attach to.
    const NEEDED_BY: &'static [Kind] = &[Kind::HttpRoute, Kind::GrpcRoute, Kind::TlsRoute];

    type Kept = Self;

    fn keep(mut self) -> Self {
        self.metadata = slim_meta(self.metadata, &[]);
        self
    }

    fn entries(_: &ObjectSet, _: &Filters, _: &mut Output) {}
}

/// The three route kinds differ only in their type and their precedence class.
macro_rules! route_kind {
    ($($route:ty => $kind:expr),* $(,)?) => {$(
        impl Source for $route {
            const NEEDED_BY: &'static [Kind] = &[$kind];

            type Kept = Self;


            fn keep(mut self) -> Self {
                self.metadata = slim_meta(self.metadata, &[]);
                self
            }

            fn entries(objects: &ObjectSet, filters: &Filters, out: &mut Output) {
                let gateways = index_gateways(objects);
                let namespaces = NamespaceLabels::of(objects);
                let parents = Parents {
                    gateways: &gateways,
                    namespaces: &namespaces,
                    gateway_classes: &filters.gateway_classes,
                };
                for route in objects.published::<$route>() {
                    let view = RouteView {
                        kind: $kind,
                        metadata: &route.metadata,
                        spec: &route.spec.route,
                        status: route.status.as_ref(),
                    };
                    out.extend(route_entries(view, &parents));
                }
            }
        }
    )*};
}

route_kind!(
    HttpRoute => Kind::HttpRoute,
    GrpcRoute => Kind::GrpcRoute,
    TlsRoute => Kind::TlsRoute,
);

/// A route of any of the three kinds, as the zone sees it.
pub struct RouteView<'a> {
    pub kind: Kind,
    pub metadata: &'a ObjectMeta,
    pub spec: &'a RouteSpec,
    pub status: Option<&'a RouteStatus>,
}

/// Gateways by namespace and name with their addresses, for routes to find their
/// parents. An ignored Gateway publishes no route through it: the label opts out the
/// entry point, not only its own object.
pub type GatewayIndex<'a> = ByName<'a, Resolved<'a, Gateway>>;

pub fn index_gateways(objects: &ObjectSet) -> GatewayIndex<'_> {
    by_name(objects.published::<Gateway>(), |gateway| Resolved {
        gateway,
        addresses: gateway_addresses(gateway).map_err(|e| (Skip::InvalidField, e)),
    })
}

/// A parentRef with its defaults filled in, so that the spec's and the status's
/// spellings of one parent compare equal.
#[derive(PartialEq, Eq)]
struct Parent<'a> {
    group: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    section_name: Option<&'a str>,
    port: Option<i64>,
}

impl<'a> Parent<'a> {
    fn of(r: &'a ParentRef, route_namespace: &'a str) -> Self {
        Parent {
            group: r.group.as_deref().unwrap_or(GROUP),
            kind: r.kind.as_deref().unwrap_or("Gateway"),
            namespace: r.namespace.as_deref().unwrap_or(route_namespace),
            name: &r.name,
            section_name: r.section_name.as_deref().filter(|s| !s.is_empty()),
            port: r.port,
        }
    }

    /// Whether the parent is a Gateway API Gateway (not a Service, as GAMMA mesh
    /// routes use, which publishes nothing on the LAN).
    fn is_gateway(&self) -> bool {
        self.group == Gateway::group(&()) && self.kind == Gateway::kind(&())
    }

    /// The Gateway's listeners this parentRef selects (by `sectionName` and `port`).
    fn listeners<'g>(&self, gateway: &'g Gateway) -> Vec<&'g Listener> {
        gateway
            .spec
            .listeners
            .iter()
            .filter(|l| {
                self.section_name
                    .is_none_or(|s| l.name.as_deref() == Some(s))
            })
            .filter(|l| self.port.is_none_or(|p| l.port == Some(p)))
            .collect()
    }

    fn describe(&self) -> String {
        let mut text = format!("Gateway {}/{}", self.namespace, self.name);
        if let Some(section) = self.section_name {
            text.push_str(&format!(" sectionName {section}"));
        }
        if let Some(port) = self.port {
            text.push_str(&format!(" port {port}"));
        }
        text
    }
}

/// What routes attach to: the Gateways, the labels of the namespaces (for
/// `allowedRoutes` selectors), and `--gateway-class` (when set, only Gateways of those
/// classes publish routes).
pub struct Parents<'a> {
    pub gateways: &'a GatewayIndex<'a>,
    pub namespaces: &'a NamespaceLabels<'a>,
    pub gateway_classes: &'a [String],
}

/// The records a route publishes, and for each parent it does not publish through,
/// why.
pub fn route_entries(route: RouteView<'_>, parents: &Parents<'_>) -> (Vec<Entry>, Vec<Skipped>) {
    let object = object_ref(route.kind.as_str(), route.metadata);
    let namespace = route.metadata.namespace.as_deref().unwrap_or("default");
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut hostnames = Vec::new();
    for (i, host) in route.spec.hostnames.iter().enumerate() {
        match parse_hostname(host) {
            Ok(name) => hostnames.push(name),
            Err(e) => {
                let detail = format!("spec.hostnames[{i}]: {e}");
                skipped.push(Skipped {
                    object,
                    reason: Skip::InvalidField,
                    detail,
                });
                return (entries, skipped);
            }
        }
    }
    let attaching = Attaching {
        hostnames: &hostnames,
        claimed: if hostnames.is_empty() {
            "the listeners' hostnames".to_string()
        } else {
            claimed(&hostnames)
        },
        kind: route.kind,
        namespace,
        statuses: route.status.map_or(&[][..], |s| &s.parents[..]),
        parents,
    };
    for parent_ref in &route.spec.parent_refs {
        let parent = Parent::of(parent_ref, namespace);
        if !parent.is_gateway() {
            continue;
        }
        match attaching.through(&parent) {
            Ok((names, addresses)) => add_new(
                &mut entries,
                entries_for(&names, EntryName::Absolute, addresses, route.kind, &object),
            ),
            Err((reason, detail)) => skipped.push(Skipped {
                object: object.clone(),
                reason,
                detail: format!("{detail} (would publish {})", attaching.claimed),
            }),
        }
    }
    (entries, skipped)
}

/// The names a route publishes through one parent, and the addresses they get.
type Attached<'p> = (Vec<Name>, &'p [RecordData]);

/// One route attaching to its parents: what every parent is checked against.
struct Attaching<'r, 'g> {
    /// The route's own hostnames; empty means the listeners'.
    hostnames: &'r [Name],
    claimed: String,
    kind: Kind,
    namespace: &'r str,
    statuses: &'r [RouteParentStatus],
    parents: &'r Parents<'g>,
}

impl Attaching<'_, '_> {
    /// The names the route publishes through `parent` and the addresses they get, or
    /// why it publishes nothing there.
    fn through<'p>(&'p self, parent: &Parent<'p>) -> Result<Attached<'p>, Why> {
        self.accepted(parent)?;
        let gateway = (self.parents.gateways)
            .get(&(parent.namespace, parent.name))
            .ok_or_else(|| {
                let detail = format!(
                    "{} does not exist or carries the ignore label",
                    parent.describe()
                );
                (Skip::GatewayNotFound, detail)
            })?;
        let class = gateway
            .gateway
            .spec
            .gateway_class_name
            .as_deref()
            .unwrap_or_default();
        let classes = self.parents.gateway_classes;
        if !classes.is_empty() && !classes.iter().any(|c| c == class) {
            let detail = format!(
                "{} has class {class}, not one of --gateway-class {}",
                parent.describe(),
                classes.join(",")
            );
            return Err((Skip::ClassFiltered, detail));
        }
        let listeners = parent.listeners(gateway.gateway);
        if listeners.is_empty() {
            let detail = format!("{} has no such listener", parent.describe());
            return Err((Skip::NoListener, detail));
        }
        let listeners = self.admitting(parent, &listeners)?;
        let addresses = match &gateway.addresses {
            Ok(a) if a.is_empty() => {
                let detail = format!(
                    "{} has no address yet (status.addresses is empty)",
                    parent.describe()
                );
                return Err((Skip::NoAddress, detail));
            }
            Ok(a) => a,
            Err((reason, detail)) => {
                return Err((*reason, format!("{}: {detail}", parent.describe())));
            }
        };
        let names = self.names_under(&listeners);
        if names.is_empty() {
            let detail = format!(
                "no hostname in common with the listeners of {}",
                parent.describe()
            );
            return Err((Skip::NoHostname, detail));
        }
        Ok((names, addresses))
    }

    /// The listeners that admit the route (its namespace and its kind), or why none
    /// does: `namespace_not_allowed` when some listener takes the kind but none the
    /// namespace, else `kind_not_allowed`.
    fn admitting<'l>(
        &self,
        parent: &Parent<'_>,
        listeners: &[&'l Listener],
    ) -> Result<Vec<&'l Listener>, Why> {
        let mut namespace_refused = Vec::new();
        let mut kind_refused = Vec::new();
        let mut admitting = Vec::new();
        for listener in listeners {
            if let Err(why) = admits_kind(listener, self.kind) {
                kind_refused.push(why);
            } else if let Err(why) = self.admits_namespace(listener, parent.namespace) {
                namespace_refused.push(why);
            } else {
                admitting.push(*listener);
            }
        }
        if !admitting.is_empty() {
            return Ok(admitting);
        }
        let (reason, whys) = if namespace_refused.is_empty() {
            (Skip::KindNotAllowed, kind_refused)
        } else {
            (Skip::NamespaceNotAllowed, namespace_refused)
        };
        let detail = format!("{}: {}", parent.describe(), whys.join("; "));
        Err((reason, detail))
    }

    /// Whether `listener` (of a Gateway in `gateway_namespace`) admits routes from the
    /// route's namespace; if not, why.
    fn admits_namespace(&self, listener: &Listener, gateway_namespace: &str) -> Result<(), String> {
        let namespaces = listener
            .allowed_routes
            .as_ref()
            .and_then(|a| a.namespaces.as_ref());
        let from = namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same");
        let listener_name = listener_name(listener);
        match from {
            "All" => Ok(()),
            "Same" if self.namespace == gateway_namespace => Ok(()),
            "Same" => Err(format!(
                "listener {listener_name} admits routes from its own namespace {gateway_namespace} only (allowedRoutes.namespaces.from: Same, the default), not {}",
                self.namespace
            )),
            "Selector" => {
                let Some(selector) = namespaces.and_then(|n| n.selector.as_ref()) else {
                    return Err(format!(
                        "listener {listener_name} has from: Selector without a selector"
                    ));
                };
                let parsed = selector.parse().map_err(|e| {
                    format!("listener {listener_name}: allowedRoutes.namespaces.selector: {e}")
                })?;
                if parsed.matches(&self.parents.namespaces.get(self.namespace)) {
                    Ok(())
                } else {
                    Err(format!(
                        "listener {listener_name} admits routes from namespaces matching {parsed}, and namespace {}'s labels do not",
                        self.namespace
                    ))
                }
            }
            other => Err(format!(
                "listener {listener_name} has allowedRoutes.namespaces.from: {other}, which is not Same, All or Selector"
            )),
        }
    }

    /// Whether the route's `status.parents[]` says `parent` accepted it; if not, why.
    fn accepted(&self, parent: &Parent<'_>) -> Result<(), Why> {
        let mine = || {
            self.statuses
                .iter()
                .filter(|s| Parent::of(&s.parent_ref, self.namespace) == *parent)
        };
        let accepted = mine().any(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Accepted" && c.status == "True")
        });
        if accepted {
            return Ok(());
        }
        let why = mine()
            .flat_map(|s| &s.conditions)
            .find(|c| c.type_ == "Accepted")
            .map_or_else(
                || "no status.parents entry says Accepted".to_string(),
                |c| {
                    format!(
                        "Accepted is {} ({})",
                        c.status,
                        c.reason.as_deref().unwrap_or("no reason")
                    )
                },
            );
        let detail = format!("not accepted by {}: {why}", parent.describe());
        Err((Skip::NotAccepted, detail))
    }

    /// The hostnames the route and these listeners have in common (Gateway API
    /// hostname matching), each once.
    fn names_under(&self, listeners: &[&Listener]) -> Vec<Name> {
        let mut names: Vec<Name> = Vec::new();
        for listener in listeners {
            let listener_host = match listener.hostname.as_deref().filter(|h| !h.is_empty()) {
                None => None,
                Some(h) => match parse_hostname(h) {
                    Ok(n) => Some(n),
                    // A listener the Gateway itself would reject publishes nothing.
                    Err(_) => continue,
                },
            };
            let found: Vec<Name> = match (&listener_host, self.hostnames.is_empty()) {
                (None, true) => Vec::new(),
                (Some(l), true) => vec![l.clone()],
                (None, false) => self.hostnames.to_vec(),
                (Some(l), false) => self
                    .hostnames
                    .iter()
                    .filter_map(|h| intersect(h, l))
                    .collect(),
            };
            for name in found {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }
}

/// The route kinds a listener of `protocol` can take (the Gateway API's core
/// protocols, as ExternalDNS matches them); `allowedRoutes.kinds` narrows them. A
/// listener without a protocol, which the API server would refuse, is read as HTTP; an
/// implementation's own protocol takes none of ours.
fn kinds_of_protocol(protocol: Option<&str>) -> &'static [Kind] {
    match protocol {
        None | Some("HTTP" | "HTTPS") => &[Kind::HttpRoute, Kind::GrpcRoute],
        Some("TLS") => &[Kind::TlsRoute],
        Some(_) => &[],
    }
}

/// Whether `listener` admits routes of `kind`; if not, why.
fn admits_kind(listener: &Listener, kind: Kind) -> Result<(), String> {
    let kinds = listener
        .allowed_routes
        .as_ref()
        .map_or(&[][..], |a| &a.kinds[..]);
    let name = listener_name(listener);
    let protocol = listener.protocol.as_deref();
    if !kinds_of_protocol(protocol).contains(&kind) {
        return Err(format!(
            "listener {name} ({} protocol) takes no {kind}",
            protocol.unwrap_or("no")
        ));
    }
    if kinds.is_empty() {
        return Ok(());
    }
    let admitted = kinds
        .iter()
        .any(|k| k.group.as_deref().unwrap_or(GROUP) == GROUP && k.kind == kind.as_str());
    if admitted {
        Ok(())
    } else {
        let listed: Vec<&str> = kinds.iter().map(|k| k.kind.as_str()).collect();
        Err(format!(
            "listener {name} admits only {} (allowedRoutes.kinds)",
            listed.join(", ")
        ))
    }
}

fn listener_name(listener: &Listener) -> &str {
    listener.name.as_deref().unwrap_or("(unnamed)")
}

/// A route's or listener's hostname: a DNS name, never an IP address ("IPs are not
/// allowed", the Gateway API's Hostname type says).
fn parse_hostname(host: &str) -> Result<Name, String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "{host:?} is an IP address, and IPs are not allowed as hostnames"
        ));
    }
    parse_absolute(host, true)
}

/// The addresses in a Gateway's `status.addresses`: `IPAddress` (or no type) gives
/// A/AAAA, `Hostname` a CNAME; implementation-specific types are not addresses the
/// LAN can use and are ignored.
fn gateway_addresses(gateway: &Gateway) -> Result<Vec<RecordData>, String> {
    let mut found = Vec::new();
    let addresses = gateway
        .status
        .as_ref()
        .map_or(&[][..], |s| &s.addresses[..]);
    for (i, address) in addresses.iter().enumerate() {
        let value = address.value.as_deref().unwrap_or_default();
        let field = || format!("status.addresses[{i}].value");
        let data = match address.type_.as_deref() {
            None | Some("IPAddress") => {
                RecordData::Address(parse_ip(value).map_err(|e| format!("{}: {e}", field()))?)
            }
            Some("Hostname") => RecordData::Cname(
                parse_absolute(value, false).map_err(|e| format!("{}: {e}", field()))?,
            ),
            Some(_) => continue,
        };
        if !found.contains(&data) {
            found.push(data);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::yaml;

    fn name(s: &str) -> Name {
        let mut n = Name::from_ascii(s).unwrap();
        n.set_fqdn(true);
        n
    }

    /// A Gateway shaped like what Cilium or Envoy Gateway writes back.
    const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: internal, namespace: gateway}
spec:
  gatewayClassName: cilium
  listeners:
  - {name: https, hostname: "*.home.example", port: 443, protocol: HTTPS,
     allowedRoutes: {namespaces: {from: All}},
     tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: wildcard}]}}
  - {name: previews, hostname: "*.apps.home.example", port: 8443, protocol: HTTPS,
     allowedRoutes: {namespaces: {from: All}}}
  - {name: plain, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - {name: future, hostname: "x.home.example", port: 9000, protocol: SomethingNew}
status:
  addresses:
  - {type: IPAddress, value: 192.168.10.50}
  - {value: "fd00::50"}
  - {type: example.com/vip, value: vip-1}
  conditions:
  - {type: Accepted, status: "True", reason: Accepted, lastTransitionTime: "2026-01-01T00:00:00Z", message: ok, observedGeneration: 1}
  listeners:
  - {name: https, attachedRoutes: 2, supportedKinds: [{kind: HTTPRoute}], conditions: []}
"#;

    fn route(spec_and_status: &str) -> HttpRoute {
        yaml(&format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: app, namespace: apps}}\n{spec_and_status}"
        ))
    }

    fn accepted(parent: &str) -> String {
        format!(
            "  - parentRef: {parent}\n    controllerName: io.cilium/gateway-controller\n    conditions:\n    - {{type: Accepted, status: \"True\", reason: Accepted}}\n    - {{type: ResolvedRefs, status: \"True\", reason: ResolvedRefs}}\n"
        )
    }

    fn view(route: &HttpRoute) -> RouteView<'_> {
        RouteView {
            kind: Kind::HttpRoute,
            metadata: &route.metadata,
            spec: &route.spec.route,
            status: route.status.as_ref(),
        }
    }

    fn publish(
        route: &HttpRoute,
        gateways: &[Gateway],
        classes: &[&str],
    ) -> (Vec<String>, Vec<Skipped>) {
        let mut objects = ObjectSet::default();
        for gateway in gateways {
            objects.add(gateway.clone());
        }
        let index = index_gateways(&objects);
        let namespaces = NamespaceLabels::of(&objects);
        let classes: Vec<String> = classes.iter().map(|s| s.to_string()).collect();
        let parents = Parents {
            gateways: &index,
            namespaces: &namespaces,
            gateway_classes: &classes,
        };
        let (entries, skipped) = route_entries(view(route), &parents);
        let mut found: Vec<String> = entries
            .iter()
            .map(|e| {
                let EntryName::Absolute(n) = &e.name else {
                    panic!("absolute")
                };
                let data = match &e.data {
                    RecordData::Address(ip) => ip.to_string(),
                    RecordData::Cname(c) => format!("CNAME {c}"),
                    RecordData::Txt(t) => t.clone(),
                    srv @ RecordData::Srv { .. } => format!("{srv:?}"),
                };
                assert_eq!(e.kind, Kind::HttpRoute);
                format!("{n} {data}")
            })
            .collect();
        found.sort();
        (found, skipped)
    }

    #[test]
    fn an_accepted_route_publishes_its_hostnames_at_the_gateway_addresses() {
        let gateway: Gateway = yaml(GATEWAY);
        let route = route(&format!(
            "spec:\n  parentRefs: [{{name: internal, namespace: gateway, sectionName: https}}]\n  hostnames: [immich.home.example]\nstatus:\n  parents:\n{}",
            accepted(
                "{group: gateway.networking.k8s.io, kind: Gateway, name: internal, namespace: gateway, sectionName: https}"
            )
        ));
        let (found, skipped) = publish(&route, &[gateway], &[]);
        assert_eq!(
            found,
            [
                "immich.home.example. 192.168.10.50",
                "immich.home.example. fd00::50"
            ]
        );
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    #[test]
    fn a_route_not_accepted_by_its_parent_publishes_nothing_and_says_why() {
        let gateway: Gateway = yaml(GATEWAY);
        let route = route(
            "spec:\n  parentRefs: [{name: internal, namespace: gateway}]\n  hostnames: [app.home.example]\nstatus:\n  parents:\n  - parentRef: {name: internal, namespace: gateway}\n    controllerName: x\n    conditions:\n    - {type: Accepted, status: \"False\", reason: NotAllowedByListeners}\n",
        );
        let (found, skipped) = publish(&route, std::slice::from_ref(&gateway), &[]);
        assert!(found.is_empty());
        assert_eq!(skipped[0].reason, Skip::NotAccepted);
        assert!(
            skipped[0].detail.contains("NotAllowedByListeners"),
            "{}",
            skipped[0].detail
        );
        assert!(skipped[0].detail.contains("app.home.example"));

        // No status at all (the controller has not seen it yet): not accepted either.
        let route = route_without_status(
            "[{name: internal, namespace: gateway}]",
            "[app.home.example]",
        );
        let (found, skipped) = publish(&route, &[gateway], &[]);
        assert!(found.is_empty());
        assert_eq!(skipped[0].reason, Skip::NotAccepted);
    }

    fn route_without_status(parents: &str, hostnames: &str) -> HttpRoute {
        route(&format!(
            "spec:\n  parentRefs: {parents}\n  hostnames: {hostnames}\n"
        ))
    }

    #[test]
    fn acceptance_is_per_parent_and_section() {
        // Accepted on the https listener only; the parentRef to the previews listener was
        // not accepted and must not publish under *.apps.
        let gateway: Gateway = yaml(GATEWAY);
        let route = route(&format!(
            "spec:\n  parentRefs:\n  - {{name: internal, namespace: gateway, sectionName: https}}\n  - {{name: internal, namespace: gateway, sectionName: previews}}\n  hostnames: [a.apps.home.example]\nstatus:\n  parents:\n{}",
            accepted("{name: internal, namespace: gateway, sectionName: https}")
        ));
        let (found, skipped) = publish(&route, &[gateway], &[]);
        assert_eq!(
            found,
            [
                "a.apps.home.example. 192.168.10.50",
                "a.apps.home.example. fd00::50"
            ]
        );
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].detail.contains("sectionName previews"));
    }

    #[test]
    fn the_parent_namespace_defaults_to_the_routes() {
        let mut gateway: Gateway = yaml(GATEWAY);
        gateway.metadata.namespace = Some("apps".into());
        let route = route(&format!(
            "spec:\n  parentRefs: [{{name: internal}}]\n  hostnames: [app.home.example]\nstatus:\n  parents:\n{}",
            accepted("{name: internal}")
        ));
        let (found, _) = publish(&route, std::slice::from_ref(&gateway), &[]);
        assert_eq!(found.len(), 2);
        // The same route against a Gateway in another namespace finds no parent.
        gateway.metadata.namespace = Some("gateway".into());
        let (found, skipped) = publish(&route, &[gateway], &[]);
        assert!(found.is_empty());
        assert_eq!(skipped[0].reason, Skip::GatewayNotFound);
    }

    #[test]
    fn a_cross_namespace_parent_is_found_in_its_namespace() {
        let gateway: Gateway = yaml(GATEWAY);
        let route = route(&format!(
            "spec:\n  parentRefs: [{{name: internal, namespace: gateway, port: 8443}}]\n  hostnames: [x.apps.home.example, y.home.example]\nstatus:\n  parents:\n{}",
            accepted("{name: internal, namespace: gateway, port: 8443}")
        ));
        // port 8443 selects the previews listener: only the *.apps name intersects.
        let (found, skipped) = publish(&route, &[gateway], &[]);
        assert_eq!(
            found,
            [
                "x.apps.home.example. 192.168.10.50",
                "x.apps.home.example. fd00::50"
            ]
        );
        assert!(skipped.is_empty());
    }

    #[test]
    fn hostnames_intersect_with_the_listeners() {
        let cases = [
            // (route, listener, expected)
            (
                "app.home.example",
                "*.home.example",
                Some("app.home.example"),
            ),
            (
                "a.b.home.example",
                "*.home.example",
                Some("a.b.home.example"),
            ),
            ("home.example", "*.home.example", None),
            (
                "*.home.example",
                "app.home.example",
                Some("app.home.example"),
            ),
            (
                "*.apps.home.example",
                "*.home.example",
                Some("*.apps.home.example"),
            ),
            (
                "*.home.example",
                "*.apps.home.example",
                Some("*.apps.home.example"),
            ),
            ("*.home.example", "*.home.example", Some("*.home.example")),
            ("app.home.example", "other.home.example", None),
            (
                "APP.home.example",
                "app.home.example",
                Some("APP.home.example"),
            ),
            ("*.other.example", "*.home.example", None),
        ];
        for (route, listener, expected) in cases {
            let got = intersect(&name(route), &name(listener));
            assert_eq!(
                got.map(|n| n.to_string()),
                expected.map(|e| format!("{e}.")),
                "{route} with {listener}"
            );
        }
    }

    #[test]
    fn a_route_without_hostnames_takes_the_listeners_and_a_wildcard_survives() {
        let gateway: Gateway = yaml(GATEWAY);
        let route = route(&format!(
            "spec:\n  parentRefs: [{{name: internal, namespace: gateway, sectionName: previews}}]\nstatus:\n  parents:\n{}",
            accepted("{name: internal, namespace: gateway, sectionName: previews}")
        ));
        let (found, _) = publish(&route, &[gateway], &[]);
        assert_eq!(
            found,
            [
                "*.apps.home.example. 192.168.10.50",
                "*.apps.home.example. fd00::50"
            ]
        );
    }

    #[test]
    fn no_hostname_anywhere_publishes_nothing() {
        let gateway: Gateway = yaml(GATEWAY);
        let route = route(&format!(
            "spec:\n  parentRefs: [{{name: internal, namespace: gateway, sectionName: plain}}]\nstatus:\n  parents:\n{}",
            accepted("{name: internal, namespace: gateway, sectionName: plain}")
        ));
        let (found, skipped) = publish(&route, &[gateway], &[]);
        assert!(found.is_empty());
        assert_eq!(skipped[0].reason, Skip::NoHostname);
    }

    #[test]
    fn the_gateway_class_filter_applies_to_the_parent() {
        let gateway: Gateway = yaml(GATEWAY);
        let route = route(&format!(
            "spec:\n  parentRefs: [{{name: internal, namespace: gateway}}]\n  hostnames: [app.home.example]\nstatus:\n  parents:\n{}",
            accepted("{name: internal, namespace: gateway}")
        ));
        let (found, _) = publish(&route, std::slice::from_ref(&gateway), &["cilium"]);
        assert_eq!(found.len(), 2);
        let (found, skipped) = publish(&route, &[gateway], &["envoy"]);
        assert!(found.is_empty());
        assert_eq!(skipped[0].reason, Skip::ClassFiltered);
    }

    #[test]
    fn a_hostname_address_becomes_a_cname_and_no_address_is_reported() {
        let mut gateway: Gateway = yaml(GATEWAY);
        gateway.status = Some(GatewayStatus {
            addresses: vec![GatewayAddress {
                type_: Some("Hostname".into()),
                value: Some("lb.example.net".into()),
            }],
        });
        let route = route(&format!(
            "spec:\n  parentRefs: [{{name: internal, namespace: gateway}}]\n  hostnames: [app.home.example]\nstatus:\n  parents:\n{}",
            accepted("{name: internal, namespace: gateway}")
        ));
        let (found, _) = publish(&route, std::slice::from_ref(&gateway), &[]);
        assert_eq!(found, ["app.home.example. CNAME lb.example.net."]);
        gateway.status = None;
        let (found, skipped) = publish(&route, &[gateway], &[]);
        assert!(found.is_empty());
        assert_eq!(skipped[0].reason, Skip::NoAddress);
    }

    #[test]
    fn service_parents_are_not_ingress_and_publish_nothing() {
        let gateway: Gateway = yaml(GATEWAY);
        let route = route(
            "spec:\n  parentRefs: [{group: \"\", kind: Service, name: backend}]\n  hostnames: [app.home.example]\nstatus:\n  parents:\n  - parentRef: {group: \"\", kind: Service, name: backend}\n    conditions: [{type: Accepted, status: \"True\"}]\n",
        );
        let (found, skipped) = publish(&route, &[gateway], &[]);
        assert!(found.is_empty());
        assert!(skipped.is_empty());
    }

    #[test]
    fn every_route_kind_and_version_reads_into_the_same_shape() {
        let tls: TlsRoute = yaml(
            "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata: {name: t, namespace: apps}\nspec:\n  parentRefs: [{name: internal, namespace: gateway}]\n  hostnames: [t.home.example]\n  rules: [{backendRefs: [{name: t, port: 443}]}]\n  someFutureField: {x: 1}\n",
        );
        assert_eq!(tls.spec.route.hostnames, ["t.home.example"]);
        let grpc: GrpcRoute = yaml(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g, namespace: apps}\nspec:\n  parentRefs: [{name: internal, namespace: gateway, sectionName: https}]\n",
        );
        assert_eq!(
            grpc.spec.route.parent_refs[0].section_name.as_deref(),
            Some("https")
        );
    }

    /// What a controller writes back: every parent Accepted.
    fn accepted_by_all(spec: &RouteSpec) -> Option<RouteStatus> {
        let parents = spec
            .parent_refs
            .iter()
            .map(|p| RouteParentStatus {
                parent_ref: p.clone(),
                conditions: vec![Condition {
                    type_: "Accepted".into(),
                    status: "True".into(),
                    reason: Some("Accepted".into()),
                }],
            })
            .collect();
        Some(RouteStatus { parents })
    }

    /// The objects as a controller leaves them: every route accepted, every Gateway an
    /// address.
    fn accepted_everywhere(objects: &ObjectSet) -> ObjectSet {
        let mut accepted = ObjectSet::default();
        for namespace in objects.all::<k8s_openapi::api::core::v1::Namespace>() {
            accepted.add(namespace.clone());
        }
        for gateway in objects.all::<Gateway>() {
            let mut gateway = gateway.clone();
            gateway.status = Some(GatewayStatus {
                addresses: vec![GatewayAddress {
                    type_: Some("IPAddress".into()),
                    value: Some("192.0.2.10".into()),
                }],
            });
            accepted.add(gateway);
        }
        for route in objects.all::<HttpRoute>() {
            let mut route = route.clone();
            route.status = accepted_by_all(&route.spec.route);
            accepted.add(route);
        }
        for route in objects.all::<GrpcRoute>() {
            let mut route = route.clone();
            route.status = accepted_by_all(&route.spec.route);
            accepted.add(route);
        }
        for route in objects.all::<TlsRoute>() {
            let mut route = route.clone();
            route.status = accepted_by_all(&route.spec.route);
            accepted.add(route);
        }
        accepted
    }

    /// Manifests in the shapes users apply them (tests/data/gateway-api): every object
    /// decodes, nothing publishes before a controller accepts it, and then what publishes
    /// follows the attachment rules: a parent in another namespace, the listener's
    /// hostname for a route without its own, every route kind and TLSRoute version.
    #[test]
    fn applied_manifests_decode_and_attach_once_accepted() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gateway-api");
        let (objects, errors) = crate::sources::manifests::load(&[dir]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(objects.all::<Gateway>().count(), 4);
        assert_eq!(objects.all::<HttpRoute>().count(), 3);
        assert_eq!(objects.all::<GrpcRoute>().count(), 1);
        // v1alpha2 and v1alpha3 define the same TLSRoute: the later file wins.
        let tls: Vec<&TlsRoute> = objects.all::<TlsRoute>().collect();
        assert_eq!(tls.len(), 1);
        assert_eq!(tls[0].spec.route.hostnames, ["vault.home.example"]);

        // As applied, no controller has accepted anything yet: nothing publishes.
        let found = crate::sources::kind::entries(&objects, &Filters::default());
        assert!(found.entries.is_empty(), "{:?}", found.entries);
        assert_eq!(found.skipped.len(), 5, "{:?}", found.skipped);
        assert!(
            found.skipped.iter().all(|s| s.reason == Skip::NotAccepted),
            "{:?}",
            found.skipped
        );

        let found =
            crate::sources::kind::entries(&accepted_everywhere(&objects), &Filters::default());
        assert!(found.skipped.is_empty(), "{:?}", found.skipped);
        let mut published: Vec<String> = found
            .entries
            .iter()
            .map(|e| {
                let (EntryName::Absolute(n) | EntryName::Hostname(n)) = &e.name;
                format!("{n} {}", e.object)
            })
            .collect();
        published.sort();
        assert_eq!(
            published,
            [
                "*.dashboard.home.example. HTTPRoute gateways/dashboard",
                "dashboard.home.example. HTTPRoute gateways/dashboard",
                "otel.grpc.home.example. GRPCRoute telemetry/collector",
                "photos.home.example. HTTPRoute photos/gallery",
                "photos.home.example. HTTPRoute photos/uploads",
                "vault.home.example. TLSRoute vault/vault",
            ]
        );
    }

    /// The names `route` (read as `kind`) publishes among `objects`, and the reasons
    /// of what it does not.
    fn attach(kind: Kind, route: &HttpRoute, objects: &ObjectSet) -> (Vec<String>, Vec<Skip>) {
        let index = index_gateways(objects);
        let namespaces = NamespaceLabels::of(objects);
        let parents = Parents {
            gateways: &index,
            namespaces: &namespaces,
            gateway_classes: &[],
        };
        let view = RouteView {
            kind,
            ..view(route)
        };
        let (entries, skipped) = route_entries(view, &parents);
        let mut names: Vec<String> = entries
            .iter()
            .map(|e| {
                let (EntryName::Absolute(n) | EntryName::Hostname(n)) = &e.name;
                n.to_string()
            })
            .collect();
        names.sort();
        names.dedup();
        (names, skipped.iter().map(|s| s.reason).collect())
    }

    /// A Gateway `edge` in namespace `gateway` at 192.168.10.50 with these listeners.
    fn gateway_with(listeners: &str) -> Gateway {
        yaml(&format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: edge, namespace: gateway}}\nspec:\n  listeners:\n{listeners}status:\n  addresses: [{{value: 192.168.10.50}}]\n"
        ))
    }

    /// A route `app` in `namespace`, attached to Gateway gateway/edge (every listener,
    /// or `section`) and accepted there, for `hostnames`.
    fn route_in(namespace: &str, section: Option<&str>, hostnames: &str) -> HttpRoute {
        let section = section.map_or(String::new(), |s| format!(", sectionName: {s}"));
        let parent = format!("{{name: edge, namespace: gateway{section}}}");
        yaml(&format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: app, namespace: {namespace}}}\nspec:\n  parentRefs: [{parent}]\n  hostnames: {hostnames}\nstatus:\n  parents:\n{}",
            accepted(&parent)
        ))
    }

    fn objects_of(gateway: Gateway, namespaces: &[&str]) -> ObjectSet {
        let mut objects = ObjectSet::default();
        objects.add(gateway);
        for namespace in namespaces {
            objects.add(yaml::<k8s_openapi::api::core::v1::Namespace>(namespace));
        }
        objects
    }

    /// The Gateway API's AllowedRoutes: `from` defaults to `Same`, the
    /// Gateway's own namespace.
    #[test]
    fn from_same_is_the_default_and_admits_only_the_gateways_namespace() {
        let objects = objects_of(
            gateway_with(
                "  - {name: web, port: 443, protocol: HTTPS, hostname: \"*.home.example\"}\n",
            ),
            &[],
        );
        let elsewhere = route_in("apps", None, "[app.home.example]");
        assert_eq!(
            attach(Kind::HttpRoute, &elsewhere, &objects),
            (vec![], vec![Skip::NamespaceNotAllowed])
        );
        let same = route_in("gateway", None, "[app.home.example]");
        assert_eq!(
            attach(Kind::HttpRoute, &same, &objects).0,
            ["app.home.example."]
        );
        let all = objects_of(
            gateway_with(
                "  - {name: web, port: 443, protocol: HTTPS, allowedRoutes: {namespaces: {from: All}}}\n",
            ),
            &[],
        );
        assert_eq!(
            attach(Kind::HttpRoute, &elsewhere, &all).0,
            ["app.home.example."]
        );
    }

    #[test]
    fn from_selector_reads_the_labels_of_the_routes_namespace() {
        let listener = "  - name: web\n    port: 443\n    protocol: HTTPS\n    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector:\n          matchLabels: {gateway-access: shared}\n          matchExpressions: [{key: env, operator: NotIn, values: [test]}]\n";
        let namespaces = [
            "metadata: {name: apps, labels: {gateway-access: shared}}",
            "metadata: {name: staging, labels: {gateway-access: shared, env: test}}",
            "metadata: {name: private}",
        ];
        let objects = objects_of(gateway_with(listener), &namespaces);
        let names = |namespace| {
            attach(
                Kind::HttpRoute,
                &route_in(namespace, None, "[app.home.example]"),
                &objects,
            )
        };
        assert_eq!(names("apps").0, ["app.home.example."]);
        for refused in ["staging", "private", "unknown"] {
            assert_eq!(
                names(refused),
                (vec![], vec![Skip::NamespaceNotAllowed]),
                "{refused}"
            );
        }
        // kubernetes.io/metadata.name is on every namespace, with or without its object.
        let by_name = "  - name: web\n    port: 443\n    protocol: HTTPS\n    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector: {matchLabels: {kubernetes.io/metadata.name: media}}\n";
        let objects = objects_of(gateway_with(by_name), &[]);
        let route = route_in("media", None, "[jellyfin.home.example]");
        assert_eq!(
            attach(Kind::HttpRoute, &route, &objects).0,
            ["jellyfin.home.example."]
        );
        // A selector the API would refuse admits nothing.
        let broken = "  - name: web\n    port: 443\n    protocol: HTTPS\n    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector: {matchExpressions: [{key: a, operator: Near}]}\n";
        let objects = objects_of(gateway_with(broken), &[]);
        assert_eq!(
            attach(Kind::HttpRoute, &route, &objects).1,
            [Skip::NamespaceNotAllowed]
        );
    }

    /// The names come only from the listeners that admit the route, though the status
    /// says Accepted for the Gateway as a whole (another listener accepted it).
    #[test]
    fn names_come_only_from_the_listeners_that_admit_the_route() {
        let listeners = "  - {name: own, port: 443, protocol: HTTPS, hostname: \"*.internal.home.example\"}\n  - {name: shared, port: 443, protocol: HTTPS, hostname: \"*.home.example\", allowedRoutes: {namespaces: {from: All}}}\n";
        let objects = objects_of(gateway_with(listeners), &[]);
        let route = route_in("apps", None, "[a.internal.home.example, b.home.example]");
        // a.internal matches both listeners' hostnames, but "own" does not admit apps;
        // it still comes through "shared" (*.home.example covers it).
        let (names, _) = attach(Kind::HttpRoute, &route, &objects);
        assert_eq!(names, ["a.internal.home.example.", "b.home.example."]);
        let through_own = route_in("apps", Some("own"), "[a.internal.home.example]");
        assert_eq!(
            attach(Kind::HttpRoute, &through_own, &objects),
            (vec![], vec![Skip::NamespaceNotAllowed])
        );
    }

    #[test]
    fn the_listener_protocol_or_kinds_decide_which_routes_attach() {
        let listeners = "  - {name: https, port: 443, protocol: HTTPS, allowedRoutes: {namespaces: {from: All}}}\n  - {name: tls, port: 8443, protocol: TLS, hostname: vault.home.example, allowedRoutes: {namespaces: {from: All}}}\n  - {name: tcp, port: 5432, protocol: TCP, allowedRoutes: {namespaces: {from: All}}}\n  - {name: http-only, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}, kinds: [{kind: HTTPRoute}]}}\n  - {name: other-group, port: 81, protocol: HTTP, allowedRoutes: {namespaces: {from: All}, kinds: [{group: example.com, kind: HTTPRoute}]}}\n  - {name: tls-on-http, port: 82, protocol: HTTP, allowedRoutes: {namespaces: {from: All}, kinds: [{kind: TLSRoute}]}}\n";
        let objects = objects_of(gateway_with(listeners), &[]);
        let through = |kind, section| {
            attach(
                kind,
                &route_in("apps", Some(section), "[vault.home.example]"),
                &objects,
            )
        };
        let published = (vec!["vault.home.example.".to_string()], vec![]);
        let refused = (vec![], vec![Skip::KindNotAllowed]);
        assert_eq!(through(Kind::HttpRoute, "https"), published);
        assert_eq!(through(Kind::GrpcRoute, "https"), published);
        assert_eq!(through(Kind::TlsRoute, "https"), refused);
        assert_eq!(through(Kind::TlsRoute, "tls"), published);
        assert_eq!(through(Kind::HttpRoute, "tls"), refused);
        for kind in [Kind::HttpRoute, Kind::TlsRoute] {
            assert_eq!(through(kind, "tcp"), refused, "{kind}");
        }
        assert_eq!(through(Kind::HttpRoute, "http-only"), published);
        assert_eq!(through(Kind::GrpcRoute, "http-only"), refused);
        assert_eq!(through(Kind::HttpRoute, "other-group"), refused);
        // Kinds narrow what the protocol takes, never widen it.
        assert_eq!(through(Kind::TlsRoute, "tls-on-http"), refused);
    }

    /// "IPs are not allowed" (the Gateway API's Hostname type), in routes and listeners.
    #[test]
    fn hostnames_that_are_ip_addresses_are_invalid() {
        let listeners = "  - {name: ip, port: 443, protocol: HTTPS, hostname: 192.168.10.50, allowedRoutes: {namespaces: {from: All}}}\n  - {name: web, port: 443, protocol: HTTPS, hostname: \"*.home.example\", allowedRoutes: {namespaces: {from: All}}}\n";
        let objects = objects_of(gateway_with(listeners), &[]);
        let route = route_in("apps", None, "[app.home.example, \"192.168.10.7\"]");
        let (names, skipped) = attach(Kind::HttpRoute, &route, &objects);
        assert!(names.is_empty());
        assert_eq!(skipped, [Skip::InvalidField]);
        // Through the listener with an IP for a hostname only: nothing in common.
        let route = route_in("apps", Some("ip"), "[]");
        assert_eq!(
            attach(Kind::HttpRoute, &route, &objects),
            (vec![], vec![Skip::NoHostname])
        );
        let route = route_in("apps", None, "[\"fd00::7\"]");
        assert_eq!(
            attach(Kind::HttpRoute, &route, &objects).1,
            [Skip::InvalidField]
        );
    }
}
