//! Which kinds (and which versions) the cluster serves, asked again every `--resync`.

use std::collections::BTreeMap;

use kube::Client;
use kube::discovery::{ApiGroup, ApiResource};

use crate::sources::kind::Kind;

/// What discovery found for one kind.
pub enum Served {
    /// Served, at this resource (version, plural).
    At(ApiResource),
    /// The cluster does not serve it (its CRD is not installed).
    No,
}

/// Why discovery could not answer: the API was not reachable, or failed.
#[derive(Debug, thiserror::Error)]
#[error("discovery of the API group {group:?} failed: {source}")]
pub struct DiscoveryFailed {
    pub group: String,
    #[source]
    pub source: kube::Error,
}

/// Asks the API which of `kinds` it serves, one request per API group.
pub async fn discover(
    client: &Client,
    kinds: &[&'static dyn Kind],
) -> Result<Vec<Served>, DiscoveryFailed> {
    let mut groups: BTreeMap<String, Option<ApiGroup>> = BTreeMap::new();
    for kind in kinds {
        let group = kind.group().into_owned();
        if groups.contains_key(&group) {
            continue;
        }
        let found = match kube::discovery::group(client, &group).await {
            Ok(found) => Some(found),
            Err(kube::Error::Discovery(_)) => None,
            Err(kube::Error::Api(status)) if status.code == 404 => None,
            Err(source) => return Err(DiscoveryFailed { group, source }),
        };
        groups.insert(group, found);
    }
    Ok(kinds
        .iter()
        .map(|kind| {
            groups
                .get(&*kind.group())
                .and_then(Option::as_ref)
                .and_then(|g| served_resource(g, &kind.api_kind()))
                .map_or(Served::No, Served::At)
        })
        .collect())
}

/// The resource for `kind` at the first version the group serves it in, preferred
/// version first (TLSRoute may be served only at v1alpha2 while the group prefers v1).
fn served_resource(group: &ApiGroup, kind: &str) -> Option<ApiResource> {
    let preferred = group.preferred_version().map(str::to_owned);
    let versions = preferred
        .iter()
        .map(String::as_str)
        .chain(group.versions())
        .collect::<Vec<_>>();
    versions.into_iter().find_map(|version| {
        group
            .versioned_resources(version)
            .into_iter()
            .find(|(resource, _)| resource.kind == kind)
            .map(|(resource, _)| resource)
    })
}
