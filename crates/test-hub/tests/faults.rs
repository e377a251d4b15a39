//! Each fault kind, its filters and `times`, the admin HTTP API, and the counters.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use test_hub::{Fault, FileStats, Route};

#[tokio::test]
async fn a_status_fault_answers_its_status_until_its_times_run_out() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![Fault::status(503).on_path("config.json").times(2)]);
    for _ in 0..2 {
        let response = fx.client.get(fx.resolve("config.json")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let response = fx.client.get(fx.resolve("config.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(fx.hub.faults().is_empty());
}

#[tokio::test]
async fn a_status_fault_for_the_api_route_leaves_files_alone() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![Fault::status(500).on_route(Route::Api)]);
    let info = fx.client.get(fx.url("/api/models/org/tiny")).send().await.unwrap();
    assert_eq!(info.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let tree = fx.client.get(fx.url("/api/models/org/tiny/tree/main")).send().await.unwrap();
    assert_eq!(tree.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let file = fx.client.head(fx.resolve("config.json")).send().await.unwrap();
    assert_eq!(file.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_status_fault_named_by_path_hits_the_lfs_download_too() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![Fault::status(502).on_path(WEIGHTS).on_route(Route::Lfs)]);
    let redirect = fx.client.get(fx.resolve(WEIGHTS)).send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let download = fx.client.get(fx.lfs(WEIGHTS)).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn reset_after_closes_the_connection_after_exactly_that_many_bytes() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![Fault::reset_after(100_000).on_path(WEIGHTS).times(1)]);
    // The 302 and a HEAD serve no body, so they do not use up the fault.
    fx.client.get(fx.resolve(WEIGHTS)).send().await.unwrap();
    fx.client.head(fx.lfs(WEIGHTS)).send().await.unwrap();
    let response = fx.client.get(fx.lfs(WEIGHTS)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-length"), WEIGHTS_LEN.to_string());
    let (received, failed) = read_body(response).await;
    assert!(failed, "the body must end in an error, not cleanly");
    assert_eq!(received.len(), 100_000);
    assert_eq!(received, weights()[..100_000]);
    let stats = fx.hub.file_stats(REPO, WEIGHTS);
    assert_eq!(stats.bytes_served, 100_000);
    // Disarmed: the resume gets the rest.
    let rest = fx.client.get(fx.lfs(WEIGHTS)).header("range", "bytes=100000-").send().await.unwrap();
    let (received, failed) = read_body(rest).await;
    assert!(!failed);
    assert_eq!(received, weights()[100_000..]);
}

#[tokio::test]
async fn reset_after_counts_bytes_of_a_ranged_body() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![Fault::reset_after(10).times(1)]);
    let response = fx.client.get(fx.lfs(WEIGHTS)).header("range", "bytes=5000-").send().await.unwrap();
    let (received, failed) = read_body(response).await;
    assert!(failed);
    assert_eq!(received, weights()[5000..5010]);
}

#[tokio::test]
async fn stall_after_holds_the_body_then_sends_the_rest() {
    let fx = Fixture::start().await;
    let stall = Duration::from_millis(600);
    fx.hub.set_faults(vec![Fault::stall_after(1000, Some(stall)).times(1)]);
    let started = Instant::now();
    let response = fx.client.get(fx.lfs(WEIGHTS)).send().await.unwrap();
    let (received, failed) = read_body(response).await;
    assert!(!failed);
    assert_eq!(received, weights());
    assert!(started.elapsed() >= stall);
}

#[tokio::test]
async fn stall_forever_leaves_the_client_to_time_out_after_the_first_bytes() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![Fault::stall_after(1234, None)]);
    let mut response = fx.client.get(fx.lfs(WEIGHTS)).send().await.unwrap();
    let mut received = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_millis(700), async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            received.extend_from_slice(&chunk);
        }
    })
    .await;
    assert!(outcome.is_err(), "the body must not finish");
    assert_eq!(received, weights()[..1234]);
    assert_eq!(fx.hub.file_stats(REPO, WEIGHTS).bytes_served, 1234);
    // Dropping the hub must not wait on the stalled body.
    tokio::time::timeout(Duration::from_secs(3), fx.hub.shutdown()).await.expect("shutdown despite a stalled body");
}

#[tokio::test]
async fn corrupt_flips_one_byte_at_its_file_offset() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![Fault::corrupt(200_000).on_path(WEIGHTS)]);
    let mut expected = weights();
    expected[200_000] ^= 0xFF;
    let full = fx.client.get(fx.lfs(WEIGHTS)).send().await.unwrap();
    assert_eq!(full.bytes().await.unwrap().to_vec(), expected);
    // The offset is of the file, not of the ranged body.
    let ranged = fx.client.get(fx.lfs(WEIGHTS)).header("range", "bytes=199990-200009").send().await.unwrap();
    assert_eq!(ranged.bytes().await.unwrap().to_vec(), expected[199_990..200_010]);
    let elsewhere = fx.client.get(fx.lfs(WEIGHTS)).header("range", "bytes=0-99").send().await.unwrap();
    assert_eq!(elsewhere.bytes().await.unwrap().to_vec(), weights()[..100]);
}

