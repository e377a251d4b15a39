//! The Hub's HTTP metadata API: which commit a revision is, and which files it holds.
//!
//! One `revision` call and one recursive `tree` call give every file's size and hash
//! (`oid`, and `lfs.oid` for LFS files), which is exactly what the cache names blobs
//! after; so unlike `huggingface_hub` we need no `HEAD` per file before downloading.
//! Answers that are not the Hub's JSON (an HTML login page, a truncated body) become
//! a clear error naming the URL instead of a panic or a half-parsed listing.
//!
//! The hub is not trusted with our resources either: every answer must start and keep
//! coming within the stall timeout, every JSON body is streamed and refused past
//! [`MAX_JSON_BYTES`], `Link: rel="next"` pages stop at a loop or at [`MAX_PAGES`], and
//! the token goes only to the configured endpoint's origin (scheme, host and port), so a
//! `Link` elsewhere never receives it.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, LINK};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::config::HubConfig;
use super::listing::{check_names, Digest, RemoteFile, RepoListing};
use crate::error::{Error, Result};

/// The most one metadata answer may weigh. A tree page of the Hub (1,000 entries) is
/// about 300 kB; this leaves room for any real repo and bounds a hostile one.
pub(crate) const MAX_JSON_BYTES: usize = 16 << 20;

/// The most tree pages followed: a million files at the Hub's 1,000 per page.
pub(crate) const MAX_PAGES: usize = 1000;

/// A client for one hub endpoint.
#[derive(Debug, Clone)]
pub(crate) struct HubApi {
    http: reqwest::Client,
    endpoint: String,
    /// The endpoint parsed, or why it cannot be used (reported at the first request).
    base: std::result::Result<Url, String>,
    token: Option<String>,
    /// Longest wait for an answer to start, and between two pieces of its body.
    read_timeout: Duration,
}

#[derive(Deserialize)]
struct RevisionInfo {
    sha: String,
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    lfs: Option<LfsInfo>,
}

#[derive(Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

impl HubApi {
    pub(crate) fn new(http: reqwest::Client, config: &HubConfig) -> Self {
        HubApi {
            http,
            endpoint: config.endpoint.clone(),
            base: parse_endpoint(&config.endpoint),
            token: config.token.clone(),
            read_timeout: config.stall_timeout,
        }
    }

    /// The files of `repo` at `revision`, names checked for safety.
    pub(crate) async fn listing(&self, repo: &str, revision: &str) -> Result<RepoListing> {
        let info_url = self.url(&["api", "models"], repo, &["revision", revision])?;
        let info: RevisionInfo = self.get_json(&info_url, repo, revision).await?.0;
        if !super::cache::is_commit_hash(&info.sha) {
            return Err(bad_response(&info_url, format!("'sha' is not a commit id: {:?}", info.sha)));
        }
        let mut next = Some(self.url(&["api", "models"], repo, &["tree", &info.sha])?);
        if let Some(url) = next.as_mut() {
            url.query_pairs_mut().append_pair("recursive", "true");
        }
        let first_page = next.clone().expect("the first page is set");
        let mut files = Vec::new();
        let mut visited = HashSet::new();
        while let Some(url) = next.take() {
            if !visited.insert(url.clone()) {
                return Err(limit_exceeded(&url, "its Link rel=\"next\" loops back to a page already read".into()));
            }
            if visited.len() > MAX_PAGES {
                return Err(limit_exceeded(&url, format!("the listing goes on past {MAX_PAGES} pages")));
            }
            let (entries, headers): (Vec<TreeEntry>, HeaderMap) = self.get_json(&url, repo, revision).await?;
            for entry in entries.into_iter().filter(|e| e.kind == "file") {
                files.push(remote_file(&url, entry)?);
            }
            next = next_page(&headers);
        }
        check_names(repo, &files)?;
        // Checked once here, so every sum of these sizes later (a subset's total, the
        // bytes still missing) fits in a u64 and the free-space check sees the truth.
        if files.iter().try_fold(0u64, |sum, f| sum.checked_add(f.size)).is_none() {
            return Err(limit_exceeded(&first_page, "the file sizes add up to more than 2^64 bytes".into()));
        }
        Ok(RepoListing { commit: info.sha, files })
    }

    /// `{endpoint}/{repo}/resolve/{commit}/{path}`.
    pub(crate) fn file_url(&self, repo: &str, commit: &str, path: &str) -> Result<Url> {
        let mut tail = vec!["resolve", commit];
        tail.extend(path.split('/'));
        self.url(&[], repo, &tail)
    }

    /// The shared HTTP client, with the auth header only when `url` is on the
    /// endpoint's origin (reqwest drops it again on a redirect to another host).
    pub(crate) fn request(&self, url: Url) -> reqwest::RequestBuilder {
        let same_origin = self.base.as_ref().is_ok_and(|base| base.origin() == url.origin());
        let request = self.http.get(url);
        match &self.token {
            Some(token) if same_origin => request.header(AUTHORIZATION, format!("Bearer {token}")),
            _ => request,
        }
    }

