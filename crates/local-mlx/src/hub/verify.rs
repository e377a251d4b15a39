//! Verifying a blob: every byte hashed (sha256 for LFS files, git's blob sha1 for the
//! rest) before it may be renamed into place.
//!
//! [`Hasher`] is the digest state; [`super::in_order`] feeds it the partial file in order.

use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::listing::Digest;

/// Incremental sha256, or git's blob sha1 (`"blob <len>\0"` then the bytes).
#[derive(Debug)]
pub(crate) enum Hasher {
    Sha256(Sha256),
    GitSha1(Sha1),
}

impl Hasher {
    pub(crate) fn new(digest: &Digest, size: u64) -> Self {
        match digest {
            Digest::Sha256(_) => Hasher::Sha256(Sha256::new()),
            Digest::GitSha1(_) => {
                let mut sha1 = Sha1::new();
                sha1.update(format!("blob {size}\0").as_bytes());
                Hasher::GitSha1(sha1)
            }
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::GitSha1(h) => h.update(bytes),
        }
    }

    pub(crate) fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::GitSha1(h) => hex::encode(h.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sha1_matches_git_hash_object() {
        // `printf 'hello\n' | git hash-object --stdin`
        let mut h = Hasher::new(&Digest::GitSha1(String::new()), 6);
        h.update(b"hel");
        h.update(b"lo\n");
        assert_eq!(h.finish(), "ce013625030ba8dba906f756967f9e9ca394464a");
    }
}
