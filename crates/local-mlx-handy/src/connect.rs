//! The plan of field changes that connects Handy to local-mlx, and the one that puts
//! Handy's values back: data first (`Change`s), applied to the parsed store after.
//!
//! Only the [`Field`]s below are ever written; every other value in Handy's store,
//! API keys and unknown fields included, stays as parsed. A field already right is
//! left alone, so connecting twice changes nothing the second time. Each field is
//! judged as Handy reads it (a list with one entry Handy cannot parse is, to Handy,
//! its default list), so `connect` and `status` never disagree.
//!
//! `connect` records what it wrote ([`Record`]); `disconnect` puts a field back only
//! while it still holds exactly that, and leaves ([`Kept`]) what the user changed since.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::schema::{self, Binding, Prompt, Provider};

/// One value in Handy's settings that `connect` may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Advanced → "Experimental Features": shows the Post Processing toggle.
    ExperimentalEnabled,
    /// Advanced → Experimental → "Post Processing": shows the "Post Process" page and
    /// registers the post-process shortcut.
    PostProcessEnabled,
    /// The provider: `custom`.
    Provider,
    /// The Custom provider's base URL (its whole entry when Handy's list lacks it).
    CustomBaseUrl,
    /// The model chosen for the Custom provider.
    CustomModel,
    /// Handy's own clean-up prompt in the prompt list (added when the list lacks it).
    DefaultPrompt,
    /// The selected prompt: with none, Handy silently skips post-processing.
    SelectedPrompt,
    /// The keys of the "Transcribe with Post-Processing" shortcut.
    PostProcessShortcut,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::ExperimentalEnabled,
        Field::PostProcessEnabled,
        Field::Provider,
        Field::CustomBaseUrl,
        Field::CustomModel,
        Field::DefaultPrompt,
        Field::SelectedPrompt,
        Field::PostProcessShortcut,
    ];

    /// Where the value lives in `AppSettings`, for people.
    pub fn path(self) -> String {
        match self {
            Field::ExperimentalEnabled => schema::EXPERIMENTAL_ENABLED.into(),
            Field::PostProcessEnabled => schema::POST_PROCESS_ENABLED.into(),
            Field::Provider => schema::PROVIDER_ID.into(),
            Field::CustomBaseUrl => format!("{}[{}].base_url", schema::PROVIDERS, schema::CUSTOM_PROVIDER_ID),
            Field::CustomModel => format!("{}.{}", schema::MODELS, schema::CUSTOM_PROVIDER_ID),
            Field::DefaultPrompt => format!("{}[{}]", schema::PROMPTS, schema::DEFAULT_PROMPT_ID),
            Field::SelectedPrompt => schema::SELECTED_PROMPT_ID.into(),
            Field::PostProcessShortcut => {
                format!("{}.{}.{}", schema::BINDINGS, schema::POST_PROCESS_BINDING_ID, schema::CURRENT_BINDING)
            }
        }
    }

    /// The stored value, `None` when absent.
    pub fn get(self, settings: &Map<String, Value>) -> Option<Value> {
        match self {
            Field::ExperimentalEnabled | Field::PostProcessEnabled | Field::Provider | Field::SelectedPrompt => {
                settings.get(&self.path()).cloned()
            }
            Field::CustomBaseUrl => {
                entry(readable_list::<Provider>(settings, schema::PROVIDERS)?, schema::CUSTOM_PROVIDER_ID)?
                    .get("base_url")
                    .cloned()
            }
            Field::CustomModel => readable_models(settings)?.get(schema::CUSTOM_PROVIDER_ID).cloned(),
            Field::DefaultPrompt => {
                entry(readable_list::<Prompt>(settings, schema::PROMPTS)?, schema::DEFAULT_PROMPT_ID).cloned()
            }
            Field::PostProcessShortcut => settings
                .get(schema::BINDINGS)?
                .get(schema::POST_PROCESS_BINDING_ID)?
                .get(schema::CURRENT_BINDING)
                .cloned(),
        }
    }

    /// Write `value`, creating what holds it as Handy would (the Custom provider's
    /// default entry, the default binding), touching nothing beside it. `None` removes
    /// it: what Handy had when the backup lacked it (Handy then uses its default).
    /// A missing shortcut stays as it is: Handy adds the default binding itself.
    pub fn set(self, settings: &mut Map<String, Value>, value: Option<Value>) {
        let Some(value) = value else {
            self.remove(settings);
            return;
        };
        match self {
            Field::ExperimentalEnabled | Field::PostProcessEnabled | Field::Provider | Field::SelectedPrompt => {
                settings.insert(self.path(), value);
            }
            Field::CustomBaseUrl => {
                let list = readable_array_at::<Provider>(settings, schema::PROVIDERS);
                match entry_mut(list, schema::CUSTOM_PROVIDER_ID) {
                    Some(Value::Object(provider)) => {
                        provider.insert("base_url".into(), value);
                    }
                    _ => {
                        list.retain(|p| id_of(p) != Some(schema::CUSTOM_PROVIDER_ID));
                        let mut provider = schema::default_custom_provider();
                        provider["base_url"] = value;
                        list.push(provider);
                    }
                }
            }
            Field::CustomModel => {
                let models = object_at(settings, schema::MODELS);
                // Handy reads the map only when every model is a string.
                models.retain(|_, model| model.is_string());
                models.insert(schema::CUSTOM_PROVIDER_ID.into(), value);
            }
            Field::DefaultPrompt => {
                let list = readable_array_at::<Prompt>(settings, schema::PROMPTS);
                match entry_mut(list, schema::DEFAULT_PROMPT_ID) {
                    Some(prompt) => *prompt = value,
                    None => list.push(value),
                }
            }
            Field::PostProcessShortcut => {
                let bindings = object_at(settings, schema::BINDINGS);
                let binding = bindings
                    .entry(schema::POST_PROCESS_BINDING_ID)
                    .or_insert_with(schema::default_post_process_binding);
                if !binding.is_object() {
                    *binding = schema::default_post_process_binding();
                }
                binding[schema::CURRENT_BINDING] = value;
            }
        }
    }

    fn remove(self, settings: &mut Map<String, Value>) {
        match self {
            Field::ExperimentalEnabled | Field::PostProcessEnabled | Field::Provider | Field::SelectedPrompt => {
                settings.remove(&self.path());
            }
            Field::CustomBaseUrl => {
                if let Some(Value::Array(list)) = settings.get_mut(schema::PROVIDERS) {
                    list.retain(|p| id_of(p) != Some(schema::CUSTOM_PROVIDER_ID));
                }
            }
            Field::CustomModel => {
                if let Some(Value::Object(models)) = settings.get_mut(schema::MODELS) {
                    models.remove(schema::CUSTOM_PROVIDER_ID);
                }
            }
            Field::DefaultPrompt => {
                if let Some(Value::Array(list)) = settings.get_mut(schema::PROMPTS) {
                    list.retain(|p| id_of(p) != Some(schema::DEFAULT_PROMPT_ID));
                }
            }
            Field::PostProcessShortcut => {}
        }
    }
}

