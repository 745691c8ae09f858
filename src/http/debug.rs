//! The debug views, on `--debug-listen`: the status page `/`, the zone as zone files
//! (`/zone`) and why a name answers the way it does (`/explain?name=`).
//!
//! They hand out the whole zone (DNS itself refuses zone transfers), so they get a
//! listener of their own, on loopback by default: `kubectl port-forward` reaches it, the
//! network does not.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::status;
use crate::zone::SharedZone;
use crate::zone::explain_name;
use crate::zone::render::zone_files;

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
struct DebugState {
    zone: SharedZone,
    /// Read for the source states the status page shows (the `k8s_gateway_source_*`
    /// families), never written here.
    registry: Arc<Registry>,
    views: Views,
}

/// What the views say beyond the zone and the metrics.
#[derive(Clone, Default)]
pub struct Views {
    /// The `--fallthrough` servers, which `/explain` names for a name we do not have.
    pub fallthrough: Arc<[SocketAddr]>,
    /// The `--cluster` names in their order (their precedence), which the status page
    /// lists them in.
    pub clusters: Arc<[String]>,
}

/// Serves `/`, `/zone` and `/explain` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    zone: SharedZone,
    registry: Arc<Registry>,
    views: Views,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(status_page))
        .route("/zone", get(zone_file))
        .route("/explain", get(explain))
        .with_state(DebugState {
            zone,
            registry,
            views,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn status_page(State(state): State<DebugState>) -> Response {
    let mut metrics = String::new();
    // NB: an encoding error only loses the source table; the page still shows the zone.
    let _ = prometheus_client::encoding::text::encode(&mut metrics, &state.registry);
    let sources = status::SourceRow::from_metrics(&metrics, &state.views.clusters);
    let zone = state.zone.load_full();
    let html = status::page(zone.as_deref(), &sources, std::time::SystemTime::now());
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

async fn zone_file(State(state): State<DebugState>) -> Response {
    match state.zone.load().as_ref() {
        Some(zone) => (
            [(header::CONTENT_TYPE, "text/dns; charset=utf-8")],
            zone_files(zone),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no zone yet\n").into_response(),
    }
}

#[derive(Deserialize)]
struct ExplainQuery {
    name: Option<String>,
}

async fn explain(State(state): State<DebugState>, Query(query): Query<ExplainQuery>) -> Response {
    let Some(text) = query.name.filter(|n| !n.trim().is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            "usage: /explain?name=app.home.example\n",
        )
            .into_response();
    };
    let name = match explain_name(&text) {
        Ok(name) => name,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    match state.zone.load().as_ref() {
        Some(zone) => {
            let mut explanation = zone.explain(&name);
            if explanation.status == "NXDOMAIN" && crate::zone::may_fall_through(&name) {
                explanation.fallthrough = state
                    .views
                    .fallthrough
                    .iter()
                    .map(ToString::to_string)
                    .collect();
            }
            axum::Json(explanation).into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "no zone yet\n").into_response(),
    }
}
