//! The status page: one server-rendered HTML page of what the server publishes and why.
//!
//! No build step and no external assets: inline CSS, and a few lines of plain JS that
//! filter the names table and fetch the page again every 15 s to swap in fresh data.
//! Every piece of text that comes from an object (names, TXT data, reasons' details) is
//! HTML-escaped, so a hostname or annotation holding `<script>` shows as text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Record;

use crate::zone::{Authority, Zone, render};

/// Above this many records the names table stops (the page stays usable on a phone);
/// `/zone` always has them all.
const MAX_ROWS: usize = 5000;

/// One kind the cluster source watches, as its metrics report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    /// The `--cluster` it is watched in, with several clusters.
    pub cluster: Option<String>,
    pub kind: String,
    /// `pending`, `synced`, `failing`, `not_served` or `forbidden`.
    pub state: String,
    pub objects: Option<i64>,
}

impl SourceRow {
    /// Reads the kinds' states from the `k8s_gateway_source_state` and
    /// `k8s_gateway_source_objects` samples of the metrics text: the cluster source
    /// already keeps them there, so the page needs no handle into the watch loop. Empty
    /// when the objects come from manifest files. With several clusters, in the order
    /// of `clusters` (the `--cluster`s, whose order is their precedence), then by kind.
    pub fn from_metrics(text: &str, clusters: &[String]) -> Vec<SourceRow> {
        let mut rows: BTreeMap<(Option<String>, String), SourceRow> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Some((family, labels)) = series.split_once('{') else {
                continue;
            };
            let labels = parse_labels(labels.trim_end_matches('}'));
            let Some(kind) = labels.get("kind") else {
                continue;
            };
            let cluster = labels.get("cluster").cloned();
            let row = || SourceRow {
                cluster: cluster.clone(),
                kind: kind.clone(),
                state: "pending".into(),
                objects: None,
            };
            let key = (cluster.clone(), kind.clone());
            match family {
                "k8s_gateway_source_state" if value.trim() == "1" => {
                    if let Some(state) = labels.get("state") {
                        rows.entry(key).or_insert_with(row).state = state.clone();
                    }
                }
                "k8s_gateway_source_objects" => {
                    rows.entry(key).or_insert_with(row).objects = value.trim().parse().ok();
                }
                _ => {}
            }
        }
        let mut rows: Vec<SourceRow> = rows.into_values().collect();
        let position = |row: &SourceRow| {
            (row.cluster.as_ref()).and_then(|name| clusters.iter().position(|c| c == name))
        };
        // Stable: within a cluster the kinds stay in name order.
        rows.sort_by_key(|row| position(row).unwrap_or(usize::MAX));
        rows
    }
}

/// `a="x",b="y"` as a map (label values are escaped by the encoder; `\"` and `\\` are
/// read back).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        value.push(if next == 'n' { '\n' } else { next });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    labels
}

/// The whole page. `zone` is `None` until the first zone is built.
pub fn page(zone: Option<&Zone>, sources: &[SourceRow], now: SystemTime) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(HEAD);
    out.push_str("<div id=\"data\">\n");
    let _ = writeln!(
        out,
        "<p class=\"bar\">{} <span>last updated <time id=\"updated\">{}</time></span></p>",
        match zone {
            Some(zone) => format!(
                "<b class=\"ok\">ready</b> <span>serial {}</span> <span>{} names</span>",
                zone.serial(),
                zone.name_count()
            ),
            None => "<b class=\"bad\">not ready</b> <span>the first zone is not built yet</span>"
                .to_string(),
        },
        utc(now)
    );
    sources_section(&mut out, zone, sources);
    if let Some(zone) = zone {
        names_section(&mut out, zone);
        skipped_section(&mut out, zone);
        shadowed_section(&mut out, zone);
    }
    out.push_str("</div>\n");
    out.push_str(TAIL);
    out
}

fn sources_section(out: &mut String, zone: Option<&Zone>, sources: &[SourceRow]) {
    out.push_str("<h2>Sources</h2>\n");
    if sources.is_empty() {
        // Manifest files: there are no watches, only what the last load published.
        out.push_str(
            "<p>Objects are read from manifest files. Objects behind the zone, per kind:</p>\n",
        );
        let mut counts: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        if let Some(zone) = zone {
            let origins = zone
                .authorities()
                .iter()
                .flat_map(|a| a.nodes())
                .flat_map(|node| node.origins());
            for origins in origins {
                for object in origins {
                    counts
                        .entry(&object.kind)
                        .or_default()
                        .insert(object.to_string());
                }
            }
            for skipped in &zone.claims().dropped {
                counts
                    .entry(&skipped.object.kind)
                    .or_default()
                    .insert(skipped.object.to_string());
            }
        }
        table_head(out, "sources", &["Kind", "State", "Objects"]);
        for (kind, objects) in counts {
            row(out, &[kind, "loaded", &objects.len().to_string()]);
        }
    } else {
        // With several `--cluster`s, each cluster's kinds, named.
        let clusters = sources.iter().any(|s| s.cluster.is_some());
        let head: &[&str] = if clusters {
            &["Cluster", "Kind", "State", "Objects"]
        } else {
            &["Kind", "State", "Objects"]
        };
        table_head(out, "sources", head);
        for source in sources {
            let objects = source.objects.map_or(String::from("-"), |n| n.to_string());
            let cluster = match (clusters, &source.cluster) {
                (false, _) => String::new(),
                (true, name) => format!("<td>{}</td>", escape(name.as_deref().unwrap_or("-"))),
            };
            let _ = writeln!(
                out,
                "<tr>{cluster}<td>{}</td><td class=\"state-{}\">{}</td><td>{}</td></tr>",
                escape(&source.kind),
                escape(&source.state),
                escape(&source.state.replace('_', " ")),
                objects
            );
        }
    }
    out.push_str("</tbody></table></div>\n");
}

