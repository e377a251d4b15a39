//! Hashing a partial file in file order as its bytes land.
//!
//! [`hash_in_order`] reads the partial file back from disk in file order, as far as
//! the written ranges reach, and waits for the parts to fill the next gap. Parts are
//! handed out in file order, so the hashed frontier trails the downloads by about
//! one part per connection and only that tail is left to hash when the last part
//! lands; a resumed file's bytes from an earlier run are hashed the same way.
//! Decision: bytes written exactly at the hashed frontier (one stream, the first part) are
//! hashed from memory by the writer as before parts existed; everything else (later
//! parts, bytes resumed from an earlier run) is read back through the page cache when
//! the frontier reaches it. Either way every byte is hashed once, in order.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::listing::Digest;
use super::partial::PartialBlob;
use super::transfer::Stop;
use super::verify::Hasher;

/// Bytes hashed per hand-off to the blocking pool.
const HASH_BLOCK: u64 = 4 << 20;

/// Hash the whole of `blob` in order as its bytes arrive; returns the hex digest.
pub(crate) async fn hash_in_order(
    blob: Arc<PartialBlob>,
    digest: &Digest,
    cancel: &CancellationToken,
) -> Result<String, Stop> {
    let size = blob.size();
    blob.begin_hash(Hasher::new(digest, size));
    let mut buffer = Vec::with_capacity(HASH_BLOCK as usize);
    loop {
        // Also between blocks: a resumed file can be gigabytes of local reading.
        if cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        let grown = blob.grown.notified();
        tokio::pin!(grown);
        // Registered before looking, so a write between the look and the wait wakes us.
        grown.as_mut().enable();
        let at = blob.hashed_to();
        if at >= size {
            break;
        }
        let end = blob.run_end(at).min(at + HASH_BLOCK);
        if end > at {
            let blob = blob.clone();
            let (returned, read) = tokio::task::spawn_blocking(move || {
                buffer.resize((end - at) as usize, 0);
                let read = blob.read_at(&mut buffer, at);
                if read.is_ok() {
                    blob.offer_to_hash(&buffer, at);
                }
                (buffer, read)
            })
            .await
            .expect("hashing does not panic");
            buffer = returned;
            read?;
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(Stop::Cancelled),
            _ = grown => {}
        }
    }
    Ok(blob.finish_hash().expect("the hash began above"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_written_out_of_order_are_hashed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let blob = Arc::new(PartialBlob::open(&dir.path().join("e.incomplete"), 6).unwrap());
        blob.record_parts().unwrap();
        let cancel = CancellationToken::new();
        let hashing = tokio::spawn({
            let blob = blob.clone();
            async move { hash_in_order(blob, &Digest::GitSha1(String::new()), &cancel).await.ok() }
        });
        blob.write_at(b"lo\n", 3).unwrap();
        tokio::task::yield_now().await;
        blob.write_at(b"hel", 0).unwrap();
        assert_eq!(hashing.await.unwrap().as_deref(), Some("ce013625030ba8dba906f756967f9e9ca394464a"));
    }
}
