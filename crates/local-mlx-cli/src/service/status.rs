//! `service status`: installed, running, answering, and at which version ([`Probe`]);
//! `setup`'s note when the service runs another version than this binary.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use super::health::{ask_health, base_url, health_url};
use super::layout::{Layout, Manager};

/// What the installed service answers at `/health`: its URL and the answer.
struct Probe {
    url: String,
    health: Result<serde_json::Value, String>,
}

impl Probe {
    /// `None` when the service file is missing or names no program.
    async fn of(layout: &Layout, text: &str) -> Option<Probe> {
        let args = layout.installed_args(text)?;
        let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        let host = value("--host").unwrap_or_else(|| "localhost".into());
        let port = value("--port").and_then(|p| p.parse().ok()).unwrap_or(local_mlx_server::DEFAULT_PORT);
        Some(Probe { url: base_url(&host, port), health: ask_health(&health_url(&host, port)).await })
    }

    /// When the server answering runs another version than this binary: what to do.
    fn version_note(&self) -> Option<String> {
        let running = self.health.as_ref().ok()?["version"].as_str().unwrap_or("(too old to say)");
        let ours = crate::VERSION;
        if running == ours {
            return None;
        }
        let how = match version_order(running, ours) {
            Some(std::cmp::Ordering::Less) => "older than",
            Some(std::cmp::Ordering::Greater) => "newer than",
            _ => "not",
        };
        Some(format!(
            "the service runs local-mlx {running}, {how} the installed {ours}: `local-mlx service restart` runs the installed one"
        ))
    }
}

/// The order of two `X.Y.Z (commit …)` versions by their numbers; `None` when one has none.
fn version_order(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let numbers =
        |v: &str| -> Option<Vec<u64>> { v.split_whitespace().next()?.split('.').map(|n| n.parse().ok()).collect() };
    Some(numbers(a)?.cmp(&numbers(b)?))
}

pub(super) async fn status(layout: &Layout, json: bool) -> Result<ExitCode> {
    let text = match std::fs::read_to_string(&layout.service_file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", layout.service_file.display())),
    };
    let running = layout.running();
    let probe = match &text {
        Some(text) => Probe::of(layout, text).await,
        None => None,
    };
    let health = probe.as_ref().and_then(|p| p.health.as_ref().ok());
    let note = probe.as_ref().and_then(Probe::version_note);
    if json {
        println!(
            "{}",
            json!({
                "installed": text.is_some(),
                "running": running.as_ref().ok(),
                "url": probe.as_ref().map(|p| &p.url),
                "healthy": health.is_some(),
                "health": health.map(|h| h["status"].as_str().unwrap_or("answered")),
                "version": health.map(|h| &h["version"]),
                "installed_version": crate::VERSION,
                "version_note": note,
                "file": layout.service_file,
                "log": layout.log_hint(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    match &text {
        Some(_) => println!("installed: yes ({})", layout.service_file.display()),
        None => {
            println!("installed: no (no {}; `local-mlx service install` installs it)", layout.service_file.display())
        }
    }
    match &running {
        Ok(true) => println!("running:   yes"),
        Ok(false) => println!("running:   no"),
        Err(reason) => println!("running:   unknown ({})", reason.reason()),
    }
    if let Some(probe) = &probe {
        println!("url:       {}", probe.url);
        match &probe.health {
            Ok(state) => println!(
                "health:    answers ({}, local-mlx {})",
                state["status"].as_str().unwrap_or("answered"),
                state["version"].as_str().unwrap_or("of an unknown version")
            ),
            Err(error) => println!("health:    not answering ({error})"),
        }
    }
    if let Some(note) = &note {
        println!("note:      {note}");
    }
    if text.is_some() {
        println!("log:       {}", layout.log_hint());
    }
    Ok(ExitCode::SUCCESS)
}

/// For `setup`: when the installed service answers with another version than this
/// binary, what to do about it; `None` otherwise (or when there is no service).
pub async fn stale_service_note() -> Option<String> {
    let layout = Layout::new(Manager::chosen().ok()?).ok()?;
    let text = std::fs::read_to_string(&layout.service_file).ok()?;
    Probe::of(&layout, &text).await?.version_note()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_their_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(version_order("0.1.0 (commit a)", "0.2.0 (commit b)"), Some(Less));
        assert_eq!(version_order("0.10.0", "0.9.9 (commit b)"), Some(Greater));
        assert_eq!(version_order("0.1.0 (commit a)", "0.1.0 (commit b)"), Some(Equal));
        assert_eq!(version_order("(too old to say)", "0.1.0"), None);
    }
}