    fn url(&self, head: &[&str], repo: &str, tail: &[&str]) -> Result<Url> {
        let mut url = self.base.clone().map_err(|reason| Error::InvalidEndpoint {
            endpoint: crate::error::escape_controls(&self.endpoint),
            reason,
        })?;
        {
            let mut segments = url.path_segments_mut().expect("parse_endpoint checked it is a base");
            segments.pop_if_empty();
            segments.extend(head.iter().copied());
            segments.extend(repo.split('/'));
            segments.extend(tail.iter().copied());
        }
        Ok(url)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        repo: &str,
        revision: &str,
    ) -> Result<(T, HeaderMap)> {
        let network = |source| Error::Network { url: url.to_string(), source };
        let response = tokio::time::timeout(self.read_timeout, self.request(url.clone()).send())
            .await
            .map_err(|_| self.timed_out(url))?
            .map_err(network)?;
        let status = response.status();
        let headers = response.headers().clone();
        if !status.is_success() {
            return Err(self.status_error(url, status, &headers, repo, revision));
        }
        let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !content_type.contains("json") {
            return Err(bad_response(
                url,
                format!("expected JSON, got '{content_type}' (is HF_ENDPOINT a Hugging Face hub?)"),
            ));
        }
        let body = self.read_capped(url, response).await?;
        let value = serde_json::from_slice(&body).map_err(|e| bad_response(url, format!("invalid JSON: {e}")))?;
        Ok((value, headers))
    }

    /// The body, streamed: refused as soon as it passes [`MAX_JSON_BYTES`] (an endless
    /// body never grows our memory past that) or stalls for the read timeout.
    async fn read_capped(&self, url: &Url, mut response: reqwest::Response) -> Result<Vec<u8>> {
        let too_big = || limit_exceeded(url, format!("the body is larger than {} MiB", MAX_JSON_BYTES >> 20));
        let announced = response.content_length();
        if announced.is_some_and(|len| len > MAX_JSON_BYTES as u64) {
            return Err(too_big());
        }
        let mut body = Vec::new();
        loop {
            let chunk = tokio::time::timeout(self.read_timeout, response.chunk())
                .await
                .map_err(|_| self.timed_out(url))?
                .map_err(|source| Error::Network { url: url.to_string(), source })?;
            let Some(chunk) = chunk else { return Ok(body) };
            if body.len() + chunk.len() > MAX_JSON_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
    }

    fn timed_out(&self, url: &Url) -> Error {
        Error::HubTimeout { url: url.to_string(), secs: self.read_timeout.as_secs_f64() }
    }

    fn status_error(&self, url: &Url, status: StatusCode, headers: &HeaderMap, repo: &str, revision: &str) -> Error {
        let code = headers.get("x-error-code").and_then(|v| v.to_str().ok()).unwrap_or("");
        match (status.as_u16(), code) {
            (_, "RevisionNotFound") => {
                Error::RevisionNotFound { repo: repo.to_string(), revision: revision.to_string() }
            }
            (_, "RepoNotFound") | (404, _) => {
                Error::RepoNotFound { repo: repo.to_string(), endpoint: self.endpoint.clone() }
            }
            (401 | 403, _) => Error::Unauthorized { repo: repo.to_string(), status: status.as_u16() },
            (status, _) => Error::HttpStatus { url: url.to_string(), status },
        }
    }
}

fn remote_file(url: &Url, entry: TreeEntry) -> Result<RemoteFile> {
    let is_hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let (size, digest) = match entry.lfs {
        Some(lfs) if is_hex(&lfs.oid, 64) => (lfs.size, Digest::Sha256(lfs.oid.to_ascii_lowercase())),
        Some(lfs) => {
            return Err(bad_response(
                url,
                format!("{:?} has an LFS oid that is not a sha256: {:?}", entry.path, lfs.oid),
            ))
        }
        None => match entry.oid {
            Some(oid) if is_hex(&oid, 40) => (entry.size, Digest::GitSha1(oid.to_ascii_lowercase())),
            other => return Err(bad_response(url, format!("{:?} has no valid git oid: {other:?}", entry.path))),
        },
    };
    Ok(RemoteFile { path: entry.path, size, digest })
}

/// The endpoint as a base URL for our paths, or why it cannot be one.
fn parse_endpoint(endpoint: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(endpoint).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the scheme '{}' is not http or https", url.scheme()));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err("it has no host".into());
    }
    Ok(url)
}

/// The Hub paginates big trees with `Link: <url>; rel="next"`.
fn next_page(headers: &HeaderMap) -> Option<Url> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        Url::parse(&part[start..end]).ok()
    })
}

fn bad_response(url: &Url, reason: String) -> Error {
    Error::BadHubResponse { url: url.to_string(), reason }
}

fn limit_exceeded(url: &Url, reason: String) -> Error {
    Error::HubLimitExceeded { url: url.to_string(), reason }
}
