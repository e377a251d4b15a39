//! Whether this machine can run the provider at all, and if not, why.
//!
//! [`PlatformSupport`] is a value made by [`support`] from an (os, arch) pair, one
//! decision table, and by [`this_machine`] for the running build (a test can pretend
//! another, [`PRETEND_PLATFORM_ENV`]). Invariant: it follows the sidecar's own
//! dependencies (`mlx` on Apple Silicon, `mlx[cpu]` on Linux, none elsewhere), and every
//! entry point that would download or start the sidecar asks it first.

use serde::Serialize;

use crate::error::{Error, Result};

/// For tests only: `<os>-<arch>` (as `std::env::consts` spells them, e.g.
/// `windows-x86_64`) makes this machine look like that one, so the refusal paths run
/// on any machine. An empty value is ignored.
pub const PRETEND_PLATFORM_ENV: &str = "LOCAL_MLX_PRETEND_PLATFORM";

/// What MLX can do on one (os, arch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxPlatformSupport"))]
pub struct PlatformSupport {
    /// `std::env::consts::OS` (`macos`, `linux`, `windows`...).
    pub os: String,
    /// `std::env::consts::ARCH` (`aarch64`, `x86_64`...).
    pub arch: String,
    /// Whether models can be downloaded and run here.
    pub supported: bool,
    /// Why not (when unsupported), or what to expect (when supported but slower than
    /// the target); `None` on an Apple Silicon Mac.
    pub note: Option<String>,
}

impl PlatformSupport {
    /// The reason this machine cannot run the provider, `None` when it can.
    pub fn unsupported_reason(&self) -> Option<&str> {
        if self.supported {
            None
        } else {
            self.note.as_deref()
        }
    }

    /// `Ok` where the provider runs, else [`Error::UnsupportedPlatform`] with the reason.
    pub fn ensure_supported(&self) -> Result<()> {
        match self.unsupported_reason() {
            None => Ok(()),
            Some(reason) => Err(Error::UnsupportedPlatform {
                os: self.os.clone(),
                arch: self.arch.clone(),
                reason: reason.to_string(),
            }),
        }
    }
}

/// The decision table: what MLX can do on `os` / `arch` (spelled as `std::env::consts`).
pub fn support(os: &str, arch: &str) -> PlatformSupport {
    let (supported, note) = match (os, arch) {
        ("macos", "aarch64") => (true, None),
        ("linux", "x86_64" | "aarch64") => (
            true,
            Some(
                "On Linux MLX runs on the CPU only (mlx[cpu]), without a GPU: enhancing is slower than on an \
                 Apple Silicon Mac, and small models work best"
                    .to_string(),
            ),
        ),
        ("macos", _) => (
            false,
            Some(
                "MLX needs an Apple Silicon Mac (M1 or later) and this is an Intel Mac, or the Intel build running \
                 under Rosetta: on an Intel Mac choose another post-processing provider; on an Apple Silicon Mac \
                 install the Apple Silicon build"
                    .to_string(),
            ),
        ),
        _ => (
            false,
            Some(format!(
                "MLX needs an Apple Silicon Mac (M1 or later) and this machine runs {} on {}: choose another \
                 post-processing provider here, or use local-mlx on an Apple Silicon Mac (Linux on x86_64 or \
                 aarch64 also works, on the CPU)",
                os_name(os),
                if arch.is_empty() { "an unknown processor" } else { arch }
            )),
        ),
    };
    PlatformSupport { os: os.to_string(), arch: arch.to_string(), supported, note }
}

/// This machine's support, or the one [`PRETEND_PLATFORM_ENV`] names.
pub fn this_machine() -> PlatformSupport {
    let pretend = std::env::var(PRETEND_PLATFORM_ENV).unwrap_or_default();
    match pretended(&pretend) {
        Some(support) => {
            tracing::warn!(os = %support.os, arch = %support.arch, "{PRETEND_PLATFORM_ENV} is set: pretending to run there (for tests)");
            support
        }
        None => support(std::env::consts::OS, std::env::consts::ARCH),
    }
}

/// The support of the machine a `<os>-<arch>` override names; `None` for an empty one.
/// A value without `-` is an os on an unknown processor (so, unsupported).
fn pretended(value: &str) -> Option<PlatformSupport> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (os, arch) = value.split_once('-').unwrap_or((value, ""));
    Some(support(os, arch))
}

/// The name a user knows their system by.
fn os_name(os: &str) -> &str {
    match os {
        "windows" => "Windows",
        "linux" => "Linux",
        "macos" => "macOS",
        "freebsd" => "FreeBSD",
        "" => "an unknown system",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_table() {
        // (os, arch, supported, the note says)
        let table = [
            ("macos", "aarch64", true, None),
            ("linux", "x86_64", true, Some("CPU only")),
            ("linux", "aarch64", true, Some("CPU only")),
            ("macos", "x86_64", false, Some("MLX needs an Apple Silicon Mac")),
            ("windows", "x86_64", false, Some("MLX needs an Apple Silicon Mac")),
            ("windows", "aarch64", false, Some("this machine runs Windows on aarch64")),
            ("linux", "x86", false, Some("this machine runs Linux on x86")),
            ("linux", "riscv64", false, Some("choose another post-processing provider")),
            ("freebsd", "x86_64", false, Some("FreeBSD")),
            ("", "", false, Some("an unknown system on an unknown processor")),
        ];
        for (os, arch, supported, note) in table {
            let got = support(os, arch);
            assert_eq!((got.os.as_str(), got.arch.as_str(), got.supported), (os, arch, supported), "{os}-{arch}");
            match note {
                None => assert_eq!(got.note, None, "{os}-{arch}"),
                Some(part) => {
                    let text = got.note.as_deref().unwrap_or_default();
                    assert!(text.contains(part), "{os}-{arch}: {text:?} lacks {part:?}");
                }
            }
            assert_eq!(got.unsupported_reason().is_some(), !supported, "{os}-{arch}");
            assert_eq!(got.ensure_supported().is_ok(), supported, "{os}-{arch}");
        }
    }

    #[test]
    fn the_test_override_names_os_and_arch_and_anything_odd_is_unsupported() {
        assert_eq!(pretended(""), None);
        assert_eq!(pretended("  \n"), None);
        assert_eq!(pretended("windows-x86_64"), Some(support("windows", "x86_64")));
        assert_eq!(pretended(" macos-aarch64 "), Some(support("macos", "aarch64")));
        let odd = pretended("nonsense").unwrap();
        assert!(!odd.supported && odd.note.unwrap().contains("nonsense on an unknown processor"));
        assert!(!pretended("linux-x86_64-v3").unwrap().supported, "an arch we do not know is refused");
    }

    #[test]
    fn the_refusal_is_one_error_with_a_stable_kind_and_the_reason() {
        let error = support("windows", "x86_64").ensure_supported().unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::UnsupportedPlatform);
        let message = error.to_string();
        assert!(message.contains("MLX needs an Apple Silicon Mac"), "{message}");
        assert!(message.contains("choose another post-processing provider"), "{message}");
    }
}
