//! Handy's store written back with every value we did not change exactly as it was
//! read: the text of each untouched member is copied, not re-printed from a parsed
//! value. serde_json's `Value` keeps an integer beyond 64 bits only as a float (and so
//! would write `1e20` for `100000000000000000000`); a copied member keeps its digits
//! and its type. The members a plan changed are printed from their new values.
//!
//! [`AsRead`] holds the text of each member of the store's root and of its `settings`
//! object; [`AsRead::write`] puts a member's text back when the parsed member is still
//! equal to what that text parses to.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::schema::SETTINGS_KEY;

/// The text of each member of the store's root and of its `settings`.
#[derive(Debug, Clone)]
pub(crate) struct AsRead {
    root: BTreeMap<String, Box<RawValue>>,
    settings: BTreeMap<String, Box<RawValue>>,
}

impl AsRead {
    /// The members' text of a store that parsed as an object with a `settings` object.
    pub(crate) fn read(bytes: &[u8]) -> Option<AsRead> {
        let root: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(bytes).ok()?;
        let settings = serde_json::from_str(root.get(SETTINGS_KEY)?.get()).ok()?;
        Some(AsRead { root, settings })
    }

    /// `root` as JSON (pretty or compact), each unchanged member as its text.
    pub(crate) fn write(&self, root: &Map<String, Value>, pretty: bool) -> Vec<u8> {
        let object = Object { members: root, text: &self.root, settings: Some(&self.settings) };
        if pretty { serde_json::to_vec_pretty(&object) } else { serde_json::to_vec(&object) }
            .expect("JSON values serialize")
    }
}

/// An object to write: its members, and the text they were read as.
struct Object<'a> {
    members: &'a Map<String, Value>,
    text: &'a BTreeMap<String, Box<RawValue>>,
    /// The `settings` member's own members' text (only the root has it).
    settings: Option<&'a BTreeMap<String, Box<RawValue>>>,
}

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len()))?;
        for (key, value) in self.members {
            match (key.as_str(), value, self.settings) {
                (SETTINGS_KEY, Value::Object(members), Some(text)) => {
                    map.serialize_entry(key, &Object { members, text, settings: None })?
                }
                _ => match self.text.get(key).filter(|text| unchanged(text, value)) {
                    Some(text) => map.serialize_entry(key, text)?,
                    None => map.serialize_entry(key, value)?,
                },
            }
        }
        map.end()
    }
}

/// Whether `text` still reads as `value`.
fn unchanged(text: &RawValue, value: &Value) -> bool {
    serde_json::from_str::<Value>(text.get()).is_ok_and(|read| read == *value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_members_keep_their_text_and_changed_ones_are_printed() {
        let text = br#"{"other": {"big": 123456789012345678901234567890}, "settings": {"big": 18446744073709551616, "n": 1.0, "x": 1}}"#;
        let as_read = AsRead::read(text).unwrap();
        let mut root: Map<String, Value> = serde_json::from_slice(text).unwrap();
        root["settings"]["x"] = Value::from(2);
        let written = String::from_utf8(as_read.write(&root, false)).unwrap();
        assert_eq!(
            written,
            r#"{"other":{"big": 123456789012345678901234567890},"settings":{"big":18446744073709551616,"n":1.0,"x":2}}"#
        );
    }
}
