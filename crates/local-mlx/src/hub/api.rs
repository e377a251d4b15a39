//! The Hub's HTTP metadata API: which commit a revision is, and which files it holds.
//!
//! One `revision` call and one recursive `tree` call give every file's size and hash
//! (`oid`, and `lfs.oid` for LFS files), which is exactly what the cache names blobs
//! after; so unlike `huggingface_hub` we need no `HEAD` per file before downloading.
//! Answers that are not the Hub's JSON (an HTML login page, a truncated body) become
//! a clear error naming the URL instead of a panic or a half-parsed listing.

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, LINK};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::config::HubConfig;
use super::listing::{check_names, Digest, RemoteFile, RepoListing};
use crate::error::{Error, Result};

/// A client for one hub endpoint.
#[derive(Debug, Clone)]
pub struct HubApi {
    http: reqwest::Client,
    endpoint: String,
    token: Option<String>,
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
    pub fn new(http: reqwest::Client, config: &HubConfig) -> Self {
        HubApi { http, endpoint: config.endpoint.clone(), token: config.token.clone() }
    }

    /// The files of `repo` at `revision`, names checked for safety.
    pub async fn listing(&self, repo: &str, revision: &str) -> Result<RepoListing> {
        let info_url = self.url(&["api", "models"], repo, &["revision", revision])?;
        let info: RevisionInfo = self.get_json(&info_url, repo, revision).await?.0;
        if !super::cache::is_commit_hash(&info.sha) {
            return Err(bad_response(&info_url, format!("'sha' is not a commit id: {:?}", info.sha)));
        }
        let mut next = Some(self.url(&["api", "models"], repo, &["tree", &info.sha])?);
        if let Some(url) = next.as_mut() {
            url.query_pairs_mut().append_pair("recursive", "true");
        }
        let mut files = Vec::new();
        while let Some(url) = next.take() {
            let (entries, headers): (Vec<TreeEntry>, HeaderMap) = self.get_json(&url, repo, revision).await?;
            for entry in entries.into_iter().filter(|e| e.kind == "file") {
                files.push(remote_file(&url, entry)?);
            }
            next = next_page(&headers);
        }
        check_names(repo, &files)?;
        Ok(RepoListing { commit: info.sha, files })
    }

    /// `{endpoint}/{repo}/resolve/{commit}/{path}`.
    pub fn file_url(&self, repo: &str, commit: &str, path: &str) -> Result<Url> {
        let mut tail = vec!["resolve", commit];
        tail.extend(path.split('/'));
        self.url(&[], repo, &tail)
    }

    /// The shared HTTP client and auth header, for the downloader.
    pub fn request(&self, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match &self.token {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn url(&self, head: &[&str], repo: &str, tail: &[&str]) -> Result<Url> {
        let mut url = Url::parse(&self.endpoint).map_err(|e| Error::BadHubResponse {
            url: self.endpoint.clone(),
            reason: format!("HF_ENDPOINT is not a URL: {e}"),
        })?;
        {
            let mut segments = url.path_segments_mut().map_err(|_| Error::BadHubResponse {
                url: self.endpoint.clone(),
                reason: "HF_ENDPOINT cannot be a base URL".into(),
            })?;
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
        let response = self.request(url.clone()).send().await.map_err(network)?;
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
        let body = response.bytes().await.map_err(network)?;
        let value = serde_json::from_slice(&body).map_err(|e| bad_response(url, format!("invalid JSON: {e}")))?;
        Ok((value, headers))
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
                format!("'{}' has an LFS oid that is not a sha256: {:?}", entry.path, lfs.oid),
            ))
        }
        None => match entry.oid {
            Some(oid) if is_hex(&oid, 40) => (entry.size, Digest::GitSha1(oid.to_ascii_lowercase())),
            other => return Err(bad_response(url, format!("'{}' has no valid git oid: {other:?}", entry.path))),
        },
    };
    Ok(RemoteFile { path: entry.path, size, digest })
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
