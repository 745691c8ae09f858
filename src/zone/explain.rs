//! "Why does this name resolve there?": everything the zone knows about one name.

use hickory_proto::rr::{LowerName, RecordType};
use serde::Serialize;

use super::{Lookup, Zone};

/// What the zone holds for a name, and why. Serialised as the `/explain` JSON.
#[derive(Debug, Serialize, PartialEq)]
pub struct Explanation {
    pub name: String,
    /// The configured domain that owns the name, if any.
    pub domain: Option<String>,
    /// What an A query gets: `NOERROR`, `NXDOMAIN` or `REFUSED`.
    pub status: &'static str,
    /// The kind whose objects publish the name (precedence winner).
    pub winner: Option<String>,
    pub records: Vec<ExplainedRecord>,
    /// Objects of other kinds that claim the name but lost on precedence.
    pub shadowed: Vec<ExplainedObject>,
    /// Objects or records left out of the zone whose reason mentions this name.
    pub skipped: Vec<ExplainedSkip>,
    /// Set when the name is answered by a wildcard.
    pub wildcard: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ExplainedRecord {
    pub r#type: String,
    pub ttl: u32,
    pub data: String,
    pub objects: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ExplainedObject {
    pub kind: String,
    pub object: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ExplainedSkip {
    pub object: String,
    pub reason: &'static str,
    pub detail: String,
}

impl Zone {
    /// Explains `name`: its records with the objects behind them, the kinds it lost to,
    /// and what was skipped on its account.
    pub fn explain(&self, name: &LowerName) -> Explanation {
        let text = name.to_string();
        let bare = text.trim_end_matches('.').to_string();
        let mut explanation = Explanation {
            name: text.clone(),
            domain: None,
            status: "REFUSED",
            winner: None,
            records: Vec::new(),
            shadowed: Vec::new(),
            skipped: Vec::new(),
            wildcard: None,
        };
        let Some(authority) = self.authority_for(name) else {
            return explanation;
        };
        explanation.domain = Some(authority.origin().to_string());
        explanation.status = match self.lookup(name, RecordType::A) {
            Lookup::Answer(answer) if answer.rcode == hickory_proto::op::ResponseCode::NXDomain => {
                "NXDOMAIN"
            }
            _ => "NOERROR",
        };
        let (node, by_wildcard) = match authority.node(name) {
            Some(node) => (Some(node), false),
            None => (authority.covering_wildcard(name), true),
        };
        if let Some(node) = node {
            if by_wildcard {
                explanation.wildcard = node
                    .rrsets
                    .first()
                    .and_then(|s| s.records.first())
                    .map(|r| r.name.to_string());
            }
            for set in node.rrsets() {
                for (record, origins) in set.records.iter().zip(&set.origins) {
                    if explanation.winner.is_none()
                        && let Some(first) = origins.first()
                    {
                        explanation.winner = Some(first.kind.to_string());
                    }
                    explanation.records.push(ExplainedRecord {
                        r#type: record.record_type().to_string(),
                        ttl: record.ttl,
                        data: record.data.to_string(),
                        objects: origins.iter().map(ToString::to_string).collect(),
                    });
                }
            }
        }
        if let Some(shadowed) = self.claims.shadowed.get(name) {
            explanation.shadowed = shadowed
                .iter()
                .map(|(kind, object)| ExplainedObject {
                    kind: kind.to_string(),
                    object: object.to_string(),
                })
                .collect();
        }
        let bare_lower = bare.to_ascii_lowercase();
        explanation.skipped = self
            .claims
            .dropped
            .iter()
            .filter(|s| s.detail.to_ascii_lowercase().contains(&bare_lower))
            .map(|s| ExplainedSkip {
                object: s.object.to_string(),
                reason: s.reason,
                detail: s.detail.clone(),
            })
            .collect();
        explanation
    }
}
