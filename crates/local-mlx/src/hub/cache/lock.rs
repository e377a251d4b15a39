//! The cross-process lock on one repo ([`RepoLock`]).

use std::fs;
use std::path::PathBuf;

use super::CachedRepo;
use crate::error::{Error, Result};

/// A cross-process advisory lock on one repo: shared while a download or a generation
/// uses it, exclusive while it is deleted, so `rm` in one process cannot pull files
/// from under a `pull` or a generation in another.
///
/// Why `flock` on `.locks/models--org--name.lock`: the kernel drops the lock when the
/// holder dies, so a crash never leaves a stale lock (unlike a pid file); the cache
/// already serializes blob writers with flock files under `.locks/` as
/// `huggingface_hub` does; and the file sits beside, not inside, the folders a delete
/// removes, so nobody ever locks an unlinked file while a newcomer locks a fresh one.
/// It is advisory: tools that ignore it (`rm -rf`) are noticed afterwards instead.
#[derive(Debug)]
pub struct RepoLock {
    _file: fs::File,
}

impl RepoLock {
    /// Take the shared lock, waiting while a delete holds it (a delete takes moments).
    pub fn shared(repo: &CachedRepo) -> Result<Self> {
        let (file, path) = Self::open(repo)?;
        file.lock_shared().map_err(|e| Error::io("lock", path, e))?;
        Ok(RepoLock { _file: file })
    }

    /// The exclusive lock, or `None` while another process uses the repo.
    pub fn try_exclusive(repo: &CachedRepo) -> Result<Option<Self>> {
        let (file, path) = Self::open(repo)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RepoLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
        }
    }

    fn open(repo: &CachedRepo) -> Result<(fs::File, PathBuf)> {
        let path = repo.repo_lock_path();
        let parent = path.parent().expect("lock has a parent");
        fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open the lock file", &path, e))?;
        Ok((file, path))
    }
}
