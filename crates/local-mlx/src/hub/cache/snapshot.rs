//! Reading a snapshot folder: its files and where its links point, whether it is
//! complete, how many bytes it holds.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Bytes of the files a snapshot's links point at.
pub(crate) fn snapshot_bytes(snapshot: &Path) -> u64 {
    walk(snapshot).iter().filter_map(|f| fs::metadata(f).ok()).map(|m| m.len()).sum()
}

/// A snapshot is usable when every link resolves, it has a `config.json` and weights,
/// and every shard its safetensors index names is present.
pub(super) fn snapshot_is_complete(dir: &Path) -> bool {
    let files = walk(dir);
    if files.is_empty() || files.iter().any(|f| fs::metadata(f).is_err()) {
        return false; // a dangling link: a blob was removed behind our back
    }
    let has = |name: &str| dir.join(name).is_file();
    let has_weights = files.iter().any(|f| f.extension().is_some_and(|e| e == "safetensors"));
    if !has("config.json") || !has_weights {
        return false;
    }
    match fs::read(dir.join("model.safetensors.index.json")) {
        Err(_) => true,
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|index| {
                let map = index.get("weight_map")?.as_object()?.clone();
                Some(map.values().filter_map(|v| v.as_str()).all(|shard| dir.join(shard).is_file()))
            })
            .unwrap_or(false),
    }
}

/// Every non-directory entry under `dir`, links included (not followed for folders).
pub(super) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = fs::read_dir(&current) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out
}

/// Where a snapshot's links point, resolved lexically against the link's folder.
pub(super) fn linked_targets(snapshot: &Path) -> HashSet<PathBuf> {
    walk(snapshot)
        .into_iter()
        .filter_map(|link| {
            let target = fs::read_link(&link).ok()?;
            let resolved = link.parent()?.join(target);
            Some(normalize(&resolved))
        })
        .collect()
}

/// Resolve `..` lexically (the blob may already be gone, so no `canonicalize`).
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
