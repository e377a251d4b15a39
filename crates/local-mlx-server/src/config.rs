//! [`ServerConfig`]: what the server enforces, and [`ApiKey`], the secret it checks.
//!
//! The key is its own type so it can never be logged by accident (its `Debug` prints
//! `<redacted>`) and is only ever compared in constant time, so a client cannot learn
//! it byte by byte from response times. It is read from where no other local user can
//! see it ([`ApiKey::from_cli`]): the environment, stdin (`--api-key -`) or a file
//! (`--api-key-file`), since a key given as an argument shows in everyone's `ps`.

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use subtle::ConstantTimeEq;

use crate::listen::{is_localhost, BindError};

/// The port `local-mlx serve` listens on by default: free of Ollama (11434), LM Studio
/// (1234), `mlx_lm.server` (8080) and Flask (5000), so they can all run side by side.
pub const DEFAULT_PORT: u16 = 8397;

/// The largest request body accepted (a transcript is at most 20,000 characters; this
/// leaves room for a long system prompt and chat history, and refuses junk early).
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Chat requests running or waiting at once; more are refused with 503 and
/// `Retry-After` instead of piling up unbounded while one model answers them in turn.
pub const DEFAULT_MAX_QUEUED: usize = 8;

#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// `None` for an empty key: an empty `LOCAL_MLX_API_KEY` means no key, as in Handy.
    pub fn new(key: impl Into<String>) -> Option<ApiKey> {
        let key = key.into();
        (!key.is_empty()).then_some(ApiKey(key))
    }

    /// The key `local-mlx serve` was given: `--api-key VALUE` (or `LOCAL_MLX_API_KEY`),
    /// where `-` reads it from `stdin`, or `--api-key-file PATH`; at most one of them.
    /// A key read from stdin or a file is its first line and may not be empty.
    pub fn from_cli(arg: Option<&str>, file: Option<&Path>, stdin: impl Read) -> Result<Option<ApiKey>, KeyError> {
        match (arg, file) {
            (Some(_), Some(_)) => Err(KeyError::Both),
            (Some("-"), None) => read_key(stdin, "stdin").map(Some),
            (Some(key), None) => Ok(ApiKey::new(key)),
            (None, Some(path)) => {
                let from = format!("--api-key-file {}", path.display());
                let file = std::fs::File::open(path).map_err(|source| KeyError::Read { from: from.clone(), source })?;
                read_key(file, &from).map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    /// The key itself, for where it must be written (a login service's 0600 file).
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is the key, in time that depends only on the lengths.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// More than any key: a file or stream longer than this is not a key file.
const MAX_KEY_BYTES: u64 = 4096;

/// The first line of `input` as a key.
fn read_key(input: impl Read, from: &str) -> Result<ApiKey, KeyError> {
    let mut bytes = Vec::new();
    input
        .take(MAX_KEY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| KeyError::Read { from: from.to_string(), source })?;
    if bytes.len() as u64 > MAX_KEY_BYTES {
        return Err(KeyError::Invalid { from: from.to_string(), reason: "it is longer than 4 KiB" });
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| KeyError::Invalid { from: from.to_string(), reason: "it is not UTF-8 text" })?;
    let key = text.lines().next().unwrap_or_default().trim();
    if key.chars().any(char::is_control) {
        return Err(KeyError::Invalid { from: from.to_string(), reason: "it holds a control character" });
    }
    ApiKey::new(key).ok_or(KeyError::Invalid { from: from.to_string(), reason: "its first line is empty" })
}

/// Why the API key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("give the API key one way: --api-key (or LOCAL_MLX_API_KEY) or --api-key-file, not both")]
    Both,
    #[error("cannot read the API key from {from}: {source}")]
    Read {
        from: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the API key from {from} cannot be used: {reason}; put the key alone on the first line")]
    Invalid { from: String, reason: &'static str },
}

/// Which `Host` headers are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPolicy {
    /// Only loopback names and addresses: a web page whose domain an attacker re-points
    /// at 127.0.0.1 (DNS rebinding) sends its own name as Host and is refused.
    LoopbackOnly,
    /// Any Host: the server listens beyond this machine, where clients use its LAN name
    /// or address, and the API key (required then) is the guard.
    Any,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub api_key: Option<ApiKey>,
    pub host_policy: HostPolicy,
    pub max_body_bytes: usize,
    pub max_queued: usize,
    /// Check answers to prompts that wrap a transcript in `<transcript>` tags as
    /// clean-ups of it, and answer with the transcript itself when one fails (an
    /// answered question, a followed instruction, a ramble): on by default, off for
    /// prompts that translate or rewrite (`--no-clean-up-check`).
    pub check_clean_up: bool,
    /// What `/health` says this server is (the CLI gives its version and commit).
    pub version: String,
    /// A request whose prompt wraps a transcript in `<transcript>` tags and has no
    /// finished answer by then (model load included) is answered with the transcript
    /// itself (`serve --answer-within`); `None`: no deadline.
    pub answer_within: Option<std::time::Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            api_key: None,
            host_policy: HostPolicy::LoopbackOnly,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_queued: DEFAULT_MAX_QUEUED,
            check_clean_up: true,
            version: env!("CARGO_PKG_VERSION").to_string(),
            answer_within: local_mlx::settings::AnswerWithin::DEFAULT.deadline(),
        }
    }
}

impl ServerConfig {
    /// The defaults for a server listening on `host`: a loopback host answers loopback
    /// Host headers only; any other host must have a key, since anyone on the network
    /// could otherwise use the model.
    pub fn for_host(host: &str, api_key: Option<ApiKey>) -> Result<ServerConfig, BindError> {
        let host_policy = if binds_loopback_only(host) {
            HostPolicy::LoopbackOnly
        } else if api_key.is_some() {
            HostPolicy::Any
        } else {
            return Err(BindError::KeyRequired { host: host.to_string() });
        };
        Ok(ServerConfig { api_key, host_policy, ..ServerConfig::default() })
    }
}

/// Whether listening on `host` (a `--host` value) stays on loopback: `localhost` (or
/// `localhost.`), which [`bind`](crate::listen::bind) maps to 127.0.0.1 and ::1 itself,
/// or a loopback address in any form the resolver reads as a number (`127.1`,
/// `::ffff:127.0.0.1`). Any other name goes to DNS, which may answer a LAN address
/// even for `*.localhost`.
fn binds_loopback_only(host: &str) -> bool {
    is_localhost(host) || is_loopback_address(host)
}

/// Whether `host` (a `--host` value or a Host header's name, without port) names this
/// machine's loopback: `localhost`, `*.localhost` (one optional trailing dot, no empty
/// label), or a loopback address ([`is_loopback_address`]).
pub(crate) fn is_loopback_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let labels_ok = name.split('.').all(|label| !label.is_empty());
    (labels_ok && (name == "localhost" || name.ends_with(".localhost"))) || is_loopback_address(host)
}

