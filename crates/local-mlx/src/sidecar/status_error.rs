//! A non-2xx answer of the sidecar (or a stream's error event) as the [`SidecarError`] a
//! user can act on: its status and its `{"detail": ...}` text.

use std::path::Path;

use super::SidecarError;

/// The error for a non-2xx answer (or a stream's error event).
pub(super) fn status_error(what: &'static str, status: u16, detail: &str, load_path: Option<&Path>) -> SidecarError {
    let detail = detail.trim().trim_end_matches('.').to_string();
    match (status, load_path) {
        (401, _) => SidecarError::Unauthorized,
        (409, _) => SidecarError::NoModelLoaded,
        (503, _) => SidecarError::Busy { detail },
        (400, Some(path)) => SidecarError::ModelLoad { path: path.to_path_buf(), detail },
        (400 | 422, _) => SidecarError::BadRequest { detail },
        (status, _) => SidecarError::Http { what, status, detail },
    }
}

/// `{"detail": "..."}`'s text, or the body itself when it is not that.
pub(super) fn detail_of(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => match map.get("detail") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => body.to_string(),
        },
        _ if body.trim().is_empty() => "no details given".into(),
        _ => body.chars().take(500).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_statuses_map_to_what_a_user_understands() {
        let path = Path::new("/m");
        assert!(matches!(status_error("t", 401, "x", None), SidecarError::Unauthorized));
        assert!(matches!(status_error("t", 409, "x", None), SidecarError::NoModelLoaded));
        assert!(matches!(status_error("t", 503, "queue full", None), SidecarError::Busy { .. }));
        assert!(matches!(status_error("t", 400, "no config.json", Some(path)), SidecarError::ModelLoad { .. }));
        assert!(matches!(status_error("t", 400, "max_tokens", None), SidecarError::BadRequest { .. }));
        assert!(matches!(status_error("t", 500, "boom", None), SidecarError::Http { status: 500, .. }));
        assert_eq!(detail_of(r#"{"detail": "bad thing."}"#), "bad thing.");
        assert_eq!(detail_of("plain"), "plain");
    }
}
