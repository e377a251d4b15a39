//! The fixture every test starts from: one repo with small, LFS-by-extension, LFS-by-size
//! and nested files, served by a hub on port 0.

#![allow(dead_code)] // each test binary uses a different part of it

use std::path::Path;

use sha1::{Digest, Sha1};
use sha2::Sha256;
use tempfile::TempDir;
use test_hub::{pattern, RepoBuilder, TestHub};

pub const REPO: &str = "org/tiny";
pub const CONFIG: &[u8] = b"{\"model_type\": \"qwen3\"}\n";
/// LFS by extension.
pub const WEIGHTS: &str = "model.safetensors";
pub const WEIGHTS_LEN: usize = 300_000;
/// LFS by size (over 1 MiB), not by extension.
pub const BIG_TEXT: &str = "sub/big.txt";
pub const BIG_TEXT_LEN: usize = 1_500_000;
pub const NESTED: &str = "sub/notes/readme.md";

pub struct Fixture {
    pub dir: TempDir,
    pub hub: TestHub,
    pub client: reqwest::Client,
}

impl Fixture {
    pub async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        build_repo(dir.path());
        let hub = TestHub::start(dir.path()).await.unwrap();
        Fixture { dir, hub, client: client() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hub.url())
    }

    pub fn resolve(&self, file: &str) -> String {
        self.url(&format!("/{REPO}/resolve/main/{file}"))
    }

    pub fn lfs(&self, file: &str) -> String {
        self.url(&format!("/_lfs/{REPO}/{}", sha256(&self.bytes(file))))
    }

    pub fn bytes(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(REPO).join(file)).unwrap()
    }
}

pub fn build_repo(root: &Path) {
    RepoBuilder::new(root, REPO)
        .file("config.json", CONFIG)
        .pattern_file(WEIGHTS, WEIGHTS_LEN as u64, 1)
        .pattern_file(BIG_TEXT, BIG_TEXT_LEN as u64, 2)
        .file(NESTED, "# notes\n")
        .build()
        .unwrap();
}

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub fn weights() -> Vec<u8> {
    pattern(WEIGHTS_LEN, 1)
}

pub fn git_sha1(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex::encode(h.finalize())
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).unwrap_or_else(|| panic!("missing header {name}")).to_str().unwrap()
}

/// Reads a body until it ends or fails: (bytes received, whether it failed).
pub async fn read_body(mut response: reqwest::Response) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk),
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}
