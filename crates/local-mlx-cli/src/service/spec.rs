//! What the service runs ([`Spec`]): this binary by its real path, `serve` with the
//! options, and the environment that makes it find what the shell's `local-mlx` finds.
//!
//! The environment is passed on as resolved values: the config and data folders are
//! always written as absolute paths (launchd starts a job with no `XDG_*` and a systemd
//! user manager with its own), so `setup` and the service use one Python environment and
//! one settings file. Secrets (`HF_TOKEN`, an `HF_ENDPOINT` with a password, the API key)
//! go into [`Spec::secret_env`], which only a 0600 file carries.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use local_mlx::settings::{config_dir, data_dir, MlxSettings};
use local_mlx_server::ApiKey;

use crate::serve_options::{ServeOptions, API_KEY_ENV};

/// What the service runs: the program, its arguments, and its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Readable by anyone who can read the service file (`PATH` first).
    pub env: Vars,
    /// Kept in a file readable by the user alone (the API key, tokens).
    pub secret_env: Vars,
}

/// `NAME=value` pairs, in the order they are written.
pub type Vars = Vec<(String, String)>;

/// `LOCAL_MLX_*` variables that are not passed on: the key (a secret, passed apart),
/// the folders (passed resolved), and those that belong to one run or to tests.
const NOT_PASSED: [&str; 7] = [
    API_KEY_ENV,
    "LOCAL_MLX_CONFIG_DIR",
    "LOCAL_MLX_DATA_DIR",
    "LOCAL_MLX_TOKEN",
    "LOCAL_MLX_PRETEND_PLATFORM",
    "LOCAL_MLX_SERVICE_MANAGER",
    super::log::LOG_ENV,
];

/// Other variables that decide where models, caches and settings are (passed on as
/// absolute paths when set), and how the hub is reached.
const FOLDERS_PASSED: [&str; 7] = [
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_TOKEN_PATH",
];
const HUB_PASSED: [&str; 3] = ["HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_TOKEN"];

/// `LOCAL_MLX_*` variables whose value is a folder: passed on as an absolute path.
const LOCAL_MLX_FOLDERS: [&str; 2] = ["LOCAL_MLX_BACKEND_DIR", "LOCAL_MLX_HANDY_DIR"];

/// The folders after uv's on the service's `PATH`.
const SYSTEM_PATH: [&str; 5] = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// What the service runs with `options`. The second value says why uv was not found, if
/// it was not.
pub fn spec(options: &ServeOptions, api_key: Option<ApiKey>) -> Result<(Spec, Option<String>)> {
    let exe = std::env::current_exe().context("cannot find the path of this program")?;
    let program = std::fs::canonicalize(&exe).with_context(|| format!("cannot resolve {}", exe.display()))?;
    check_lasting(&program)?;
    let mut args: Vec<String> =
        ["serve", "--host", &options.host, "--port", &options.port.to_string(), "--keep-alive", &options.keep_alive]
            .map(String::from)
            .to_vec();
    if options.no_clean_up_check {
        args.push("--no-clean-up-check".into());
    }
    args.extend(["--answer-within".to_string(), options.answer_within.clone()]);
    let settings = MlxSettings::load(&config_dir().join("settings.json"))?;
    let (path, uv_warning) = match local_mlx::manager::SidecarConfig::find_uv(settings.uv_path.as_deref()) {
        Ok(uv) => (service_path(uv.parent()), None),
        Err(error) => (service_path(None), Some(error.to_string())),
    };
    let (mut env, mut secret_env) = passed_on(std::env::vars_os())?;
    env.insert(0, ("PATH".to_string(), path));
    if let Some(key) = api_key {
        secret_env.push((API_KEY_ENV.to_string(), key.secret().to_string()));
    }
    Ok((Spec { program, args, env, secret_env }, uv_warning))
}

