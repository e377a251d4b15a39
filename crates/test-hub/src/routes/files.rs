//! File content: `/{org}/{name}/resolve/{rev}/{path}` and `/_lfs/{org}/{name}/{sha256}`.
//!
//! As on the Hub, `resolve` answers a regular file itself (`ETag` = git blob sha1) and
//! answers an LFS file with a 302 to an absolute URL elsewhere (here `/_lfs/...`, standing in
//! for the CDN), carrying the metadata on the redirect itself: `X-Linked-Etag` (sha256),
//! `X-Linked-Size`, `X-Repo-Commit`. `huggingface_hub` ≥ 1.0 follows a redirect on HEAD when
//! it stays on the same host, as ours does, and then reads the metadata from the `/_lfs`
//! answer; so `/_lfs` sends `X-Repo-Commit` and `ETag` = sha256 too.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Hub;
use crate::body::{self, BodySource};
use crate::error::{Error, Result};
use crate::faults::{Route, Target};
use crate::range::{self, ByteRange};
use crate::repo::RepoFile;

pub(crate) async fn resolve(
    hub: Hub,
    method: Method,
    Path((org, name, rev, path)): Path<(String, String, String, String)>,
    request_headers: HeaderMap,
) -> Result<Response> {
    let repo = format!("{org}/{name}");
    let target = Target { route: Route::Resolve, repo: &repo, paths: &[&path] };
    // Before any lookup, so a "hub is down" fault costs no hashing.
    if let Some(status) = hub.faults.take_status(&target) {
        return Ok(status_fault(status));
    }
    let snapshot = hub.index.snapshot(&repo).await?;
    if !snapshot.has_revision(&rev) {
        return Err(Error::RevisionNotFound { repo, rev });
    }
    let Some(file) = snapshot.files.get(&path) else {
        return Err(Error::EntryNotFound { repo, path, commit: snapshot.commit.clone() });
    };
    let Some(lfs) = &file.lfs else {
        return serve(&hub, &method, &request_headers, &repo, file, &snapshot.commit, &target);
    };

    if method == Method::HEAD {
        hub.stats.file(&repo, &file.path).count_head();
    }
    let host = request_headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map_or_else(|| hub.addr.to_string(), str::to_string);
    let location = format!("http://{host}/_lfs/{org}/{name}/{}", lfs.sha256);
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    put(headers, header::LOCATION, &location);
    put(headers, "x-repo-commit", &snapshot.commit);
    put(headers, "x-linked-etag", &format!("\"{}\"", lfs.sha256));
    put(headers, "x-linked-size", &file.size.to_string());
    put(headers, header::ETAG, &format!("\"{}\"", lfs.sha256));
    put(headers, header::CONTENT_LENGTH, "0");
    Ok(response)
}

pub(crate) async fn lfs(
    hub: Hub,
    method: Method,
    Path((org, name, sha256)): Path<(String, String, String)>,
    request_headers: HeaderMap,
) -> Result<Response> {
    let repo = format!("{org}/{name}");
    let snapshot = hub.index.snapshot(&repo).await?;
    let Some(file) = snapshot.lfs_file(&sha256) else {
        return Err(Error::EntryNotFound { repo, path: sha256, commit: snapshot.commit.clone() });
    };
    // A fault may name the blob by sha256 or by the file's repo path.
    let target = Target { route: Route::Lfs, repo: &repo, paths: &[&sha256, &file.path] };
    if let Some(status) = hub.faults.take_status(&target) {
        return Ok(status_fault(status));
    }
    serve(&hub, &method, &request_headers, &repo, file, &snapshot.commit, &target)
}

/// The answer of a `status` fault: that status and a Hub-like JSON error.
pub(crate) fn status_fault(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({ "error": format!("injected fault: status {}", status.as_u16()) });
    (status, axum::Json(body)).into_response()
}

/// Answers HEAD or GET (200, 206 or 416) with the file's bytes, applying body faults.
fn serve(
    hub: &Hub,
    method: &Method,
    request_headers: &HeaderMap,
    repo: &str,
    file: &RepoFile,
    commit: &str,
    target: &Target<'_>,
) -> Result<Response> {
    let counters = hub.stats.file(repo, &file.path);
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    put(headers, "x-repo-commit", commit);
    put(headers, header::ETAG, &format!("\"{}\"", file.etag()));
    put(headers, header::ACCEPT_RANGES, "bytes");
    put(headers, header::CONTENT_TYPE, "application/octet-stream");

    if method == Method::HEAD {
        counters.count_head();
        put(headers, header::CONTENT_LENGTH, &file.size.to_string());
        return Ok(response);
    }

    let mut plan = hub.faults.take_body_plan(target);
    plan.bytes_per_sec = hub.rate_cap.apply(plan.bytes_per_sec);
    let requested = request_headers.get(header::RANGE).and_then(|value| value.to_str().ok());
    let byte_range = match range::parse(requested, file.size) {
        _ if plan.ignore_range => ByteRange::Full,
        ByteRange::Partial { start, end } if plan.shift_range > 0 => shifted(start, end, plan.shift_range, file.size),
        parsed => parsed,
    };
    let (start, len) = match byte_range {
        ByteRange::Unsatisfiable => return Err(Error::RangeNotSatisfiable { size: file.size }),
        ByteRange::Full => (0, file.size),
        ByteRange::Partial { start, end } => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {start}-{end}/{}", file.size);
            put(response.headers_mut(), header::CONTENT_RANGE, &content_range);
            (start, end - start + 1)
        }
    };
    // Set explicitly: hyper then frames the streamed body by length, so a reset shows up
    // to the client as a short body rather than a clean end of a chunked one.
    put(response.headers_mut(), header::CONTENT_LENGTH, &len.to_string());
    counters.count_get();
    *response.body_mut() = body::stream(BodySource {
        abs_path: file.abs_path.clone(),
        start,
        len,
        plan,
        counters,
        shutdown: hub.shutdown.clone(),
    });
    Ok(response)
}

/// The range a `shift_range` fault serves instead: `by` bytes later (as much as fits),
/// with a `Content-Range` that honestly says which bytes these are.
fn shifted(start: u64, end: u64, by: u64, size: u64) -> ByteRange {
    let len = end - start;
    let start = (start + by).min(size - 1);
    ByteRange::Partial { start, end: (start + len).min(size - 1) }
}

fn put(headers: &mut HeaderMap, name: impl header::IntoHeaderName, value: &str) {
    headers.insert(name, HeaderValue::from_str(value).expect("header values here are ascii"));
}