fn id_of(value: &Value) -> Option<&str> {
    value.get("id").and_then(Value::as_str)
}

/// The element of a list of `{id, …}` objects with this id.
fn entry<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|item| id_of(item) == Some(id))
}

fn entry_mut<'a>(list: &'a mut [Value], id: &str) -> Option<&'a mut Value> {
    list.iter_mut().find(|item| id_of(item) == Some(id))
}

fn readable<T: DeserializeOwned>(value: &Value) -> bool {
    T::deserialize(value).is_ok()
}

/// The list at `key` when Handy reads it: every entry parses as `T` (one that does
/// not makes Handy use its default list instead).
fn readable_list<'a, T: DeserializeOwned>(settings: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let list = settings.get(key)?;
    list.as_array()?.iter().all(readable::<T>).then_some(list)
}

/// The models map when Handy reads it: every model a string.
fn readable_models(settings: &Map<String, Value>) -> Option<&Map<String, Value>> {
    let models = settings.get(schema::MODELS)?.as_object()?;
    models.values().all(Value::is_string).then_some(models)
}

/// The list at `key` made one Handy reads: a list (made when absent or not one)
/// without the entries that do not parse as `T` (Handy would drop the whole list for
/// them; the backup keeps them).
fn readable_array_at<'a, T: DeserializeOwned>(settings: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = settings.entry(key).or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    let list = slot.as_array_mut().expect("made a list above");
    list.retain(readable::<T>);
    list
}

/// The object at `key`, made one when it is absent or not an object.
fn object_at<'a>(settings: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = settings.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("made an object above")
}

/// One planned write: the field, its value before (`None`: absent) and after. In
/// JSON an absent value is an absent member, so a stored `null` stays `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: Field,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub after: Option<Value>,
}

/// A member that is there is `Some`, `null` included (serde would make `null` `None`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Change {
    fn new(field: Field, settings: &Map<String, Value>, after: Option<Value>) -> Option<Change> {
        let before = field.get(settings);
        (before != after).then(|| Change { field, path: field.path(), before, after })
    }
}

/// Apply `changes` to Handy's settings object.
pub fn apply(settings: &mut Map<String, Value>, changes: &[Change]) {
    for change in changes {
        change.field.set(settings, change.after.clone());
    }
}

