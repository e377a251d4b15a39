//! The Hub protocol as our clients see it: JSON shapes, headers, redirects, ranges, 404s.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use test_hub::{Config, RepoBuilder, TestHub};

async fn json(fx: &Fixture, path: &str) -> Value {
    let response = fx.client.get(fx.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn revision_info_has_the_commit_and_every_file_as_sibling() {
    let fx = Fixture::start().await;
    let info = json(&fx, "/api/models/org/tiny/revision/main").await;
    let commit = fx.hub.commit(REPO).await.unwrap();
    assert_eq!(info["id"], REPO);
    assert_eq!(info["modelId"], REPO);
    assert_eq!(info["sha"], commit.as_str());
    assert_eq!(commit.len(), 40);
    assert!(commit.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(info["private"], false);
    assert_eq!(info["gated"], false);
    assert_eq!(info["disabled"], false);
    let siblings: Vec<&str> =
        info["siblings"].as_array().unwrap().iter().map(|s| s["rfilename"].as_str().unwrap()).collect();
    assert_eq!(siblings, ["config.json", WEIGHTS, BIG_TEXT, NESTED]);
}

#[tokio::test]
async fn info_without_revision_is_main_and_the_commit_sha_is_a_revision() {
    let fx = Fixture::start().await;
    let commit = fx.hub.commit(REPO).await.unwrap();
    let info = json(&fx, "/api/models/org/tiny").await;
    assert_eq!(info["sha"], commit.as_str());
    let info = json(&fx, &format!("/api/models/org/tiny/revision/{commit}")).await;
    assert_eq!(info["sha"], commit.as_str());
}

#[tokio::test]
async fn info_with_blobs_lists_sizes_and_lfs_hashes() {
    let fx = Fixture::start().await;
    let info = json(&fx, "/api/models/org/tiny/revision/main?blobs=true").await;
    let config = &info["siblings"][0];
    assert_eq!(config["size"], CONFIG.len());
    assert_eq!(config["blobId"], git_sha1(CONFIG).as_str());
    assert!(config.get("lfs").is_none());
    let weights = &info["siblings"][1];
    assert_eq!(weights["lfs"]["sha256"], sha256(&common::weights()).as_str());
    assert_eq!(weights["lfs"]["size"], WEIGHTS_LEN);
}

#[tokio::test]
async fn commit_changes_when_a_file_changes_and_the_old_one_is_gone() {
    let fx = Fixture::start().await;
    let before = fx.hub.commit(REPO).await.unwrap();
    assert_eq!(fx.hub.commit(REPO).await.unwrap(), before, "deterministic");
    RepoBuilder::new(fx.dir.path(), REPO).file("config.json", b"{\"model_type\": \"llama\"}\n").build().unwrap();
    let after = fx.hub.commit(REPO).await.unwrap();
    assert_ne!(after, before);
    let response = fx.client.get(fx.url(&format!("/api/models/org/tiny/revision/{before}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&response, "x-error-code"), "RevisionNotFound");
}

#[tokio::test]
async fn recursive_tree_lists_files_folders_and_lfs_info() {
    let fx = Fixture::start().await;
    let commit = fx.hub.commit(REPO).await.unwrap();
    let tree = json(&fx, &format!("/api/models/org/tiny/tree/{commit}?recursive=true")).await;
    let entries = tree.as_array().unwrap();
    let paths: Vec<(&str, &str)> =
        entries.iter().map(|e| (e["type"].as_str().unwrap(), e["path"].as_str().unwrap())).collect();
    assert_eq!(
        paths,
        [
            ("file", "config.json"),
            ("file", WEIGHTS),
            ("directory", "sub"),
            ("file", BIG_TEXT),
            ("directory", "sub/notes"),
            ("file", NESTED),
        ]
    );
    let config = &entries[0];
    assert_eq!(config["oid"], git_sha1(CONFIG).as_str());
    assert_eq!(config["size"], CONFIG.len());
    assert!(config.get("lfs").is_none());
    let weights = &entries[1];
    assert_eq!(weights["size"], WEIGHTS_LEN);
    assert_eq!(weights["lfs"]["oid"], sha256(&common::weights()).as_str());
    assert_eq!(weights["lfs"]["size"], WEIGHTS_LEN);
    assert_eq!(weights["lfs"]["pointerSize"], 131);
    // The Hub's `oid` of an LFS file is the git id of its pointer file, not of the content.
    let pointer = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {WEIGHTS_LEN}\n",
        sha256(&common::weights())
    );
    assert_eq!(weights["oid"], git_sha1(pointer.as_bytes()).as_str());
    assert_eq!(entries[3]["lfs"]["size"], BIG_TEXT_LEN, "LFS by size alone");
    assert!(entries[2]["oid"].as_str().unwrap().len() == 40);
}

#[tokio::test]
async fn tree_of_a_folder_lists_its_children_and_plain_tree_is_one_level() {
    let fx = Fixture::start().await;
    let root = json(&fx, "/api/models/org/tiny/tree/main").await;
    let paths: Vec<&str> = root.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["config.json", WEIGHTS, "sub"]);
    // huggingface_hub sends the folder percent-encoded, slashes included.
    for path in ["/api/models/org/tiny/tree/main/sub", "/api/models/org/tiny/tree/main/sub%2Fnotes"] {
        let listing = json(&fx, path).await;
        assert!(!listing.as_array().unwrap().is_empty(), "{path}");
    }
    let sub = json(&fx, "/api/models/org/tiny/tree/main/sub").await;
    let paths: Vec<&str> = sub.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, [BIG_TEXT, "sub/notes"]);
    let missing = fx.client.get(fx.url("/api/models/org/tiny/tree/main/nope")).send().await.unwrap();
    assert_eq!(header(&missing, "x-error-code"), "EntryNotFound");
}

#[tokio::test]
async fn head_of_a_small_file_has_commit_git_etag_and_length() {
    let fx = Fixture::start().await;
    let response = fx.client.head(fx.resolve("config.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-repo-commit"), fx.hub.commit(REPO).await.unwrap());
    assert_eq!(header(&response, "etag"), format!("\"{}\"", git_sha1(CONFIG)));
    assert_eq!(header(&response, "content-length"), CONFIG.len().to_string());
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    let body = fx.client.get(fx.resolve(NESTED)).send().await.unwrap();
    assert_eq!(body.bytes().await.unwrap().as_ref(), b"# notes\n");
}

#[tokio::test]
async fn head_of_an_lfs_file_is_a_302_carrying_the_linked_etag_and_size() {
    let fx = Fixture::start().await;
    let sha = sha256(&common::weights());
    for request in [fx.client.head(fx.resolve(WEIGHTS)), fx.client.get(fx.resolve(WEIGHTS))] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(header(&response, "location"), fx.url(&format!("/_lfs/{REPO}/{sha}")));
        assert_eq!(header(&response, "x-repo-commit"), fx.hub.commit(REPO).await.unwrap());
        assert_eq!(header(&response, "x-linked-etag"), format!("\"{sha}\""));
        assert_eq!(header(&response, "x-linked-size"), WEIGHTS_LEN.to_string());
        assert_eq!(header(&response, "etag"), format!("\"{sha}\""));
        assert_eq!(header(&response, "content-length"), "0");
    }
    // The redirect names the host the client used, as the Hub's CDN URLs are absolute.
    let port = fx.hub.addr().port();
    let response = fx.client.head(format!("http://localhost:{port}/{REPO}/resolve/main/{BIG_TEXT}")).send().await;
    if let Ok(response) = response {
        assert!(header(&response, "location").starts_with(&format!("http://localhost:{port}/_lfs/")));
    }
}

#[tokio::test]
async fn lfs_url_serves_the_bytes_with_the_sha256_etag() {
    let fx = Fixture::start().await;
    let weights = common::weights();
    let head = fx.client.head(fx.lfs(WEIGHTS)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "etag"), format!("\"{}\"", sha256(&weights)));
    assert_eq!(header(&head, "content-length"), WEIGHTS_LEN.to_string());
    // huggingface_hub follows a same-host redirect on HEAD and needs the commit here too.
    assert_eq!(header(&head, "x-repo-commit"), fx.hub.commit(REPO).await.unwrap());
    let get = fx.client.get(fx.lfs(WEIGHTS)).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.bytes().await.unwrap().as_ref(), weights.as_slice());
    let big = fx.client.get(fx.lfs(BIG_TEXT)).send().await.unwrap();
    assert_eq!(big.bytes().await.unwrap().len(), BIG_TEXT_LEN);
}

