//! "Why does this name resolve there?": everything the zone knows about one name.

use std::fmt::Write;

use hickory_proto::rr::{LowerName, Name, RecordType};
use serde::Serialize;

use super::{Lookup, Zone};

/// What the zone holds for a name, and why. Serialised as the `/explain` JSON.
#[derive(Debug, Serialize, PartialEq)]
pub struct Explanation {
    pub name: String,
    /// The configured domain that owns the name, if any.
    pub domain: Option<String>,
    /// What an A query (PTR in a reverse domain) gets: `NOERROR`, `NXDOMAIN` or
    /// `REFUSED`.
    pub status: &'static str,
    /// The kind whose objects publish the name (precedence winner).
    pub winner: Option<String>,
    /// The `--cluster` whose objects publish the name, with several clusters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub records: Vec<ExplainedRecord>,
    /// Objects of other kinds that claim the name but lost on precedence.
    pub shadowed: Vec<ExplainedObject>,
    /// Objects or records left out of the zone whose reason mentions this name.
    pub skipped: Vec<ExplainedSkip>,
    /// Set when the name is answered by a wildcard.
    pub wildcard: Option<String>,
    /// The upstream servers a query for this name is asked of instead of answering
    /// NXDOMAIN (`--fallthrough`; the server fills it in, the zone does not know them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallthrough: Vec<String>,
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
    /// The `--cluster` the object came from, with several clusters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ExplainedSkip {
    pub object: String,
    pub reason: &'static str,
    pub detail: String,
}

/// Reads the name a person asks about (`/explain?name=`, `k8s-gateway explain`): any
/// case, with or without the trailing dot.
pub fn explain_name(text: &str) -> Result<LowerName, String> {
    let mut name =
        Name::from_ascii(text.trim()).map_err(|e| format!("{text:?} is not a DNS name: {e}"))?;
    name.set_fqdn(true);
    Ok(LowerName::from(name))
}

impl Explanation {
    /// Whether a query for the name gets records (what `k8s-gateway explain` exits 0 on).
    pub fn is_served(&self) -> bool {
        self.status == "NOERROR" && !self.records.is_empty()
    }

    /// The explanation as aligned text for a terminal: a summary, then one table per
    /// non-empty part.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "name:    {}", self.name);
        let _ = writeln!(
            out,
            "domain:  {}",
            self.domain.as_deref().unwrap_or("(none of ours)")
        );
        let _ = writeln!(out, "status:  {}", self.status);
        if let Some(winner) = &self.winner {
            let _ = writeln!(out, "winner:  {winner}");
        }
        if let Some(cluster) = &self.cluster {
            let _ = writeln!(out, "cluster: {cluster}");
        }
        if let Some(wildcard) = &self.wildcard {
            let _ = writeln!(out, "wildcard: {wildcard}");
        }
        if !self.records.is_empty() {
            let rows: Vec<[String; 4]> = self
                .records
                .iter()
                .map(|r| {
                    [
                        r.r#type.clone(),
                        r.ttl.to_string(),
                        r.data.clone(),
                        r.objects.join(", "),
                    ]
                })
                .collect();
            table(&mut out, "records", ["TYPE", "TTL", "DATA", "FROM"], &rows);
        }
        if !self.shadowed.is_empty() {
            let rows: Vec<[String; 2]> = self
                .shadowed
                .iter()
                .map(|o| [o.kind.clone(), o.object.clone()])
                .collect();
            table(&mut out, "lost on precedence", ["KIND", "OBJECT"], &rows);
        }
        if !self.skipped.is_empty() {
            let rows: Vec<[String; 3]> = self
                .skipped
                .iter()
                .map(|s| [s.object.clone(), s.reason.to_string(), s.detail.clone()])
                .collect();
            table(&mut out, "skipped", ["OBJECT", "REASON", "DETAIL"], &rows);
        }
        out
    }
}

/// Writes a titled table with columns padded to their widest cell (the last column is
/// not padded, so no line ends in spaces).
fn table<const N: usize>(out: &mut String, title: &str, head: [&str; N], rows: &[[String; N]]) {
    let mut widths = head.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let _ = writeln!(out, "\n{title}:");
    let mut line = |cells: Vec<&str>| {
        let mut text = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            text.push(' ');
            if i + 1 < N {
                let _ = write!(text, "{cell:<width$} ", width = widths[i]);
            } else {
                text.push_str(cell);
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(head.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
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
            cluster: None,
            records: Vec::new(),
            shadowed: Vec::new(),
            skipped: Vec::new(),
            wildcard: None,
            fallthrough: Vec::new(),
        };
        let Some(authority) = self.authority_for(name) else {
            return explanation;
        };
        explanation.domain = Some(authority.origin().to_string());
        let is_reverse = [".in-addr.arpa.", ".ip6.arpa."]
            .iter()
            .any(|suffix| authority.origin().to_string().ends_with(suffix));
        let rtype = if is_reverse {
            RecordType::PTR
        } else {
            RecordType::A
        };
        explanation.status = match self.lookup(name, rtype) {
            Lookup::Answer(answer) if answer.rcode == hickory_proto::op::ResponseCode::NXDomain => {
                "NXDOMAIN"
            }
            _ => "NOERROR",
        };
        let (node, by_wildcard) = match authority.node(name) {
            Some(node) => (Some(node), false),
            None => (authority.wildcard_for(name), true),
        };
        if let Some(node) = node {
            let records = node.records();
            if by_wildcard {
                explanation.wildcard = records.first().map(|(r, _)| r.name.to_string());
            }
            for (record, origins) in records {
                if explanation.winner.is_none()
                    && let Some(first) = origins.first()
                {
                    explanation.winner = Some(first.kind.to_string());
                    explanation.cluster = first.cluster.as_deref().map(str::to_owned);
                }
                explanation.records.push(ExplainedRecord {
                    r#type: record.record_type().to_string(),
                    ttl: record.ttl,
                    data: record.data.to_string(),
                    objects: origins.iter().map(ToString::to_string).collect(),
                });
            }
        }
        if let Some(shadowed) = self.claims.shadowed.get(name) {
            explanation.shadowed = shadowed
                .iter()
                .map(|(kind, object)| ExplainedObject {
                    kind: kind.to_string(),
                    object: object.to_string(),
                    cluster: object.cluster.as_deref().map(str::to_owned),
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
                reason: s.reason.as_str(),
                detail: s.detail.clone(),
            })
            .collect();
        explanation
    }
}