/// The environment for the service from this one's `vars`: (readable, secret), each
/// sorted by name.
fn passed_on(vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>) -> Result<(Vars, Vars)> {
    let mut env = vec![
        ("LOCAL_MLX_CONFIG_DIR".to_string(), absolute(&config_dir())?),
        ("LOCAL_MLX_DATA_DIR".to_string(), absolute(&data_dir())?),
    ];
    let mut secret_env = Vec::new();
    for (name, value) in vars {
        let Some(name) = name.to_str().map(str::to_string) else { continue };
        let folder = FOLDERS_PASSED.contains(&name.as_str()) || LOCAL_MLX_FOLDERS.contains(&name.as_str());
        let wanted = (name.starts_with("LOCAL_MLX_") && !NOT_PASSED.contains(&name.as_str()))
            || folder
            || HUB_PASSED.contains(&name.as_str());
        if !wanted || value.is_empty() {
            continue;
        }
        let value = value.into_string().map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text"))?;
        let value = if folder { absolute(Path::new(&value))? } else { value };
        if name == "HF_TOKEN" || (name == "HF_ENDPOINT" && has_password(&value)) {
            secret_env.push((name, value));
        } else {
            env.push((name, value));
        }
    }
    env[2..].sort();
    secret_env.sort();
    Ok((env, secret_env))
}

/// `path` made absolute against the current folder, as UTF-8 text.
fn absolute(path: &Path) -> Result<String> {
    let path = std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    path.into_os_string().into_string().map_err(|p| anyhow::anyhow!("{} is not UTF-8 text", Path::new(&p).display()))
}

/// Whether a URL carries credentials (`scheme://user:password@host`).
fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// uv's folder, then the system's, each once.
pub fn service_path(uv_dir: Option<&Path>) -> String {
    let mut dirs: Vec<String> = uv_dir.map(|d| d.display().to_string()).into_iter().collect();
    for dir in SYSTEM_PATH {
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_string());
        }
    }
    dirs.join(":")
}

/// A program run by `uvx` or `pipx run` lives in a cache that `uv cache clean` (or
/// pipx, after 14 days) deletes: a service pointing there would one day point at
/// nothing. uv keeps such environments in `archive-v<N>` under its cache (or under
/// `UV_CACHE_DIR`), pipx in `<…>/pipx/.cache` or its platform cache folder `…/pipx`.
fn check_lasting(program: &Path) -> Result<()> {
    let names: Vec<&str> =
        program.components().filter_map(|c| if let Component::Normal(n) = c { n.to_str() } else { None }).collect();
    let uv_archive = names.iter().any(|n| n.strip_prefix("archive-v").is_some_and(|v| v.parse::<u32>().is_ok()));
    let pipx_cache =
        names.windows(2).any(|pair| matches!(pair, ["pipx", ".cache"] | [".cache", "pipx"] | ["Caches", "pipx"]));
    let under = |var: &str| std::env::var_os(var).filter(|d| !d.is_empty()).is_some_and(|d| program.starts_with(d));
    if uv_archive || pipx_cache || under("UV_CACHE_DIR") {
        bail!(
            "this local-mlx runs from {}, a temporary copy (`uvx` or `pipx run`) that `uv cache clean` or pipx \
             deletes, and the service would then point at nothing: install it first: `uv tool install \
             local-mlx`, then run `local-mlx service install` with that one",
            program.display()
        );
    }
    Ok(())
}

/// Every text that will be written into a service file, with what it is: a control
/// character (a newline in a path, say) or a non-character (U+FFFF) has no faithful
/// spelling in a unit file line or in XML 1.0, so it is refused before anything is
/// written instead of writing a file that means something else.
pub fn check_writable<'a>(texts: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<()> {
    for (what, text) in texts {
        if let Some(c) = text.chars().find(|&c| c.is_control() || is_noncharacter(c)) {
            bail!(
                "{what} holds the character {:?} (U+{:04X}), which a service file cannot carry: {text:?}; \
                 nothing was written",
                c,
                c as u32
            );
        }
    }
    Ok(())
}