#[tokio::test]
async fn ignore_range_answers_200_with_the_whole_file() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![Fault::ignore_range()]);
    for url in [fx.resolve("config.json"), fx.lfs(WEIGHTS)] {
        let response = fx.client.get(&url).header("range", "bytes=3-").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("content-range").is_none());
        let expected = if url.contains("_lfs") { weights() } else { CONFIG.to_vec() };
        assert_eq!(response.bytes().await.unwrap().to_vec(), expected);
    }
}

#[tokio::test]
async fn throttle_limits_the_rate() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![Fault::throttle(500_000).on_path(WEIGHTS)]);
    let started = Instant::now();
    let response = fx.client.get(fx.lfs(WEIGHTS)).send().await.unwrap();
    assert_eq!(response.bytes().await.unwrap().len(), WEIGHTS_LEN);
    let elapsed = started.elapsed();
    // 300 kB at 500 kB/s: 0.6 s.
    assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn api_body_replaces_api_answers_with_any_text() {
    let fx = Fixture::start().await;
    fx.hub.set_faults(vec![
        Fault::api_body("<html>busy</html>", "text/html").with_status(503).times(1),
        Fault::api_body(r#"[{"type":"file","path":"../x","oid":"0","size":1}]"#, "application/json"),
    ]);
    let html = fx.client.get(fx.url("/api/models/org/tiny")).send().await.unwrap();
    assert_eq!(html.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&html, "content-type"), "text/html");
    assert_eq!(html.text().await.unwrap(), "<html>busy</html>");
    let tree = fx.client.get(fx.url("/api/models/org/tiny/tree/main?recursive=true")).send().await.unwrap();
    assert_eq!(tree.status(), StatusCode::OK);
    let listing: Value = tree.json().await.unwrap();
    assert_eq!(listing[0]["path"], "../x");
    // Files are not API routes.
    let file = fx.client.get(fx.resolve("config.json")).send().await.unwrap();
    assert_eq!(file.bytes().await.unwrap().as_ref(), CONFIG);
}

#[tokio::test]
async fn faults_are_set_listed_and_cleared_over_http() {
    let fx = Fixture::start().await;
    let faults = json!([
        {"kind": "status", "status": 429, "path": "config.json", "times": 1},
        {"kind": "corrupt", "offset": 0, "repo": "org/tiny", "route": "resolve"}
    ]);
    let set = fx.client.post(fx.url("/_test/faults")).json(&faults).send().await.unwrap();
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    let listed: Value = fx.client.get(fx.url("/_test/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, faults);
    let limited = fx.client.get(fx.resolve("config.json")).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let corrupted = fx.client.get(fx.resolve("config.json")).send().await.unwrap();
    assert_eq!(corrupted.bytes().await.unwrap()[0], CONFIG[0] ^ 0xFF);
    let bad = fx.client.post(fx.url("/_test/faults")).json(&json!([{"kind": "explode"}])).send().await.unwrap();
    assert!(bad.status().is_client_error());
    let cleared = fx.client.delete(fx.url("/_test/faults")).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    let clean = fx.client.get(fx.resolve("config.json")).send().await.unwrap();
    assert_eq!(clean.bytes().await.unwrap().as_ref(), CONFIG);
}

#[tokio::test]
async fn stats_count_requests_and_bytes_served_and_reset() {
    let fx = Fixture::start().await;
    fx.client.get(fx.url("/api/models/org/tiny")).send().await.unwrap();
    fx.client.get(fx.url("/api/models/org/tiny/tree/main")).send().await.unwrap();
    fx.client.head(fx.resolve(WEIGHTS)).send().await.unwrap();
    fx.client.get(fx.resolve(WEIGHTS)).send().await.unwrap(); // 302: no bytes
    let body = fx.client.get(fx.lfs(WEIGHTS)).send().await.unwrap();
    body.bytes().await.unwrap();
    let ranged = fx.client.get(fx.resolve("config.json")).header("range", "bytes=0-4").send().await.unwrap();
    ranged.bytes().await.unwrap();

    let stats = fx.hub.stats();
    assert_eq!(stats.api_requests, 2);
    assert_eq!(
        stats.files[&format!("{REPO}/{WEIGHTS}")],
        FileStats { requests: 1, head_requests: 1, bytes_served: WEIGHTS_LEN as u64, max_concurrent_bodies: 1 }
    );
    assert_eq!(fx.hub.file_stats(REPO, "config.json").bytes_served, 5);
    assert_eq!(fx.hub.file_stats(REPO, NESTED), FileStats::default());

    let over_http: Value = fx.client.get(fx.url("/_test/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(over_http["api_requests"], 2);
    assert_eq!(over_http["files"]["org/tiny/config.json"]["requests"], 1);
    assert_eq!(over_http["files"]["org/tiny/config.json"]["bytes_served"], 5);

    let reset = fx.client.post(fx.url("/_test/reset_stats")).send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(fx.hub.stats(), test_hub::Stats::default());
}
