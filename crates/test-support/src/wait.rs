//! Waiting for a condition the code under test gives no signal for (a file appearing, a
//! process gone), bounded so that a hang fails instead of stalling the suite.

use std::time::{Duration, Instant};

/// Poll `condition` until it holds; panic naming `what` after a minute and a half (a
/// hang, not a slow machine).
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
