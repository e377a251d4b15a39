//! What the workspace's tests and benchmarks share, beside the fake hub (`test-hub`).
//!
//! [`fixture`] builds (or finds, cached) the fixture models of `tools/build_fixtures.py`;
//! [`wait_until`] waits for a condition a test cannot be told about; [`process_alive`] and
//! [`kill_group`] look at and end processes; [`tree`] and [`files_under`] list a folder.
//! A key design decision is that nothing here measures time: a wait is bounded by a generous
//! deadline that only turns a hang into a failure, so no test asserts how long anything took.

mod files;
mod fixtures;
mod process;
mod wait;

pub use files::{files_under, tree};
pub use fixtures::{fixture, workspace_root, Fixture};
pub use process::{kill_group, process_alive};
pub use wait::wait_until;