/// An address in 127.0.0.0/8, ::1 or a v4-mapped 127.x (`[...]` allowed), written as
/// the resolver reads it: dotted quads and their short forms (`127.1`, `0x7f.1`).
pub(crate) fn is_loopback_address(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => inet_aton(bare).is_some_and(|ip| ip.is_loopback()),
    }
}

/// IPv4 as `inet_aton` (and so `getaddrinfo`) reads it: 1 to 4 parts, each decimal,
/// octal (`0` prefix) or hex (`0x`), the last filling the bytes left.
fn inet_aton(text: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<u32> = text.split('.').map(aton_number).collect::<Option<_>>()?;
    let (last, head) = parts.split_last()?;
    if head.len() > 3 || head.iter().any(|&part| part > 255) {
        return None;
    }
    let last_bits = 32 - 8 * head.len() as u32;
    if last_bits < 32 && last >> last_bits != 0 {
        return None;
    }
    let high = head.iter().enumerate().fold(0u32, |value, (i, &part)| value | part << (24 - 8 * i as u32));
    Some(std::net::Ipv4Addr::from(high | last))
}

fn aton_number(part: &str) -> Option<u32> {
    let (digits, radix) = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
        None => (part, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// The name part of a Host header (`localhost:8397` → `localhost`, `[::1]:80` → `[::1]`);
/// the whole header when what follows a `[...]` is not a port, so it is judged whole.
pub(crate) fn host_without_port(header: &str) -> &str {
    let is_port = |rest: &str| rest.strip_prefix(':').is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if header.starts_with('[') {
        return match header.find(']') {
            Some(end) if header[end + 1..].is_empty() || is_port(&header[end + 1..]) => &header[..=end],
            _ => header,
        };
    }
    match header.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => header,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_and_nothing_else() {
        for host in ["localhost", "LOCALHOST", "localhost.", "app.localhost", "127.0.0.1", "127.9.8.7", "::1", "[::1]"]
        {
            assert!(is_loopback_name(host), "{host}");
        }
        for host in
            ["evil.example", "localhost.evil.example", "0.0.0.0", "192.168.1.2", "::", "[::]", "", "127.0.0.1.nip.io"]
        {
            assert!(!is_loopback_name(host), "{host}");
        }
        // A bracketed address with a name after it, empty labels, a host that only
        // looks numeric: not loopback.
        for host in ["[::1]evil.com", "localhost..", "..localhost", "a..localhost", "127.0.0.1x", "0x7g.1", "128.1"] {
            assert!(!is_loopback_name(host_without_port(host)), "{host}");
        }
        // Loopback as a resolver reads it.
        for host in ["127.1", "127.0.1", "0x7f.1", "0177.0.0.1", "2130706433", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]"]
        {
            assert!(is_loopback_name(host), "{host}");
        }
    }

    #[test]
    fn the_port_is_cut_from_a_host_header() {
        assert_eq!(host_without_port("localhost:8397"), "localhost");
        assert_eq!(host_without_port("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_without_port("[::1]:8397"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        assert_eq!(host_without_port("evil.example:80"), "evil.example");
        assert_eq!(host_without_port("[::1]evil.com"), "[::1]evil.com");
        assert_eq!(host_without_port("[::1]:80x"), "[::1]:80x");
    }

    #[test]
    fn a_host_beyond_loopback_needs_a_key() {
        assert_eq!(ServerConfig::for_host("localhost", None).unwrap().host_policy, HostPolicy::LoopbackOnly);
        assert_eq!(ServerConfig::for_host("::1", None).unwrap().host_policy, HostPolicy::LoopbackOnly);
        assert!(matches!(ServerConfig::for_host("0.0.0.0", None), Err(BindError::KeyRequired { .. })));
        assert_eq!(ServerConfig::for_host("[::1]", None).unwrap().host_policy, HostPolicy::LoopbackOnly);
        // Loopback however it is written.
        for host in ["127.1", "localhost.", "LOCALHOST", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]", "127.9.9.9"] {
            assert_eq!(ServerConfig::for_host(host, None).unwrap().host_policy, HostPolicy::LoopbackOnly, "{host}");
        }
        // Names that only DNS resolves may bind a LAN address: a key is required.
        for host in ["app.localhost", "localhost..", "127.0.0.1.nip.io", "::ffff:10.0.0.1", "128.1"] {
            assert!(matches!(ServerConfig::for_host(host, None), Err(BindError::KeyRequired { .. })), "{host}");
        }
        let open = ServerConfig::for_host("0.0.0.0", ApiKey::new("k")).unwrap();
        assert_eq!(open.host_policy, HostPolicy::Any);
    }

    #[test]
    fn the_key_comes_from_the_argument_stdin_or_a_file_never_both() {
        let no_stdin = std::io::empty();
        let key = |k: Option<ApiKey>| k.expect("a key");
        assert!(key(ApiKey::from_cli(Some("k1"), None, no_stdin).unwrap()).matches("k1"));
        assert!(ApiKey::from_cli(None, None, no_stdin).unwrap().is_none());
        assert!(ApiKey::from_cli(Some(""), None, no_stdin).unwrap().is_none(), "an empty variable is no key");
        let piped = key(ApiKey::from_cli(Some("-"), None, &b"from-stdin\n"[..]).unwrap());
        assert!(piped.matches("from-stdin"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "  from-file \r\nignored\n").unwrap();
        assert!(key(ApiKey::from_cli(None, Some(&file), no_stdin).unwrap()).matches("from-file"));
        assert!(matches!(ApiKey::from_cli(Some("k"), Some(&file), no_stdin), Err(KeyError::Both)));

        let missing = ApiKey::from_cli(None, Some(&dir.path().join("none")), no_stdin).unwrap_err();
        assert!(missing.to_string().contains("--api-key-file") && missing.to_string().contains("none"), "{missing}");
        for (bad, why) in [(&b"\n"[..], "empty"), (&b"a\x1bb"[..], "control"), (&[0xff, 0xfe][..], "UTF-8")] {
            let err = ApiKey::from_cli(Some("-"), None, bad).unwrap_err();
            assert!(err.to_string().contains(why) && err.to_string().contains("stdin"), "{err}");
        }
        let huge = vec![b'k'; MAX_KEY_BYTES as usize + 1];
        assert!(ApiKey::from_cli(Some("-"), None, &huge[..]).is_err());
    }

    #[test]
    fn the_key_matches_only_itself_and_never_prints() {
        let key = ApiKey::new("s3cret").unwrap();
        assert!(key.matches("s3cret"));
        assert!(!key.matches("s3cre") && !key.matches("s3cret!") && !key.matches("S3cret") && !key.matches(""));
        assert!(!format!("{key:?}").contains("s3cret"));
        assert!(ApiKey::new("").is_none());
    }
}
