//! The TypeScript this crate exports: no type name Handy already exports (Handy's debug
//! build panics when specta-typescript meets two types of one name), and the wire format
//! of the core's types as the JSON the core really sends.

use specta_typescript::{BigIntExportBehavior, Typescript};

/// Every type Handy's `src/bindings.ts` exports, at cjpais/Handy commit
/// 0e5036721ef6f26c3b89ab31bc10cd2ffd6096fb (`grep -o '^export type [A-Za-z]*'`).
const HANDY_TYPE_NAMES: &[&str] = &[
    "AppSettings",
    "AudioDevice",
    "AutoSubmitKey",
    "AvailableAccelerators",
    "BindingResponse",
    "ClipboardHandling",
    "CustomSounds",
    "EngineType",
    "GpuDeviceOption",
    "HistoryEntry",
    "HistoryUpdatePayload",
    "ImplementationChangeResult",
    "KeyboardDiagnosticReport",
    "KeyboardImplementation",
    "LLMPrompt",
    "LogLevel",
    "ModelInfo",
    "ModelLoadStatus",
    "ModelSource",
    "ModelUnloadTimeout",
    "OrtAcceleratorSetting",
    "OverlayPosition",
    "OverlayStyle",
    "PaginatedHistory",
    "PasteMethod",
    "PermissionAccess",
    "PostProcessProvider",
    "RecordingRetentionPeriod",
    "SecretMap",
    "SecureInputStatus",
    "ShortcutBinding",
    "SoundTheme",
    "StreamPhase",
    "StreamPhaseEvent",
    "StreamTextEvent",
    "StreamWorkKind",
    "Theme",
    "TranscribeAcceleratorSetting",
    "TypingTool",
    "WindowsMicrophonePermissionStatus",
    "Result",
];

/// Exported the way Handy exports (`bigint(BigIntExportBehavior::Number)`).
fn bindings() -> String {
    local_mlx_tauri::specta_builder::<tauri::Wry>()
        .export_str(Typescript::default().bigint(BigIntExportBehavior::Number))
        .expect("the bindings export")
}

/// The names after `export type`.
fn exported_type_names(ts: &str) -> Vec<&str> {
    ts.lines()
        .filter_map(|line| line.strip_prefix("export type "))
        .map(|rest| rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or_default())
        .collect()
}

#[test]
fn no_exported_type_name_is_one_handy_exports() {
    let ts = bindings();
    let names = exported_type_names(&ts);
    assert!(names.contains(&"MlxModelInfo") && names.contains(&"MlxCommandError"), "export parsed wrongly: {names:?}");
    // `Result<T, E>` is tauri-specta's own helper, written once per export: Handy's
    // builder holding our commands still has one.
    let clashes: Vec<&str> = names.iter().copied().filter(|n| *n != "Result" && HANDY_TYPE_NAMES.contains(n)).collect();
    assert!(clashes.is_empty(), "types Handy also exports (prefix them `Mlx`): {clashes:?}\n{ts}");
}

/// The text of one exported type, from `export type NAME` to the next top-level item
/// (without the doc comment of that next item; field docs sit inside the type).
fn type_text<'a>(ts: &'a str, name: &str) -> &'a str {
    let start = ts.find(&format!("export type {name} ")).unwrap_or_else(|| panic!("{name} is not exported:\n{ts}"));
    let rest = &ts[start..];
    let mut text = rest[1..].find("\nexport ").map_or(rest, |i| &rest[..i + 1]);
    if let Some(doc) = text.rfind("\n/**") {
        if text[doc..].trim_end().ends_with("*/") {
            text = &text[..doc];
        }
    }
    text
}

#[test]
fn the_typescript_says_what_the_core_sends() {
    let ts = bindings();

    // Skipped when `None`, so absent, never `null`: optional in TypeScript.
    let event = type_text(&ts, "MlxModelStateEvent");
    for field in ["progress?: number", "error?: string", "total_bytes?: number", "phase?: MlxLoadPhase"] {
        assert!(event.contains(field), "{field} missing in {event}");
    }
    assert!(!event.contains("null"), "{event}");
    let json = serde_json::to_value(local_mlx::MlxModelStateEvent::new(local_mlx::EventType::Unloaded, "a/b")).unwrap();
    assert_eq!(json, serde_json::json!({"event_type": "unloaded", "model_id": "a/b"}));

    let status = type_text(&ts, "MlxModelStatus");
    assert!(status.contains("snapshot_path?: string") && status.contains("state: MlxModelState"), "{status}");
    assert!(!status.contains("null"), "{status}");
    // The rules' answers as `{ kind, message }`, the kind a frontend branches on.
    for field in ["delete_blocked?: MlxRefusal", "disk_warning?: MlxRefusal", "download_blocked?: MlxRefusal"] {
        assert!(status.contains(field), "{field} missing in {status}");
    }
    let refusal = type_text(&ts, "MlxRefusal");
    assert!(refusal.contains("kind: MlxErrorKind") && refusal.contains("message: string"), "{refusal}");

    // Not skipped: an unset uv path is sent as `null`.
    let settings = type_text(&ts, "MlxSettings");
    assert!(settings.contains("uv_path: string | null"), "{settings}");
    let json = serde_json::to_value(local_mlx::settings::MlxSettings::default()).unwrap();
    assert!(json["uv_path"].is_null());

    // The unload timeouts under serde's names (`min2`, not specta's `min_2`).
    let timeout = type_text(&ts, "MlxModelUnloadTimeout");
    for value in local_mlx::settings::ModelUnloadTimeout::ALL {
        let name = serde_json::to_string(&value).unwrap();
        assert!(timeout.contains(&name), "{name} missing in {timeout}");
    }

    // Paths as strings.
    assert!(type_text(&ts, "MlxDownloadOutcome").contains("snapshot: string"), "{ts}");

    // One event, on the provider's channel, typed as the core's event (no second type).
    assert!(ts.contains(r#"mlxModelStateEvent: "mlx-model-state-event""#), "{ts}");
    assert!(ts.contains("mlxModelStateEvent: MlxModelStateEvent"), "{ts}");
    assert_eq!(exported_type_names(&ts).iter().filter(|n| **n == "MlxModelStateEvent").count(), 1, "{ts}");
}
