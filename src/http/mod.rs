//! The HTTP endpoints: `/metrics` for Prometheus, `/healthz` and `/readyz` for the
//! kubelet on `--http-listen`; the debug views ([`debug`]) on a listener of their own.
//!
//! Both read the same zone snapshot the DNS answers come from, so what they show is what
//! resolvers get.

pub mod debug;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::zone::SharedZone;

/// OpenMetrics content type, which `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
struct AppState {
    zone: SharedZone,
    registry: Arc<Registry>,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    zone: SharedZone,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AppState { zone, registry });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), else the classic
/// Prometheus text format, which `promtool check metrics` and older tools read.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if wants_openmetrics {
        ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
            prometheus_text(&text),
        )
            .into_response()
    }
}

/// Rewrites OpenMetrics text as Prometheus text format 0.0.4: a counter's HELP and TYPE
/// name its `_total` samples, and the OpenMetrics-only `# UNIT` and `# EOF` lines go.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}\n"));
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Ready once a zone is built; never unready after (the last good zone keeps serving).
async fn readyz(State(state): State<AppState>) -> Response {
    match state.zone.load().as_ref() {
        Some(zone) => format!("ready: serial {}\n", zone.serial()).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first zone is not built yet\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::prometheus_text;

    #[test]
    fn counters_are_renamed_and_openmetrics_lines_dropped() {
        let openmetrics = "# HELP requests Requests.\n# TYPE requests counter\nrequests_total{a=\"b\"} 3\n# HELP size Size.\n# TYPE size gauge\n# UNIT size bytes\nsize 2\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{a=\"b\"} 3\n# HELP size Size.\n# TYPE size gauge\nsize 2\n"
        );
    }
}
