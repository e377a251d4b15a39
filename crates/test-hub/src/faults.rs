//! Switchable faults: the list of [`Fault`]s armed on the hub, and how requests consume them.
//!
//! A fault is one JSON object (`{"kind": "reset_after", "bytes": 1000, "path": "model.safetensors",
//! "times": 1}`), the same from Rust and over `POST /_test/faults`, so a test driving a separate
//! process writes exactly what a Rust test would build. Filters (`repo`, `path`, `route`) narrow
//! which requests it hits; `times` counts the requests it has hit before it disarms itself.
//!
//! A request consumes only the faults it can act on: a `status` fault fires on any matching
//! request (HEAD included); body faults (`reset_after`, `stall_after`, `corrupt`,
//! `ignore_range`, `throttle`, `shift_range`) fire only on a GET that serves file bytes, so a HEAD or the 302
//! of an LFS file does not use up a `times: 1` meant for the download; `api_body` fires only on
//! API routes, and can also send a `Link` header, repeat its body forever or send headers and
//! then nothing (`mode`), the ways a hostile hub wastes a client's memory or time.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which family of routes a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `/api/models/...`: repo info and tree listings.
    Api,
    /// `/{org}/{name}/resolve/{rev}/{path}`.
    Resolve,
    /// `/_lfs/{org}/{name}/{sha256}`: the stand-in for the Hub's CDN.
    Lfs,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status and a JSON error body instead of the real answer.
    Status { status: u16 },
    /// Send `bytes` bytes of the body, then close the connection.
    ResetAfter { bytes: u64 },
    /// Send `bytes` bytes of the body, then nothing for `secs` seconds (forever if absent),
    /// keeping the connection open; after the stall the rest of the body follows.
    StallAfter {
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secs: Option<f64>,
    },
    /// Flip (xor 0xFF) the byte at this absolute file offset in whatever part is served.
    Corrupt { offset: u64 },
    /// Answer 200 with the whole file even when a Range was asked, like some mirrors.
    IgnoreRange,
    /// Send the body at no more than this rate.
    Throttle { bytes_per_sec: u64 },
    /// Answer a ranged request with bytes `by` later than asked, under a `Content-Range`
    /// that says so: a client must notice and never write them at the offset it asked for.
    ShiftRange { by: u64 },
    /// Replace an API answer: HTML, truncated JSON, a hostile tree listing...
    ApiBody {
        body: String,
        #[serde(default = "default_content_type")]
        content_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// A `Link` header to send with it (`<url>; rel="next"` paginates).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
        #[serde(default, skip_serializing_if = "ApiBodyMode::is_once")]
        mode: ApiBodyMode,
    },
}

/// How an `api_body` fault sends its body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiBodyMode {
    /// The body, once.
    #[default]
    Once,
    /// The body again and again, never ending.
    Endless,
    /// The headers, then nothing, with the connection held open.
    Silent,
}

impl ApiBodyMode {
    fn is_once(&self) -> bool {
        *self == ApiBodyMode::Once
    }
}

fn default_content_type() -> String {
    "application/json".to_string()
}

