//! What Handy needs before it post-processes with local-mlx, as data: one
//! [`Requirement`] per step, met or not, with the fix in Handy's own words (its labels
//! at the commit `schema` names). `local-mlx handy status` prints them; the desktop
//! app could show them.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::connect::{post_process_binding, selected_prompt};
use crate::schema::{self, Provider};
use local_mlx::postprocess::tagged_transcript;
use local_mlx::read_small_json;

/// One step, met (`ok`) or not, said for a person; `fix` says what to do when not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// Stable: `handy_found`, `post_processing`, `provider`, `base_url`, `server`,
    /// `model`, `prompt`, `shortcut`. (Handy's "Experimental Features" is none of them:
    /// it only shows the Post Processing switch; Handy post-processes with it off.)
    pub id: &'static str,
    pub ok: bool,
    pub what: String,
    pub fix: Option<String>,
}

impl Requirement {
    fn new(id: &'static str, ok: bool, what: String, fix: impl Into<String>) -> Requirement {
        Requirement { id, ok, what, fix: (!ok).then(|| fix.into()) }
    }
}

/// How to get Handy, for the line that says it is missing.
pub const INSTALL_HANDY: &str = "install Handy from https://handy.computer (macOS: `brew install --cask handy`), \
open it once and quit it; a portable Handy: pass --handy-dir <its Data folder>";

/// What the server at a base URL answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerProbe {
    /// `GET /health` answered as local-mlx does, else why not.
    pub health: Result<(), String>,
    /// `GET {url}/models` with Handy's key: the model ids, else why not.
    pub models: Result<Vec<String>, String>,
}

/// Ask the server at `url` (a base URL ending in `/v1`) for `/health` and, with `key`
/// when Handy has one for Custom, `/models`. Each question waits 10 s at most and reads
/// at most [`MAX_SMALL_ANSWER_BYTES`](local_mlx::MAX_SMALL_ANSWER_BYTES).
pub async fn probe_server(url: &str, key: Option<&str>) -> ServerProbe {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).no_proxy().build() {
        Ok(client) => client,
        Err(e) => {
            let reason = format!("no HTTP client: {e}");
            return ServerProbe { health: Err(reason.clone()), models: Err(reason) };
        }
    };
    let base = url.trim_end_matches('/');
    let root = base.strip_suffix("/v1").unwrap_or(base);
    let health = async {
        let health_url = format!("{root}/health");
        let response = client.get(&health_url).send().await.map_err(|e| reason(&health_url, &e))?;
        if !response.status().is_success() {
            return Err(format!("{health_url} answered HTTP {}", response.status().as_u16()));
        }
        let body = read_small_json(response)
            .await
            .map_err(|e| format!("{health_url} did not answer as local-mlx does: {e}"))?;
        match body.get("status").and_then(Value::as_str) {
            Some(_) => Ok(()),
            None => Err(format!("{health_url} did not answer as local-mlx does (another server on that port?)")),
        }
    }
    .await;
    let models = async {
        let models_url = format!("{base}/models");
        let mut request = client.get(&models_url);
        if let Some(key) = key.filter(|k| !k.trim().is_empty()) {
            request = request.bearer_auth(key.trim());
        }
        let response = request.send().await.map_err(|e| reason(&models_url, &e))?;
        match response.status().as_u16() {
            200 => {}
            401 => {
                return Err("the server wants an API key: paste the one given to `local-mlx serve --api-key` (or \
                     LOCAL_MLX_API_KEY) in Handy's API Key field"
                    .into())
            }
            status => return Err(format!("{models_url} answered HTTP {status}")),
        }
        let body = read_small_json(response).await.map_err(|e| format!("{models_url} sent no model list: {e}"))?;
        let ids = body["data"].as_array().map(|models| {
            models.iter().filter_map(|m| m.get("id").and_then(Value::as_str)).map(str::to_string).collect()
        });
        ids.ok_or_else(|| format!("{models_url} sent no model list"))
    }
    .await;
    ServerProbe { health, models }
}

