//! `/api/models/...`: repo info (`repo_info`, `model_info`) and tree listings
//! (`list_repo_tree`), in the JSON shapes `huggingface_hub` parses.
//!
//! Fields it requires are `sha` and `siblings[].rfilename` for info, and `type`, `path`,
//! `oid`, `size` (+ `lfs.{oid,size,pointerSize}`) for tree entries; the rest is there so
//! other clients see a plausible Hub answer. Listings fit one page: the Hub paginates only
//! past 1000 entries, and test repos are far smaller, so no `Link` header is sent.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Hub;
use crate::error::{Error, Result};
use crate::faults::{ApiBodyMode, Route, Target};
use crate::repo::{git_blob_sha1, Snapshot};

/// The Hub sends this format; `huggingface_hub` parses it with a strict pattern.
const FIXED_DATE: &str = "2024-01-01T00:00:00.000Z";

#[derive(Deserialize)]
pub(crate) struct InfoQuery {
    blobs: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct TreeQuery {
    recursive: Option<String>,
}

/// `huggingface_hub` sends Python booleans as `true`/`True`; accept the usual spellings.
fn flag(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

pub(crate) async fn model_info(
    hub: Hub,
    Path((org, name)): Path<(String, String)>,
    Query(query): Query<InfoQuery>,
) -> Result<Response> {
    model_info_at(hub, Path((org, name, "main".to_string())), Query(query)).await
}

pub(crate) async fn model_info_at(
    hub: Hub,
    Path((org, name, rev)): Path<(String, String, String)>,
    Query(query): Query<InfoQuery>,
) -> Result<Response> {
    let repo = format!("{org}/{name}");
    if let Some(response) = prelude(&hub, &repo, "revision") {
        return Ok(response);
    }
    let snapshot = at_revision(&hub, &repo, &rev).await?;
    let blobs = flag(&query.blobs);
    let siblings: Vec<Value> = snapshot
        .files
        .values()
        .map(|file| {
            if !blobs {
                return json!({ "rfilename": file.path });
            }
            let mut sibling = json!({
                "rfilename": file.path,
                "size": file.size,
                "blobId": file.blob_oid,
            });
            if let Some(lfs) = &file.lfs {
                sibling["lfs"] = json!({
                    "size": file.size,
                    "sha256": lfs.sha256,
                    "pointerSize": lfs.pointer_size,
                });
            }
            sibling
        })
        .collect();
    Ok(Json(json!({
        "_id": &snapshot.commit[..24],
        "id": repo,
        "modelId": repo,
        "author": org,
        "sha": snapshot.commit,
        "lastModified": FIXED_DATE,
        "createdAt": FIXED_DATE,
        "private": false,
        "gated": false,
        "disabled": false,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "spaces": [],
        "usedStorage": snapshot.total_size(),
    }))
    .into_response())
}

pub(crate) async fn tree(
    hub: Hub,
    Path((org, name, rev)): Path<(String, String, String)>,
    Query(query): Query<TreeQuery>,
) -> Result<Response> {
    tree_at(hub, Path((org, name, rev, String::new())), Query(query)).await
}

pub(crate) async fn tree_at(
    hub: Hub,
    Path((org, name, rev, dir)): Path<(String, String, String, String)>,
    Query(query): Query<TreeQuery>,
) -> Result<Response> {
    let repo = format!("{org}/{name}");
    if let Some(response) = prelude(&hub, &repo, "tree") {
        return Ok(response);
    }
    let snapshot = at_revision(&hub, &repo, &rev).await?;
    let dir = dir.trim_matches('/');
    let entries = tree_entries(&snapshot, dir, flag(&query.recursive));
    if entries.is_empty() && !dir.is_empty() {
        return Err(Error::EntryNotFound { repo, path: dir.to_string(), commit: snapshot.commit.clone() });
    }
    Ok(Json(entries).into_response())
}

/// Counts the request and applies API faults; `Some` is the faulted answer.
/// `endpoint` (`revision` or `tree`) is what a fault's `path` matches on API routes,
/// so a test can replace the tree listing alone.
fn prelude(hub: &Hub, repo: &str, endpoint: &str) -> Option<Response> {
    hub.stats.count_api();
    let target = Target { route: Route::Api, repo, paths: &[endpoint] };
    if let Some(status) = hub.faults.take_status(&target) {
        return Some(super::files::status_fault(status));
    }
    let fault = hub.faults.take_api_body(&target)?;
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::OK);
    let body = match fault.mode {
        ApiBodyMode::Once => Body::from(fault.body),
        ApiBodyMode::Endless => {
            let chunk = bytes::Bytes::from(fault.body);
            Body::from_stream(futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone())))
        }
        ApiBodyMode::Silent => {
            Body::from_stream(futures_util::stream::pending::<Result<bytes::Bytes, std::io::Error>>())
        }
    };
    let mut response = (status, [(header::CONTENT_TYPE, fault.content_type)], body).into_response();
    if let Some(link) = fault.link.and_then(|l| header::HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Some(response)
}

async fn at_revision(hub: &Hub, repo: &str, rev: &str) -> Result<std::sync::Arc<Snapshot>> {
    let snapshot = hub.index.snapshot(repo).await?;
    if snapshot.has_revision(rev) {
        Ok(snapshot)
    } else {
        Err(Error::RevisionNotFound { repo: repo.to_string(), rev: rev.to_string() })
    }
}

/// The entries below `dir` ("" = the root): its direct children, or with `recursive` every
/// file and folder beneath it, folders included as the Hub does.
fn tree_entries(snapshot: &Snapshot, dir: &str, recursive: bool) -> Vec<Value> {
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    // Folder path -> the (path, oid) lines of the files beneath it, to derive its oid.
    let mut folders: BTreeMap<String, String> = BTreeMap::new();
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for file in snapshot.files.values() {
        let Some(rest) = file.path.strip_prefix(&prefix) else {
            continue;
        };
        let mut parts: Vec<&str> = rest.split('/').collect();
        parts.pop();
        let depth = if recursive { parts.len() } else { parts.len().min(1) };
        for i in 1..=depth {
            let folder = format!("{prefix}{}", parts[..i].join("/"));
            let lines = folders.entry(folder).or_default();
            lines.push_str(&format!("{} {}\n", file.path, file.blob_oid));
        }
        if recursive || !rest.contains('/') {
            let mut entry = json!({
                "type": "file",
                "oid": file.blob_oid,
                "size": file.size,
                "path": file.path,
            });
            if let Some(lfs) = &file.lfs {
                entry["lfs"] = json!({
                    "oid": lfs.sha256,
                    "size": file.size,
                    "pointerSize": lfs.pointer_size,
                });
            }
            entries.insert(file.path.clone(), entry);
        }
    }
    for (folder, lines) in folders {
        let entry = json!({
            "type": "directory",
            "oid": git_blob_sha1(lines.as_bytes()),
            "size": 0,
            "path": folder,
        });
        entries.insert(folder, entry);
    }
    entries.into_values().collect()
}