/// One armed fault: what it does and which requests it hits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// `org/name`; absent = every repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Repo-relative file path (or, on `/_lfs`, the sha256); absent = every file.
    /// On API routes the path is the endpoint: `revision` (repo info) or `tree`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// How many more requests it applies to; absent = forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl Fault {
    fn new(kind: FaultKind) -> Self {
        Fault { kind, repo: None, path: None, route: None, times: None }
    }

    pub fn status(status: u16) -> Self {
        Self::new(FaultKind::Status { status })
    }

    pub fn reset_after(bytes: u64) -> Self {
        Self::new(FaultKind::ResetAfter { bytes })
    }

    /// `None` stalls until the client gives up (or the hub shuts down).
    pub fn stall_after(bytes: u64, duration: Option<Duration>) -> Self {
        Self::new(FaultKind::StallAfter { bytes, secs: duration.map(|d| d.as_secs_f64()) })
    }

    pub fn corrupt(offset: u64) -> Self {
        Self::new(FaultKind::Corrupt { offset })
    }

    pub fn ignore_range() -> Self {
        Self::new(FaultKind::IgnoreRange)
    }

    pub fn throttle(bytes_per_sec: u64) -> Self {
        Self::new(FaultKind::Throttle { bytes_per_sec })
    }

    pub fn shift_range(by: u64) -> Self {
        Self::new(FaultKind::ShiftRange { by })
    }

    /// Answer API routes with `body` (status 200 unless changed with [`Fault::with_status`]).
    pub fn api_body(body: impl Into<String>, content_type: impl Into<String>) -> Self {
        Self::new(FaultKind::ApiBody {
            body: body.into(),
            content_type: content_type.into(),
            status: None,
            link: None,
            mode: ApiBodyMode::Once,
        })
    }

    /// Sets the status of an `api_body` fault; no effect on other kinds.
    pub fn with_status(mut self, status: u16) -> Self {
        if let FaultKind::ApiBody { status: s, .. } = &mut self.kind {
            *s = Some(status);
        }
        self
    }

    /// Sends this `Link` header with an `api_body` fault; no effect on other kinds.
    pub fn with_link(mut self, link: impl Into<String>) -> Self {
        if let FaultKind::ApiBody { link: l, .. } = &mut self.kind {
            *l = Some(link.into());
        }
        self
    }

    /// Sends an `api_body` fault's body this way; no effect on other kinds.
    pub fn with_mode(mut self, mode: ApiBodyMode) -> Self {
        if let FaultKind::ApiBody { mode: m, .. } = &mut self.kind {
            *m = mode;
        }
        self
    }

    pub fn on_repo(mut self, repo: impl Into<String>) -> Self {
        self.repo = Some(repo.into());
        self
    }

    pub fn on_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn on_route(mut self, route: Route) -> Self {
        self.route = Some(route);
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    fn hits(&self, target: &Target<'_>) -> bool {
        self.route.is_none_or(|route| route == target.route)
            && self.repo.as_deref().is_none_or(|repo| repo == target.repo)
            && self.path.as_deref().is_none_or(|path| target.paths.contains(&path))
    }

    fn is_body_fault(&self) -> bool {
        !matches!(self.kind, FaultKind::Status { .. } | FaultKind::ApiBody { .. })
    }
}

/// The request a fault is matched against.
pub(crate) struct Target<'a> {
    pub route: Route,
    pub repo: &'a str,
    /// Every name the requested file goes by (its repo path; on `/_lfs` also its sha256).
    pub paths: &'a [&'a str],
}

/// The body faults one GET drew, combined.
#[derive(Clone, Debug, Default)]
pub(crate) struct BodyPlan {
    pub reset_after: Option<u64>,
    /// (after how many body bytes, for how long; `None` = forever)
    pub stall_after: Option<(u64, Option<Duration>)>,
    pub corrupt: Vec<u64>,
    pub ignore_range: bool,
    pub bytes_per_sec: Option<u64>,
    /// Serve ranged answers this many bytes later than asked (0: as asked).
    pub shift_range: u64,
}

pub(crate) struct ApiBody {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub link: Option<String>,
    pub mode: ApiBodyMode,
}

#[derive(Default)]
pub(crate) struct Faults {
    armed: Mutex<Vec<Fault>>,
}

impl Faults {
    pub fn set(&self, faults: Vec<Fault>) {
        *self.armed.lock().expect("faults lock") = faults;
    }

    pub fn list(&self) -> Vec<Fault> {
        self.armed.lock().expect("faults lock").clone()
    }

    /// Consumes the first matching `status` fault.
    pub fn take_status(&self, target: &Target<'_>) -> Option<u16> {
        self.take_first(target, |kind| match kind {
            FaultKind::Status { status } => Some(*status),
            _ => None,
        })
    }

    /// Consumes the first matching `api_body` fault (API routes only).
    pub fn take_api_body(&self, target: &Target<'_>) -> Option<ApiBody> {
        self.take_first(target, |kind| match kind {
            FaultKind::ApiBody { body, content_type, status, link, mode } => Some(ApiBody {
                status: status.unwrap_or(200),
                content_type: content_type.clone(),
                body: body.clone(),
                link: link.clone(),
                mode: *mode,
            }),
            _ => None,
        })
    }

