//! Text helpers for messages: an error with its causes, remote text made safe to
//! print, byte counts for people. Below every other module; imports none of them.

/// An error and its causes, joined, each said once: reqwest's own message alone hides
/// the reason ("error sending request") while the cause says it ("connection refused"),
/// and our messages already end with their cause ("cannot create X: Not a directory"),
/// so a cause the text already holds is skipped. Faces print errors with this (the CLI
/// does), never by walking `source()` themselves.
pub fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// `url` without the `user:password@` a URL may carry (`HF_ENDPOINT` with basic-auth
/// credentials): every URL in a message goes through this, so a secret never reaches
/// a terminal, a log or a `--json` event. Text that is not a URL is kept as it is.
pub(crate) fn without_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}{}", &url[..authority_start], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// `text` with every control character escaped (`\u{1b}`, `\n`), the rest as is: remote
/// text (a hub's file name, a ref's content) cannot move a terminal's cursor, set its
/// title or forge lines once it sits in a message.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes as a short human string (`1.5 GB`), decimal units as download sizes are quoted.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}