/// Unicode's non-characters: U+FDD0..U+FDEF and the last two code points of each plane.
fn is_noncharacter(c: char) -> bool {
    let c = c as u32;
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_puts_uvs_folder_first_and_names_each_folder_once() {
        assert_eq!(
            service_path(Some(Path::new("/home/u/.local/bin"))),
            "/home/u/.local/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        );
        assert_eq!(service_path(Some(Path::new("/usr/bin"))), "/usr/bin:/usr/local/bin:/bin:/usr/sbin:/sbin");
        assert_eq!(service_path(None), SYSTEM_PATH.join(":"));
    }

    #[test]
    fn ephemeral_copies_are_refused_and_installed_ones_are_not() {
        for path in [
            "/home/u/.cache/uv/archive-v0/AbC123/bin/local-mlx",
            "/Users/u/.cache/uv/archive-v0/x/bin/local-mlx",
            "/home/u/.local/pipx/.cache/0a1b/bin/local-mlx",
            "/home/u/.cache/pipx/0a1b/bin/local-mlx",
            "/Users/u/Library/Caches/pipx/0a1b/bin/local-mlx",
        ] {
            let error = check_lasting(Path::new(path)).unwrap_err().to_string();
            assert!(error.contains("uv tool install local-mlx") && error.contains(path), "{error}");
        }
        for path in [
            "/home/u/.local/share/uv/tools/local-mlx/bin/local-mlx",
            "/home/u/.local/pipx/venvs/local-mlx/bin/local-mlx",
            "/home/u/archive-vX/local-mlx",
        ] {
            assert!(check_lasting(Path::new(path)).is_ok(), "{path}");
        }
    }

    #[test]
    fn controls_and_noncharacters_are_refused_other_text_is_not() {
        for bad in ["a\nb", "a\u{0}b", "tab\there", "a\u{FFFF}b", "a\u{FFFE}", "a\u{FDD0}", "a\u{10FFFF}", "\u{85}"] {
            let error = check_writable([("XDG_CONFIG_HOME", bad)]).unwrap_err().to_string();
            assert!(
                error.starts_with("XDG_CONFIG_HOME holds the character") && error.contains("nothing was written"),
                "{error}"
            );
        }
        assert!(check_writable([("x", "/Users/é 日本/a&b<c> \"q\" %h $x \u{FFFD}")]).is_ok());
    }

    #[test]
    fn folders_are_passed_resolved_and_secrets_apart() {
        let vars = [
            ("LOCAL_MLX_LOG", "debug"),
            ("LOCAL_MLX_API_KEY", "key"),
            ("LOCAL_MLX_TOKEN", "per-run"),
            ("XDG_CACHE_HOME", "relative/cache"),
            ("HF_ENDPOINT", "https://user:pw@hub.example/x"),
            ("HF_TOKEN", "hf_secret"),
            ("HOME", "/home/u"),
            ("LOCAL_MLX_EXTRA_MODELS", ""),
        ]
        .map(|(n, v)| (n.into(), v.into()));
        let (env, secret) = passed_on(vars.into_iter()).unwrap();
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["LOCAL_MLX_CONFIG_DIR", "LOCAL_MLX_DATA_DIR", "LOCAL_MLX_LOG", "XDG_CACHE_HOME"]);
        assert!(env.iter().all(|(n, v)| n == "LOCAL_MLX_LOG" || v.starts_with('/')), "{env:?}");
        assert!(env[3].1.ends_with("/relative/cache"), "{env:?}");
        assert_eq!(
            secret,
            [("HF_ENDPOINT".into(), "https://user:pw@hub.example/x".into()), ("HF_TOKEN".into(), "hf_secret".into())]
        );
        let plain = [("HF_ENDPOINT".into(), "http://127.0.0.1:9/a@b".into())];
        let (env, secret) = passed_on(plain.into_iter()).unwrap();
        assert!(secret.is_empty() && env.iter().any(|(n, _)| n == "HF_ENDPOINT"), "{env:?}");
    }
}