    /// Consumes every matching body fault and combines them.
    pub fn take_body_plan(&self, target: &Target<'_>) -> BodyPlan {
        let mut plan = BodyPlan::default();
        let mut armed = self.armed.lock().expect("faults lock");
        for fault in armed.iter_mut() {
            if !fault.is_body_fault() || !fault.hits(target) {
                continue;
            }
            match &fault.kind {
                FaultKind::ResetAfter { bytes } => {
                    plan.reset_after = Some(plan.reset_after.map_or(*bytes, |b| b.min(*bytes)));
                }
                FaultKind::StallAfter { bytes, secs } => {
                    plan.stall_after = Some((*bytes, secs.map(Duration::from_secs_f64)));
                }
                FaultKind::Corrupt { offset } => plan.corrupt.push(*offset),
                FaultKind::IgnoreRange => plan.ignore_range = true,
                FaultKind::Throttle { bytes_per_sec } => plan.bytes_per_sec = Some(*bytes_per_sec),
                FaultKind::ShiftRange { by } => plan.shift_range = *by,
                FaultKind::Status { .. } | FaultKind::ApiBody { .. } => unreachable!(),
            }
            use_once(fault);
        }
        armed.retain(|fault| fault.times != Some(0));
        plan
    }

    fn take_first<T>(&self, target: &Target<'_>, pick: impl Fn(&FaultKind) -> Option<T>) -> Option<T> {
        let mut armed = self.armed.lock().expect("faults lock");
        let index = armed.iter().position(|fault| fault.hits(target) && pick(&fault.kind).is_some())?;
        let picked = pick(&armed[index].kind);
        use_once(&mut armed[index]);
        if armed[index].times == Some(0) {
            armed.remove(index);
        }
        picked
    }
}

fn use_once(fault: &mut Fault) {
    if let Some(times) = &mut fault.times {
        *times = times.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(route: Route, paths: &'a [&'a str]) -> Target<'a> {
        Target { route, repo: "org/name", paths }
    }

    #[test]
    fn faults_read_the_documented_json() {
        let json = r#"[
            {"kind": "status", "status": 503, "route": "api", "times": 2},
            {"kind": "reset_after", "bytes": 10, "path": "model.safetensors"},
            {"kind": "stall_after", "bytes": 5, "secs": 0.5, "repo": "org/name"},
            {"kind": "corrupt", "offset": 7},
            {"kind": "ignore_range"},
            {"kind": "throttle", "bytes_per_sec": 1000},
            {"kind": "api_body", "body": "<html>", "content_type": "text/html"},
            {"kind": "api_body", "body": "[", "link": "<http://x/>; rel=\"next\"", "mode": "endless"},
            {"kind": "shift_range", "by": 4096}
        ]"#;
        let faults: Vec<Fault> = serde_json::from_str(json).unwrap();
        assert_eq!(faults[0], Fault::status(503).on_route(Route::Api).times(2));
        assert_eq!(faults[1], Fault::reset_after(10).on_path("model.safetensors"));
        assert_eq!(faults[2], Fault::stall_after(5, Some(Duration::from_millis(500))).on_repo("org/name"));
        assert_eq!(faults[6], Fault::api_body("<html>", "text/html"));
        assert_eq!(
            faults[7],
            Fault::api_body("[", "application/json")
                .with_link("<http://x/>; rel=\"next\"")
                .with_mode(ApiBodyMode::Endless)
        );
        assert_eq!(faults[8], Fault::shift_range(4096));
        let round_trip: Vec<Fault> = serde_json::from_str(&serde_json::to_string(&faults).unwrap()).unwrap();
        assert_eq!(round_trip, faults);
    }

    #[test]
    fn a_fault_with_times_disarms_itself() {
        let faults = Faults::default();
        faults.set(vec![Fault::status(500).times(2)]);
        let t = target(Route::Resolve, &["a"]);
        assert_eq!(faults.take_status(&t), Some(500));
        assert_eq!(faults.take_status(&t), Some(500));
        assert_eq!(faults.take_status(&t), None);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn body_faults_are_not_used_up_by_status_checks() {
        let faults = Faults::default();
        faults.set(vec![Fault::reset_after(3).times(1)]);
        let t = target(Route::Lfs, &["x"]);
        assert_eq!(faults.take_status(&t), None);
        assert_eq!(faults.take_body_plan(&t).reset_after, Some(3));
        assert_eq!(faults.take_body_plan(&t).reset_after, None);
    }

    #[test]
    fn path_and_route_filters_narrow_the_hits() {
        let faults = Faults::default();
        faults.set(vec![Fault::status(500).on_path("a").on_route(Route::Lfs)]);
        assert_eq!(faults.take_status(&target(Route::Resolve, &["a"])), None);
        assert_eq!(faults.take_status(&target(Route::Lfs, &["b"])), None);
        assert_eq!(faults.take_status(&target(Route::Api, &[])), None);
        assert_eq!(faults.take_status(&target(Route::Lfs, &["sha", "a"])), Some(500));
    }
}
