//! From a conversation to prompt token ids, as the sidecar makes them: the repo's chat
//! template (tokenizer_config.json, rendered like transformers' apply_chat_template,
//! thinking off), then tokenizer.json without added special tokens; and back to text.
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use minijinja::{Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::constrain::Piece;
use crate::error::{Error, Result};

/// One message of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

pub struct Prompter {
    tokenizer: tokenizers::Tokenizer,
    template: Option<String>,
    /// bos_token, eos_token, ... as the template sees them.
    special: Vec<(String, String)>,
    pub eos_token_ids: BTreeSet<u32>,
    /// transformers' `clean_up_tokenization_spaces` (it changes how a token decodes alone).
    clean_up_spaces: bool,
    /// additional_special_tokens (special for the constraint, as in transformers).
    additional_special: Vec<String>,
}

/// A special token in tokenizer_config.json: a string or `{"content": ...}`.
fn token_text(v: &Json) -> Option<String> {
    v.as_str().map(str::to_string).or_else(|| v.get("content")?.as_str().map(str::to_string))
}

impl Prompter {
    /// Read `dir`'s tokenizer.json and tokenizer_config.json; `config_eos` is config's
    /// `eos_token_id` (the tokenizer's own eos token is added, as in mlx-lm).
    pub fn read(dir: &Path, config_eos: &[u32]) -> Result<Prompter> {
        let path = dir.join("tokenizer.json");
        let tokenizer = tokenizers::Tokenizer::from_file(&path).map_err(|e| {
            Error::Tokenizer(format!("{}: {e} (the native engine reads tokenizer.json only)", path.display()))
        })?;
        let config_path = dir.join("tokenizer_config.json");
        let config: Json = match std::fs::read_to_string(&config_path) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| Error::Tokenizer(format!("{}: {e}", config_path.display())))?
            }
            Err(_) => Json::Null,
        };
        let mut template = config.get("chat_template").and_then(Json::as_str).map(str::to_string);
        if let Ok(text) = std::fs::read_to_string(dir.join("chat_template.jinja")) {
            template = Some(text);
        }
        let mut special = Vec::new();
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            if let Some(text) = config.get(key).and_then(token_text) {
                special.push((key.to_string(), text));
            }
        }
        let mut eos_token_ids: BTreeSet<u32> = config_eos.iter().copied().collect();
        if let Some(eos) = config.get("eos_token").and_then(token_text) {
            eos_token_ids.extend(tokenizer.token_to_id(&eos));
        }
        let clean_up_spaces = config.get("clean_up_tokenization_spaces").and_then(Json::as_bool).unwrap_or(false);
        let additional_special = config
            .get("additional_special_tokens")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(token_text).collect())
            .unwrap_or_default();
        Ok(Prompter { tokenizer, template, special, eos_token_ids, clean_up_spaces, additional_special })
    }

    /// The text the model sees: the chat template with a generation prompt and thinking
    /// off; a template that rejects the system role gets it folded into the first user
    /// message (the sidecar's `_fold_system`). Without a template: the contents joined.
    pub fn render(&self, messages: &[Message]) -> Result<String> {
        let Some(template) = &self.template else {
            return Ok(messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n\n"));
        };
        match self.apply(template, messages) {
            Ok(text) => Ok(text),
            Err(e) if messages.iter().any(|m| m.role == "system") => {
                self.apply(template, &fold_system(messages)).map_err(|_| Error::Template(e))
            }
            Err(e) => Err(Error::Template(e)),
        }
    }

    fn apply(&self, template: &str, messages: &[Message]) -> std::result::Result<String, String> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template("chat", template).map_err(|e| e.to_string())?;
        let mut ctx: std::collections::BTreeMap<String, Value> =
            self.special.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
        ctx.insert("messages".into(), Value::from_serialize(messages));
        ctx.insert("add_generation_prompt".into(), Value::from(true));
        ctx.insert("enable_thinking".into(), Value::from(false));
        env.get_template("chat").and_then(|t| t.render(ctx)).map_err(|e| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        })
    }

    /// Token ids of `text` (rendered already: no special tokens are added when the
    /// model has a chat template, as in the sidecar).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let add_special = self.template.is_none();
        let encoding = self.tokenizer.encode(text, add_special).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, false).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Every token's [`Piece`] for the transcript constraint, `None` for special and
    /// added tokens: each decoded alone, as constrain.py's `_pieces` has transformers do.
    pub fn pieces(&self) -> Result<Vec<Option<Piece>>> {
        let mut special: HashSet<u32> = self.tokenizer.get_added_tokens_decoder().into_keys().collect();
        let names = self.special.iter().map(|(_, text)| text).chain(&self.additional_special);
        special.extend(names.filter_map(|text| self.tokenizer.token_to_id(text)));
        (0..self.tokenizer.get_vocab_size(true) as u32)
            .map(|id| {
                if special.contains(&id) {
                    return Ok(None);
                }
                let mut text = self.decode(&[id])?;
                if self.clean_up_spaces {
                    text = clean_up_tokenization(&text);
                }
                // SentencePiece drops a token's leading space when it is decoded alone;
                // its vocabulary marks it with "▁", and that space is a word boundary.
                if self.tokenizer.id_to_token(id).is_some_and(|raw| raw.starts_with('▁')) {
                    text.insert(0, ' ');
                }
                Ok(Some(Piece::new(&text)))
            })
            .collect()
    }
}

/// The conversation with its system messages put before the first user message.
fn fold_system(messages: &[Message]) -> Vec<Message> {
    let system: Vec<&str> = messages.iter().filter(|m| m.role == "system").map(|m| m.content.as_str()).collect();
    let system = system.join("\n\n");
    let mut rest: Vec<Message> = messages.iter().filter(|m| m.role != "system").cloned().collect();
    match rest.iter_mut().find(|m| m.role == "user") {
        Some(first) => first.content = format!("{system}\n\n{}", first.content),
        None => rest.insert(0, Message { role: "user".into(), content: system }),
    }
    rest
}

/// transformers' `clean_up_tokenization`: the spaces English tokenizers put before
/// punctuation and contractions, removed.
fn clean_up_tokenization(text: &str) -> String {
    const REPLACEMENTS: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    REPLACEMENTS.into_iter().fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}