/// `nothing answers at <url> (Connection refused (os error 111))`: the innermost cause.
fn reason(url: &str, error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("nothing answers at {url} ({cause})")
}

/// `option+shift+space` as the keys to press: `Option+Shift+Space`.
pub fn keys_to_press(binding: &str) -> String {
    binding
        .split('+')
        .map(|key| {
            let mut chars = key.trim().chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// The keys of Handy's "Transcribe with Post-Processing" shortcut, `None` when unbound.
pub fn post_process_keys(settings: &Map<String, Value>) -> Option<String> {
    let binding = post_process_binding(settings);
    let keys = binding.current_binding.trim();
    (!keys.is_empty()).then(|| keys_to_press(keys))
}

/// Where Handy shows the post-processing settings each fix names.
const PAGE: &str = "sidebar → \"Post Process\"";

/// Every requirement, given Handy's settings, the server's base URL and what it answered.
pub fn check(settings: &Map<String, Value>, url: &str, server: &ServerProbe) -> Vec<Requirement> {
    let mut checks = provider_steps(settings, url);
    checks.push(server_step(url, server));
    checks.push(model_step(settings, server));
    checks.push(prompt_step(settings));
    checks.push(shortcut_step(settings));
    checks
}

/// Post-processing on, the provider Custom, Custom's base URL this server's.
fn provider_steps(settings: &Map<String, Value>, url: &str) -> Vec<Requirement> {
    let enabled: bool = schema::field(settings, schema::POST_PROCESS_ENABLED, false);
    let provider: String = schema::field(settings, schema::PROVIDER_ID, schema::DEFAULT_PROVIDER_ID.to_string());
    let providers: Vec<Provider> = schema::field(settings, schema::PROVIDERS, Vec::new());
    let base_url = providers
        .iter()
        .find(|p| p.id == schema::CUSTOM_PROVIDER_ID)
        .map(|p| p.base_url.clone())
        .unwrap_or_else(|| schema::default_custom_provider()["base_url"].as_str().unwrap_or_default().to_string());
    vec![
        Requirement::new(
            "post_processing",
            enabled,
            format!("post-processing {}", on_off(enabled)),
            "in Handy: Settings → Advanced → \"Experimental Features\" on, then \"Post Processing\" on (the \
             sidebar then shows \"Post Process\"; Experimental Features may go off again after)",
        ),
        Requirement::new(
            "provider",
            provider == schema::CUSTOM_PROVIDER_ID,
            format!("provider {provider}"),
            format!("in Handy: {PAGE} → Provider: Custom"),
        ),
        Requirement::new(
            "base_url",
            same_url(&base_url, url),
            format!("Custom's base URL {base_url}"),
            format!("in Handy: {PAGE} → Base URL: {url}, then \"Refresh models\" (a new URL clears the model)"),
        ),
    ]
}

/// The server answers `/health` and, with Handy's key, `/models`.
fn server_step(url: &str, server: &ServerProbe) -> Requirement {
    match (&server.health, &server.models) {
        (Ok(()), Ok(_)) => Requirement::new("server", true, format!("local-mlx answers at {url}"), ""),
        (Err(why), _) => Requirement::new(
            "server",
            false,
            format!("local-mlx does not answer at {url}: {why}"),
            "run `local-mlx service install` (serves it at login), or start `local-mlx serve` and keep it running",
        ),
        (Ok(()), Err(why)) => Requirement::new(
            "server",
            false,
            format!("local-mlx answers /health at {url} but not /models: {why}"),
            "give Handy the server's key (Post Process → API Key), or restart the server",
        ),
    }
}

/// Custom's model chosen, and one the server lists.
fn model_step(settings: &Map<String, Value>, server: &ServerProbe) -> Requirement {
    let models: std::collections::HashMap<String, String> = schema::field(settings, schema::MODELS, Default::default());
    let model = models.get(schema::CUSTOM_PROVIDER_ID).map(|m| m.trim()).unwrap_or_default();
    let pick = format!("in Handy: {PAGE} → \"Refresh models\" → Model");
    match &server.models {
        _ if model.is_empty() => Requirement::new("model", false, "no model chosen for Custom".into(), pick),
        Ok(listed) if listed.iter().any(|id| id == model) => {
            Requirement::new("model", true, format!("model {model}, served"), "")
        }
        Ok(listed) => Requirement::new(
            "model",
            false,
            format!("model {model} is not one the server lists ({})", listed.join(", ")),
            format!("{pick}, or `local-mlx pull {model}`"),
        ),
        Err(_) => Requirement::new(
            "model",
            false,
            format!("model {model}: not checked, the server does not answer"),
            "start the server, then check again",
        ),
    }
}

/// A prompt selected (Handy skips post-processing without one), and whether the
/// server's check applies to it.
fn prompt_step(settings: &Map<String, Value>) -> Requirement {
    match selected_prompt(settings) {
        Some(prompt) => {
            let checked = tagged_transcript(&prompt.prompt).is_some();
            let note = if checked {
                "it wraps the transcript in <transcript> tags, so the server's clean-up check judges every answer"
            } else {
                "it does not wrap the transcript in <transcript> tags, so answers pass unchecked (Handy's \
                 \"Improve Transcriptions\" does)"
            };
            Requirement::new("prompt", true, format!("prompt \"{}\" selected; {note}", prompt.name), "")
        }
        None => Requirement::new(
            "prompt",
            false,
            "no prompt selected: Handy skips post-processing without one".into(),
            format!("in Handy: {PAGE} → Selected Prompt: \"Improve Transcriptions\""),
        ),
    }
}

/// The "Transcribe with Post-Processing" shortcut bound.
fn shortcut_step(settings: &Map<String, Value>) -> Requirement {
    match post_process_keys(settings) {
        Some(keys) => Requirement::new(
            "shortcut",
            true,
            format!("press {keys} to dictate with post-processing (the Transcribe shortcut never post-processes)"),
            "",
        ),
        None => Requirement::new(
            "shortcut",
            false,
            "the \"Transcribe with Post-Processing\" shortcut is not bound".into(),
            format!("in Handy: {PAGE} → Hotkey: press the keys to use"),
        ),
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim().trim_end_matches('/').eq_ignore_ascii_case(b.trim().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_read_as_keys_to_press() {
        assert_eq!(keys_to_press("option+shift+space"), "Option+Shift+Space");
        assert_eq!(keys_to_press("ctrl+shift+space"), "Ctrl+Shift+Space");
        assert_eq!(keys_to_press("f13"), "F13");
    }

    #[test]
    fn a_fresh_store_fails_every_step_but_the_shortcut_and_says_how() {
        let up = ServerProbe { health: Ok(()), models: Ok(vec!["a/b".into()]) };
        let checks = check(&Map::new(), "http://localhost:8397/v1", &up);
        let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.id).collect();
        assert_eq!(failed, ["post_processing", "provider", "base_url", "model", "prompt"]);
        assert!(checks.iter().all(|c| c.ok == c.fix.is_none()));
        let base = checks.iter().find(|c| c.id == "base_url").unwrap();
        assert!(base.what.contains("11434") && base.fix.as_ref().unwrap().contains("Refresh models"), "{base:?}");
    }

    /// Handy gates post-processing (its page, shortcut and call) on
    /// `post_process_enabled` alone: "Experimental Features" off does not stop it.
    #[test]
    fn experimental_features_off_is_not_a_missing_step() {
        let up = ServerProbe { health: Ok(()), models: Ok(vec!["a/b".into()]) };
        let url = "http://localhost:8397/v1";
        let mut settings = Map::new();
        let changes = crate::connect::plan_connect(&settings, url, "a/b");
        crate::connect::apply(&mut settings, &changes);
        settings.insert(schema::EXPERIMENTAL_ENABLED.into(), Value::Bool(false));
        let checks = check(&settings, url, &up);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    }
}