/// Handy's prompts as it reads them (its default list when the field is absent or
/// unreadable).
pub fn prompts(settings: &Map<String, Value>) -> Vec<Prompt> {
    let defaults = vec![Prompt {
        id: schema::DEFAULT_PROMPT_ID.into(),
        name: schema::DEFAULT_PROMPT_NAME.into(),
        prompt: schema::DEFAULT_PROMPT_TEXT.into(),
    }];
    schema::field(settings, schema::PROMPTS, defaults)
}

/// The prompt Handy would use: the selected one, when it exists and is not empty.
pub fn selected_prompt(settings: &Map<String, Value>) -> Option<Prompt> {
    let id: Option<String> = schema::field(settings, schema::SELECTED_PROMPT_ID, None);
    let id = id?;
    prompts(settings).into_iter().find(|p| p.id == id && !p.prompt.trim().is_empty())
}

/// The post-process binding as Handy reads it: the stored one, or the default Handy
/// merges in when the store lacks it (or its bindings do not parse).
pub fn post_process_binding(settings: &Map<String, Value>) -> Binding {
    let bindings: std::collections::HashMap<String, Binding> =
        schema::field(settings, schema::BINDINGS, Default::default());
    bindings.get(schema::POST_PROCESS_BINDING_ID).cloned().unwrap_or_else(|| {
        serde_json::from_value(schema::default_post_process_binding()).expect("the default binding parses")
    })
}

/// What connects Handy to the server at `url` with `model`: experimental features and
/// post-processing on, provider Custom at `url` with `model`, a prompt selected (Handy's
/// own clean-up prompt when none is), the post-process shortcut bound.
pub fn plan_connect(settings: &Map<String, Value>, url: &str, model: &str) -> Vec<Change> {
    let mut wanted = vec![
        (Field::ExperimentalEnabled, json!(true)),
        (Field::PostProcessEnabled, json!(true)),
        (Field::Provider, json!(schema::CUSTOM_PROVIDER_ID)),
        (Field::CustomBaseUrl, json!(url)),
        (Field::CustomModel, json!(model)),
    ];
    if selected_prompt(settings).is_none() {
        if !prompts(settings).iter().any(|p| p.id == schema::DEFAULT_PROMPT_ID) {
            wanted.push((Field::DefaultPrompt, schema::default_prompt()));
        }
        wanted.push((Field::SelectedPrompt, json!(schema::DEFAULT_PROMPT_ID)));
    }
    let binding = post_process_binding(settings);
    if binding.current_binding.trim().is_empty() {
        let keys = if binding.default_binding.trim().is_empty() {
            schema::default_post_process_binding()[schema::DEFAULT_BINDING].clone()
        } else {
            json!(binding.default_binding)
        };
        wanted.push((Field::PostProcessShortcut, keys));
    }
    wanted.into_iter().filter_map(|(field, value)| Change::new(field, settings, Some(value))).collect()
}

/// What `connect` wrote, saved beside its backup: the changes it made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub changes: Vec<Change>,
}

impl Record {
    /// The record of a store connected by a local-mlx that kept none: what `connect`
    /// would write into the `backup` with the base URL and model the store has now.
    pub fn guessed(settings: &Map<String, Value>, backup: &Map<String, Value>) -> Record {
        let now = |field: Field| field.get(settings).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        Record { changes: plan_connect(backup, &now(Field::CustomBaseUrl), &now(Field::CustomModel)) }
    }
}

/// A field `disconnect` left as it is: it no longer holds what `connect` wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kept {
    pub field: Field,
    pub path: String,
    /// What `connect` wrote.
    pub connected: Option<Value>,
    /// What it holds now (the user's choice).
    pub now: Option<Value>,
}

/// What puts back the values `connect` replaced, for each field that still holds what
/// it wrote; the fields changed since are left, listed as [`Kept`].
pub fn plan_disconnect(settings: &Map<String, Value>, record: &Record) -> (Vec<Change>, Vec<Kept>) {
    let mut changes = Vec::new();
    let mut kept = Vec::new();
    for wrote in &record.changes {
        let now = wrote.field.get(settings);
        // A binding absent before stays: Handy adds it on its own.
        if now == wrote.before || (wrote.before.is_none() && wrote.field == Field::PostProcessShortcut) {
            continue;
        }
        if now == wrote.after {
            changes.extend(Change::new(wrote.field, settings, wrote.before.clone()));
        } else {
            kept.push(Kept { field: wrote.field, path: wrote.path.clone(), connected: wrote.after.clone(), now });
        }
    }
    (changes, kept)
}