fn names_section(out: &mut String, zone: &Zone) {
    out.push_str("<h2>Names</h2>\n");
    let total: usize = zone
        .authorities()
        .iter()
        .map(|a| 1 + a.nodes().map(|n| n.origins().count()).sum::<usize>())
        .sum();
    if total > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p>Showing the first {MAX_ROWS} of {total} records; <a href=\"zone\">/zone</a> has them all.</p>",
        );
    }
    table_head(out, "names", &["Name", "Type", "Data", "TTL", "From"]);
    for (record, origins) in records(zone).take(MAX_ROWS) {
        let from = render::origins_label(origins);
        row(
            out,
            &[
                &record.name.to_string(),
                &record.record_type().to_string(),
                &record.data.to_string(),
                &record.ttl.to_string(),
                &from,
            ],
        );
    }
    out.push_str("</tbody></table></div>\n");
}

fn skipped_section(out: &mut String, zone: &Zone) {
    let dropped = &zone.claims().dropped;
    let _ = writeln!(out, "<h2>Published nothing ({})</h2>", dropped.len());
    if dropped.is_empty() {
        out.push_str("<p>Every object published what it claimed.</p>\n");
        return;
    }
    table_head(out, "skipped", &["Object", "Reason", "Detail"]);
    let mut sorted: Vec<_> = dropped.iter().collect();
    sorted.sort_by(|a, b| a.object.cmp(&b.object));
    for skipped in sorted {
        row(
            out,
            &[
                &skipped.object.to_string(),
                skipped.reason.as_str(),
                &skipped.detail,
            ],
        );
    }
    out.push_str("</tbody></table></div>\n");
}

fn shadowed_section(out: &mut String, zone: &Zone) {
    let mut lost: Vec<(String, String, String)> = zone
        .claims()
        .shadowed
        .iter()
        .flat_map(|(name, objects)| {
            objects
                .iter()
                .map(move |(kind, object)| (name.to_string(), kind.to_string(), object.to_string()))
        })
        .collect();
    lost.sort();
    let _ = writeln!(out, "<h2>Lost on precedence ({})</h2>", lost.len());
    if lost.is_empty() {
        out.push_str("<p>No two kinds claim the same name.</p>\n");
        return;
    }
    table_head(out, "shadowed", &["Name", "Kind", "Object"]);
    for (name, kind, object) in &lost {
        row(out, &[name, kind, object]);
    }
    out.push_str("</tbody></table></div>\n");
}

/// Every record of the zone with its origins: each domain's SOA, then its names sorted
/// (apex first), as `/zone` lists them.
fn records(zone: &Zone) -> impl Iterator<Item = (Record, &[crate::zone::ObjectRef])> {
    zone.authorities().iter().flat_map(|authority: &Authority| {
        std::iter::once((authority.soa().clone(), &[][..])).chain(authority.records_in_order())
    })
}

fn table_head(out: &mut String, id: &str, columns: &[&str]) {
    let _ = write!(out, "<div class=\"scroll\"><table id=\"{id}\"><thead><tr>");
    for column in columns {
        let _ = write!(out, "<th>{column}</th>");
    }
    out.push_str("</tr></thead><tbody>\n");
}

fn row(out: &mut String, cells: &[&str]) {
    out.push_str("<tr>");
    for cell in cells {
        let _ = write!(out, "<td>{}</td>", escape(cell));
    }
    out.push_str("</tr>\n");
}

/// Text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-25 21:03:04 UTC`, without a date crate: days since the epoch to a civil date
/// (H. Hinnant's `civil_from_days`).
fn utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

