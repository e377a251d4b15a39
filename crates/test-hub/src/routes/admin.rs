//! `/_test/...`: faults and stats over HTTP, for tests that drive the hub in another
//! process (e.g. through our CLI). Same JSON as the Rust types, so both kinds of tests
//! write the same faults.

use axum::http::StatusCode;
use axum::Json;

use super::Hub;
use crate::faults::Fault;
use crate::stats::Stats;

/// `POST /_test/faults` with a JSON list: replaces the armed faults.
pub(crate) async fn set_faults(hub: Hub, Json(faults): Json<Vec<Fault>>) -> StatusCode {
    tracing::info!(?faults, "faults set");
    hub.faults.set(faults);
    StatusCode::NO_CONTENT
}

/// `GET /_test/faults`: the armed faults, with what is left of their `times`.
pub(crate) async fn list_faults(hub: Hub) -> Json<Vec<Fault>> {
    Json(hub.faults.list())
}

/// `DELETE /_test/faults`.
pub(crate) async fn clear_faults(hub: Hub) -> StatusCode {
    hub.faults.set(Vec::new());
    StatusCode::NO_CONTENT
}

/// `GET /_test/stats`.
pub(crate) async fn stats(hub: Hub) -> Json<Stats> {
    Json(hub.stats.snapshot())
}

/// `POST /_test/reset_stats`.
pub(crate) async fn reset_stats(hub: Hub) -> StatusCode {
    hub.stats.reset();
    StatusCode::NO_CONTENT
}

#[derive(serde::Deserialize)]
pub(crate) struct RateCapBody {
    bytes_per_sec: Option<u64>,
}

/// `PUT /_test/rate_cap` with `{"bytes_per_sec": N}` (or `null` for none).
pub(crate) async fn set_rate_cap(hub: Hub, Json(body): Json<RateCapBody>) -> StatusCode {
    tracing::info!(bytes_per_sec = ?body.bytes_per_sec, "rate cap set");
    hub.rate_cap.set(body.bytes_per_sec);
    StatusCode::NO_CONTENT
}
