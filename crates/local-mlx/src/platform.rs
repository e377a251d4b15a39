//! Whether this machine can run the provider at all, and if not, why.
//!
//! [`PlatformSupport`] is a value made by [`support_at`] from an (os, arch, release)
//! triple, one decision table, and by [`this_machine`] for the running build (a test can
//! pretend another, [`PRETEND_PLATFORM_ENV`]). Invariant: it follows the sidecar's own
//! dependencies (`mlx` on Apple Silicon, `mlx[cpu]` on Linux, none elsewhere) and where
//! their wheels exist: MLX publishes no source distribution, and its wheels need macOS
//! [`MIN_MACOS`] or glibc [`MIN_GLIBC`], so an older system is refused here with that
//! reason rather than by `uv sync` failing later. Every entry point that would download
//! or start the sidecar asks it first.

use serde::Serialize;

use crate::error::{Error, Result};

/// For tests only: `<os>-<arch>` (as `std::env::consts` spells them, e.g.
/// `windows-x86_64`) makes this machine look like that one, so the refusal paths run
/// on any machine. An empty value is ignored.
pub const PRETEND_PLATFORM_ENV: &str = "LOCAL_MLX_PRETEND_PLATFORM";

/// The oldest macOS MLX's wheels install on (`macosx_14_0_arm64`).
pub const MIN_MACOS: (u32, u32) = (14, 0);
/// The oldest glibc MLX's Linux wheels install on (`manylinux_2_35`).
pub const MIN_GLIBC: (u32, u32) = (2, 35);

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

/// [`support_at`] with the system's release unknown (not refused for it).
pub fn support(os: &str, arch: &str) -> PlatformSupport {
    support_at(os, arch, None)
}

/// The decision table: what MLX can do on `os` / `arch` (spelled as `std::env::consts`)
/// with `release`, the (major, minor) of macOS on a Mac and of glibc on Linux, when known.
pub fn support_at(os: &str, arch: &str, release: Option<(u32, u32)>) -> PlatformSupport {
    let older = |min: (u32, u32)| release.filter(|r| *r < min).map(|(major, minor)| format!("{major}.{minor}"));
    let (supported, note) = match (os, arch) {
        ("macos", "aarch64") if older(MIN_MACOS).is_some() => (
            false,
            Some(format!(
                "MLX needs macOS {}.{} (Sonoma) or later and this Mac runs macOS {}: update macOS (System \
                 Settings, General, Software Update), or choose another post-processing provider",
                MIN_MACOS.0,
                MIN_MACOS.1,
                older(MIN_MACOS).unwrap_or_default()
            )),
        ),
        ("linux", "x86_64" | "aarch64") if older(MIN_GLIBC).is_some() => (
            false,
            Some(format!(
                "MLX's Linux packages need glibc {}.{} or later (Ubuntu 22.04, Debian 12, Fedora 36 or newer) and \
                 this system has glibc {}: use a newer distribution, or choose another post-processing provider",
                MIN_GLIBC.0,
                MIN_GLIBC.1,
                older(MIN_GLIBC).unwrap_or_default()
            )),
        ),
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

/// This machine's release in the sense of [`support_at`]: macOS's version on a Mac,
/// glibc's on Linux; `None` where it cannot be read.
fn this_release() -> Option<(u32, u32)> {
    #[cfg(target_os = "macos")]
    let text = {
        let mut buf = [0u8; 64];
        let mut len = buf.len();
        // SAFETY: the name is NUL-terminated and `buf`/`len` describe a writable buffer.
        let found = unsafe {
            libc::sysctlbyname(
                c"kern.osproductversion".as_ptr(),
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        } == 0;
        found.then(|| String::from_utf8_lossy(&buf[..len]).trim_end_matches('\0').to_string())
    };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let text = {
        // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        Some(version.to_string_lossy().into_owned())
    };
    #[cfg(not(any(target_os = "macos", all(target_os = "linux", target_env = "gnu"))))]
    let text: Option<String> = None;
    release_of(&text?)
}

/// `"13.6.1"` → (13, 6); `"2.35"` → (2, 35); a bare major is `.0`.
fn release_of(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// This machine's support, or the one [`PRETEND_PLATFORM_ENV`] names.
pub fn this_machine() -> PlatformSupport {
    let pretend = std::env::var(PRETEND_PLATFORM_ENV).unwrap_or_default();
    match pretended(&pretend) {
        Some(support) => {
            tracing::warn!(os = %support.os, arch = %support.arch, "{PRETEND_PLATFORM_ENV} is set: pretending to run there (for tests)");
            support
        }
        None => support_at(std::env::consts::OS, std::env::consts::ARCH, this_release()),
    }
}

/// The support of the machine a `<os>-<arch>[@<release>]` override names (`@13.6`: macOS
/// 13.6, `@2.31`: glibc 2.31); `None` for an empty one. A value without `-` is an os on
/// an unknown processor (so, unsupported).
fn pretended(value: &str) -> Option<PlatformSupport> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (machine, release) = match value.split_once('@') {
        Some((machine, release)) => (machine, release_of(release)),
        None => (value, None),
    };
    let (os, arch) = machine.split_once('-').unwrap_or((machine, ""));
    Some(support_at(os, arch, release))
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
    fn macos_before_14_and_glibc_before_2_35_are_refused_with_that_reason() {
        // (os, arch, release, supported, the note says)
        let table = [
            (
                "macos",
                "aarch64",
                Some((13, 6)),
                false,
                Some("MLX needs macOS 14.0 (Sonoma) or later and this Mac runs macOS 13.6"),
            ),
            ("macos", "aarch64", Some((11, 0)), false, Some("update macOS")),
            ("macos", "aarch64", Some((14, 0)), true, None),
            ("macos", "aarch64", Some((26, 1)), true, None),
            ("macos", "aarch64", None, true, None),
            ("linux", "x86_64", Some((2, 31)), false, Some("need glibc 2.35 or later (Ubuntu 22.04")),
            ("linux", "aarch64", Some((2, 34)), false, Some("this system has glibc 2.34")),
            ("linux", "x86_64", Some((2, 35)), true, Some("CPU only")),
            ("linux", "x86_64", Some((2, 36)), true, Some("CPU only")),
            ("macos", "x86_64", Some((15, 0)), false, Some("Intel Mac")),
        ];
        for (os, arch, release, supported, note) in table {
            let got = support_at(os, arch, release);
            assert_eq!(got.supported, supported, "{os}-{arch} {release:?}");
            match note {
                None => assert_eq!(got.note, None),
                Some(part) => {
                    assert!(got.note.as_deref().unwrap_or_default().contains(part), "{:?} lacks {part:?}", got.note)
                }
            }
        }
        assert_eq!(release_of("13.6.1"), Some((13, 6)));
        assert_eq!(release_of("2.35"), Some((2, 35)));
        assert_eq!(release_of("15"), Some((15, 0)));
        assert_eq!(release_of("glibc"), None);
        assert_eq!(pretended("macos-aarch64@13.6"), Some(support_at("macos", "aarch64", Some((13, 6)))));
        assert_eq!(pretended("linux-x86_64@2.31"), Some(support_at("linux", "x86_64", Some((2, 31)))));
        assert!(this_release().is_some(), "this machine's release is readable: {:?}", this_release());
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