const HEAD: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>k8s-gateway</title>
<style>
:root { color-scheme: light dark; --line: #8884; }
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; padding: 0.5rem 0.8rem; max-width: 70rem; }
h1 { font-size: 1.3rem; margin: 0.3rem 0; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
.bar { display: flex; flex-wrap: wrap; gap: 0.4rem 1rem; margin: 0.3rem 0; }
.ok, .state-synced { color: #1a7f37; }
.bad, .state-forbidden, .state-not_served, .state-failing { color: #c0392b; }
.state-pending { color: #b7791f; }
input { font: inherit; width: 100%; max-width: 24rem; padding: 0.35rem 0.5rem; box-sizing: border-box; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; }
#names { width: 100%; }
th, td { text-align: left; padding: 0.25rem 0.9rem 0.25rem 0; border-bottom: 1px solid var(--line); vertical-align: top; }
td:first-child { white-space: nowrap; }
#names td:nth-child(3) { overflow-wrap: anywhere; min-width: 8rem; }
th { font-weight: 600; white-space: nowrap; }
#stale { color: #c0392b; }
/* A phone: each record on two lines (name type data TTL, then its objects), no sideways scroll. */
@media (max-width: 40rem) {
  #names thead { display: none; }
  #names tr { display: block; padding: 0.3rem 0; border-bottom: 1px solid var(--line); }
  #names tr[hidden] { display: none; }
  #names td { display: inline; padding: 0 0.5rem 0 0; border: none; white-space: normal; overflow-wrap: anywhere; }
  #names td:nth-child(5) { display: block; opacity: 0.7; }
}
</style>
</head>
<body>
<h1>k8s-gateway</h1>
<p id="stale" hidden>Could not refresh: the data below may be old.</p>
<p><label>Filter names <input id="q" type="search" placeholder="name, address or object" autocomplete="off"></label></p>
"##;

const TAIL: &str = r##"<p><a href="zone">/zone</a> (zone files) · <a href="explain?name=">/explain?name=</a> (JSON)</p>
<script>
const q = document.getElementById("q");
q.value = new URLSearchParams(location.search).get("q") || "";
function filter() {
  const t = q.value.trim().toLowerCase();
  for (const r of document.querySelectorAll("#names tbody tr")) r.hidden = t !== "" && !r.textContent.toLowerCase().includes(t);
}
q.addEventListener("input", filter);
filter();
setInterval(async () => {
  try {
    const page = new DOMParser().parseFromString(await (await fetch(location.pathname, {cache: "no-store"})).text(), "text/html");
    document.getElementById("data").replaceWith(page.getElementById("data"));
    document.getElementById("stale").hidden = true;
    filter();
  } catch (e) { document.getElementById("stale").hidden = false; }
}, 15000);
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_states_are_read_from_the_metrics() {
        let text = "# TYPE k8s_gateway_source_state gauge\n\
            k8s_gateway_source_state{kind=\"Service\",state=\"pending\"} 0\n\
            k8s_gateway_source_state{kind=\"Service\",state=\"synced\"} 1\n\
            k8s_gateway_source_state{kind=\"HTTPRoute\",state=\"not_served\"} 1\n\
            k8s_gateway_source_objects{kind=\"Service\"} 12\n\
            coredns_dns_requests_total{server=\"dns://:53\",zone=\"x.\"} 3\n";
        assert_eq!(
            SourceRow::from_metrics(text, &[]),
            [
                SourceRow {
                    cluster: None,
                    kind: "HTTPRoute".into(),
                    state: "not_served".into(),
                    objects: None
                },
                SourceRow {
                    cluster: None,
                    kind: "Service".into(),
                    state: "synced".into(),
                    objects: Some(12)
                },
            ]
        );
    }

    #[test]
    fn each_clusters_kinds_are_rows_of_their_own() {
        let text = "k8s_gateway_source_state{cluster=\"prod\",kind=\"Service\",state=\"synced\"} 1\n\
            k8s_gateway_source_state{cluster=\"lab\",kind=\"Service\",state=\"failing\"} 1\n\
            k8s_gateway_source_objects{cluster=\"prod\",kind=\"Service\"} 3\n";
        // In the order of --cluster, not of the names.
        let rows = SourceRow::from_metrics(text, &["prod".into(), "lab".into()]);
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.cluster.as_deref(), r.state.as_str(), r.objects))
            .collect();
        assert_eq!(
            summary,
            [
                (Some("prod"), "synced", Some(3)),
                (Some("lab"), "failing", None)
            ]
        );
        let page = page(None, &rows, UNIX_EPOCH);
        assert!(page.contains("<th>Cluster</th>"), "{page}");
        assert!(
            page.contains("<tr><td>lab</td><td>Service</td><td class=\"state-failing\">"),
            "{page}"
        );
    }

    #[test]
    fn user_text_is_escaped() {
        assert_eq!(
            escape("<script>alert(\"x\" & 'y')</script>"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn times_are_utc_dates() {
        let at = |secs| utc(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(at(1_709_210_096), "2024-02-29 12:34:56 UTC");
    }

    #[test]
    fn a_page_without_a_zone_says_not_ready() {
        let html = page(None, &[], UNIX_EPOCH);
        assert!(html.contains("not ready"), "{html}");
        assert!(html.contains("1970-01-01 00:00:00 UTC"));
    }
}