/// The model to connect: the one asked for, else the one Handy already has for Custom,
/// else the catalog's default, else the first downloaded; each must be downloaded.
pub fn choose_model(requested: Option<&str>, current: Option<&str>, downloaded: &[String]) -> Result<String> {
    let is_downloaded = |id: &str| downloaded.iter().any(|d| d == id);
    if let Some(id) = requested {
        return if is_downloaded(id) {
            Ok(id.to_string())
        } else {
            Err(local_mlx::Error::NotDownloaded { model_id: id.to_string() }.into())
        };
    }
    current
        .filter(|id| is_downloaded(id))
        .or_else(|| Some(local_mlx::DEFAULT_MODEL_ID).filter(|id| is_downloaded(id)))
        .or_else(|| downloaded.first().map(String::as_str))
        .map(str::to_string)
        .ok_or(Error::NoModelDownloaded { default_model: local_mlx::DEFAULT_MODEL_ID })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn an_empty_store_gets_every_field_and_a_second_plan_is_empty() {
        let mut s = settings(json!({}));
        let changes = plan_connect(&s, "http://localhost:8397/v1", "a/b");
        let fields: Vec<Field> = changes.iter().map(|c| c.field).collect();
        // Handy's default prompt list (absent field) already holds its prompt, and its
        // default binding (merged in by Handy) is bound.
        assert_eq!(
            fields,
            [
                Field::ExperimentalEnabled,
                Field::PostProcessEnabled,
                Field::Provider,
                Field::CustomBaseUrl,
                Field::CustomModel,
                Field::SelectedPrompt
            ]
        );
        apply(&mut s, &changes);
        assert_eq!(
            s["post_process_providers"],
            json!([{
                "id": "custom", "label": "Custom", "base_url": "http://localhost:8397/v1",
                "allow_base_url_edit": true, "models_endpoint": "/models", "supports_structured_output": false
            }])
        );
        assert!(plan_connect(&s, "http://localhost:8397/v1", "a/b").is_empty());
        let (undo, kept) = plan_disconnect(&s, &Record { changes });
        assert!(kept.is_empty());
        apply(&mut s, &undo);
        // The containers made for our values stay, empty: Handy fills in its defaults.
        assert_eq!(Value::Object(s), json!({"post_process_providers": [], "post_process_models": {}}));
    }

    #[test]
    fn an_unbound_shortcut_gets_its_default_keys_and_a_chosen_prompt_stays() {
        let s = settings(json!({
            "bindings": {"transcribe_with_post_process": {
                "id": "transcribe_with_post_process", "name": "n", "description": "d",
                "default_binding": "f13", "current_binding": ""}},
            "post_process_prompts": [{"id": "mine", "name": "Mine", "prompt": "Fix: ${output}"}],
            "post_process_selected_prompt_id": "mine"
        }));
        let changes = plan_connect(&s, "u", "m");
        let shortcut = changes.iter().find(|c| c.field == Field::PostProcessShortcut).unwrap();
        assert_eq!(shortcut.after, Some(json!("f13")));
        assert!(changes.iter().all(|c| !matches!(c.field, Field::SelectedPrompt | Field::DefaultPrompt)));
    }

    #[test]
    fn a_selected_prompt_that_is_gone_or_empty_is_replaced_by_handys_own() {
        for selected in ["gone", "blank"] {
            let s = settings(json!({
                "post_process_prompts": [{"id": "blank", "name": "Blank", "prompt": "  "}],
                "post_process_selected_prompt_id": selected
            }));
            let changes = plan_connect(&s, "u", "m");
            let added = changes.iter().find(|c| c.field == Field::DefaultPrompt).unwrap();
            assert_eq!(added.after.as_ref().unwrap()["id"], "default_improve_transcriptions");
            let chosen = changes.iter().find(|c| c.field == Field::SelectedPrompt).unwrap();
            assert_eq!(chosen.after, Some(json!("default_improve_transcriptions")));
        }
    }

    #[test]
    fn the_model_is_the_asked_one_then_handys_then_the_default_then_any_downloaded() {
        let downloaded = vec!["x/first".to_string(), local_mlx::DEFAULT_MODEL_ID.to_string(), "y/kept".into()];
        assert_eq!(choose_model(Some("x/first"), Some("y/kept"), &downloaded).unwrap(), "x/first");
        assert_eq!(choose_model(None, Some("y/kept"), &downloaded).unwrap(), "y/kept");
        assert_eq!(choose_model(None, Some("z/gone"), &downloaded).unwrap(), local_mlx::DEFAULT_MODEL_ID);
        assert_eq!(choose_model(None, None, &downloaded[..1]).unwrap(), "x/first");
        assert_eq!(choose_model(Some("z/gone"), None, &downloaded).unwrap_err().kind(), "not_downloaded");
        let none = choose_model(None, None, &[]).unwrap_err();
        assert_eq!(none.kind(), "no_model_downloaded");
        assert!(none.to_string().contains("local-mlx setup"), "{none}");
    }
}