#[tokio::test]
async fn a_range_gets_206_with_content_range_on_resolve_and_lfs() {
    let fx = Fixture::start().await;
    let weights = common::weights();
    let cases = [
        (fx.resolve("config.json"), "bytes=2-6", CONFIG[2..=6].to_vec(), format!("bytes 2-6/{}", CONFIG.len())),
        (
            fx.lfs(WEIGHTS),
            "bytes=1000-",
            weights[1000..].to_vec(),
            format!("bytes 1000-{}/{WEIGHTS_LEN}", WEIGHTS_LEN - 1),
        ),
        (
            fx.lfs(WEIGHTS),
            "bytes=-10",
            weights[WEIGHTS_LEN - 10..].to_vec(),
            format!("bytes {}-{}/{WEIGHTS_LEN}", WEIGHTS_LEN - 10, WEIGHTS_LEN - 1),
        ),
    ];
    for (url, range, expected, content_range) in cases {
        let response = fx.client.get(&url).header("range", range).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&response, "content-range"), content_range);
        assert_eq!(header(&response, "content-length"), expected.len().to_string());
        assert_eq!(response.bytes().await.unwrap().to_vec(), expected, "{range}");
    }
}

#[tokio::test]
async fn a_range_past_the_end_gets_416_with_the_size() {
    let fx = Fixture::start().await;
    for url in [fx.resolve("config.json"), fx.lfs(WEIGHTS)] {
        let size = if url.contains("_lfs") { WEIGHTS_LEN } else { CONFIG.len() };
        let response = fx.client.get(&url).header("range", format!("bytes={size}-")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(header(&response, "content-range"), format!("bytes */{size}"));
    }
}

#[tokio::test]
async fn unknown_repo_revision_and_file_get_their_404_codes() {
    let fx = Fixture::start().await;
    let commit = fx.hub.commit(REPO).await.unwrap();
    let cases = [
        ("/api/models/org/nope/revision/main", "RepoNotFound"),
        ("/org/nope/resolve/main/config.json", "RepoNotFound"),
        ("/api/models/org/tiny/revision/v9", "RevisionNotFound"),
        ("/org/tiny/resolve/v9/config.json", "RevisionNotFound"),
        ("/org/tiny/resolve/main/nope.json", "EntryNotFound"),
        ("/_lfs/org/tiny/0000", "EntryNotFound"),
    ];
    for (path, code) in cases {
        let response = fx.client.get(fx.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&response, "x-error-code"), code, "{path}");
        if code == "EntryNotFound" {
            assert_eq!(header(&response, "x-repo-commit"), commit);
        }
        let body: Value = response.json().await.unwrap();
        if code == "RepoNotFound" {
            assert_eq!(body["error"], "Repository not found");
        }
    }
}

#[tokio::test]
async fn a_required_token_is_checked_except_on_lfs_and_admin_routes() {
    let dir = tempfile::tempdir().unwrap();
    build_repo(dir.path());
    let hub = TestHub::start_with(Config::new(dir.path()).require_token("hf_secret")).await.unwrap();
    let client = client();
    let info = format!("{}/api/models/{REPO}", hub.url());
    let file = format!("{}/{REPO}/resolve/main/config.json", hub.url());
    for url in [&info, &file] {
        let bare = client.get(url).send().await.unwrap();
        assert_eq!(bare.status(), StatusCode::UNAUTHORIZED, "{url}");
        let wrong = client.get(url).bearer_auth("hf_other").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{url}");
        let right = client.get(url).bearer_auth("hf_secret").send().await.unwrap();
        assert_eq!(right.status(), StatusCode::OK, "{url}");
    }
    let lfs = format!("{}/_lfs/{REPO}/{}", hub.url(), sha256(&common::weights()));
    assert_eq!(client.get(lfs).send().await.unwrap().status(), StatusCode::OK);
    let stats = format!("{}/_test/stats", hub.url());
    assert_eq!(client.get(stats).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn repos_added_after_start_are_served() {
    let fx = Fixture::start().await;
    RepoBuilder::new(fx.dir.path(), "other/late").file("a.txt", "a").build().unwrap();
    let info = json(&fx, "/api/models/other/late").await;
    assert_eq!(info["siblings"][0]["rfilename"], "a.txt");
}
