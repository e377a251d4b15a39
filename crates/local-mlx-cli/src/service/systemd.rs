//! Linux: the systemd user unit `$XDG_CONFIG_HOME/systemd/user/local-mlx.service`
//! (`~/.config/…` without it), enabled and started with `systemctl --user`.
//!
//! The unit is an ordinary 0644 file; the API key goes into `<config dir>/serve.env`
//! (0600, in the 0700 folder that holds the settings), which the unit names with
//! `EnvironmentFile=`, so the key is never in a file others can read.
//!
//! Words in `ExecStart=` and `Environment=` are double-quoted with `\` and `"` escaped
//! and `%` doubled (systemd's specifiers); the arguments of `ExecStart=` also get `$`
//! doubled (its variable expansion, which leaves the program's own path alone). systemd
//! refuses to run a program whose path holds a quote or a backslash, so such a path is
//! refused here, before anything is written.

use std::path::{Path, PathBuf};

use local_mlx::fs::{xdg_dir, UserDir};

use super::spec::Spec;
use super::tool::{run_tool, unexpected, ManagerError, ToolRun};

/// The unit's name.
pub const UNIT: &str = "local-mlx.service";

pub fn unit_path() -> PathBuf {
    xdg_dir(UserDir::Config).join("systemd/user").join(UNIT)
}

/// The unit: started with the user's session, restarted when it fails (not when stopped
/// cleanly), given time on stop for `serve` to finish requests and stop its sidecar.
/// It gives up rather than restart forever: it is not started while its program is gone
/// (after `uv tool uninstall`), and five failed starts within two minutes stop the
/// restarts.
pub fn unit(spec: &Spec, env_file: Option<&Path>) -> String {
    let exec: Vec<String> = std::iter::once(quote(&spec.program.to_string_lossy(), false))
        .chain(spec.args.iter().map(|arg| quote(arg, true)))
        .collect();
    let env: Vec<String> = spec.env.iter().map(|(name, value)| quote(&format!("{name}={value}"), false)).collect();
    let env_file = env_file
        .map(|path| format!("EnvironmentFile={}\n", path.to_string_lossy().replace('%', "%%")))
        .unwrap_or_default();
    format!(
        "# Written by `local-mlx service install`; `local-mlx service uninstall` removes it.\n\
         [Unit]\n\
         Description=local-mlx serve (an OpenAI-compatible API for Handy)\n\
         ConditionFileIsExecutable={}\n\
         StartLimitIntervalSec=120\n\
         StartLimitBurst=5\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={}\n\
         Environment={}\n\
         {env_file}\
         Restart=on-failure\n\
         RestartSec=5\n\
         TimeoutStopSec=20\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        spec.program.to_string_lossy().replace('%', "%%"),
        exec.join(" "),
        env.join(" "),
    )
}

/// systemd's rule for the program of `ExecStart=` ("Executable name contains special
/// characters"), checked before anything is written.
pub fn check_program(program: &Path) -> Result<(), String> {
    let path = program.to_string_lossy();
    if path.contains(['"', '\'', '\\']) {
        return Err(format!(
            "systemd refuses to run a program whose path holds a quote or a backslash ({path}): \
             move local-mlx to a folder without them and run `local-mlx service install` from there"
        ));
    }
    Ok(())
}

/// The `EnvironmentFile=`: `NAME="value"` lines, with `"`, `\`, `$` and `` ` `` escaped
/// as systemd's parser of these files expects.
pub fn env_file(vars: &[(String, String)]) -> String {
    let mut out = String::from("# Written by `local-mlx service install` for the local-mlx user service.\n");
    for (name, value) in vars {
        let mut escaped = String::with_capacity(value.len());
        for c in value.chars() {
            if matches!(c, '"' | '\\' | '$' | '`') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        out.push_str(&format!("{name}=\"{escaped}\"\n"));
    }
    out
}

/// `word` double-quoted; `dollars`: `$` doubled too (an argument of `ExecStart=`).
fn quote(word: &str, dollars: bool) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            '$' if dollars => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The words of the unit's `ExecStart=`, unquoted (what [`unit()`] wrote, or plain words):
/// `%%` is `%`, and `$$` is `$` in the arguments.
pub fn exec_start(unit: &str) -> Option<Vec<String>> {
    let line = unit.lines().find_map(|line| line.trim_start().strip_prefix("ExecStart="))?;
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(first) = chars.next() else { break };
        let quoted = first == '"';
        let mut word = String::new();
        let mut next = if quoted { chars.next() } else { Some(first) };
        while let Some(c) = next {
            match c {
                '"' if quoted => break,
                c if c.is_whitespace() && !quoted => break,
                '\\' if quoted => word.extend(chars.next()),
                '%' | '$' if chars.peek() == Some(&c) && (c == '%' || !words.is_empty()) => {
                    chars.next();
                    word.push(c);
                }
                c => word.push(c),
            }
            next = chars.next();
        }
        words.push(word);
    }
    Some(words)
}

/// Why there is no user manager to talk to, from a `systemctl --user` failure.
fn no_manager(run: ToolRun) -> Result<String, ManagerError> {
    match run {
        ToolRun::Done(out) => Ok(out),
        ToolRun::Missing => {
            Err(ManagerError::Absent("no systemd user manager: systemctl is not installed here".into()))
        }
        ToolRun::Failed { message, .. } => {
            Err(ManagerError::Absent(format!("no systemd user manager answers: {message}")))
        }
    }
}

fn systemctl(args: &[&str]) -> ToolRun {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    run_tool("systemctl", &all)
}

fn steps(steps: &[&[&str]]) -> Result<(), ManagerError> {
    for step in steps {
        match systemctl(step) {
            ToolRun::Done(_) => {}
            other => return Err(unexpected(other, "systemctl")),
        }
    }
    Ok(())
}

/// Reload the unit files, enable the unit, and (re)start it with the new file.
pub fn start() -> Result<(), ManagerError> {
    no_manager(systemctl(&["daemon-reload"]))?;
    steps(&[&["enable", UNIT]])?;
    restart()
}

/// Restart the unit; one that gave up after failing (its start limit) may start again.
pub fn restart() -> Result<(), ManagerError> {
    // Its answer does not matter: it fails for a unit that has not failed.
    let _ = systemctl(&["reset-failed", UNIT]);
    steps(&[&["restart", UNIT]])
}

pub fn start_command() -> String {
    format!("systemctl --user daemon-reload && systemctl --user enable --now {UNIT}")
}

/// Stop and disable the unit.
pub fn stop() -> Result<(), ManagerError> {
    no_manager(systemctl(&["disable", "--now", UNIT])).map(drop)
}

/// After the files are gone: the manager forgets the unit.
pub fn forget() {
    let _ = systemctl(&["daemon-reload"]);
}

/// `is-active`: what it prints names the state even when it exits non-zero.
pub fn running() -> Result<bool, ManagerError> {
    const STATES: [&str; 6] = ["active", "reloading", "inactive", "failed", "activating", "deactivating"];
    let run = systemctl(&["is-active", UNIT]);
    let state = match &run {
        ToolRun::Done(out) | ToolRun::Failed { stdout: out, .. } => out.trim().to_string(),
        ToolRun::Missing => String::new(),
    };
    if STATES.contains(&state.as_str()) {
        return Ok(matches!(state.as_str(), "active" | "reloading"));
    }
    no_manager(run).map(|_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_round_trips_quotes_backslashes_specifiers_and_dollars() {
        let tricky = "/home/a b/%h $HOME/local-mlx";
        let spec = Spec {
            program: PathBuf::from(tricky),
            args: vec!["serve".into(), r#"a"b\c $X %i"#.into()],
            env: vec![("PATH".into(), "/a b/%h:/usr/bin".into())],
            secret_env: vec![("LOCAL_MLX_API_KEY".into(), "never here".into())],
        };
        let text = unit(&spec, None);
        assert!(text.contains(r#"ExecStart="/home/a b/%%h $HOME/local-mlx" "serve" "a\"b\\c $$X %%i""#), "{text}");
        assert!(text.contains(r#"Environment="PATH=/a b/%%h:/usr/bin""#), "{text}");
        assert!(!text.contains("never here") && !text.contains("EnvironmentFile"), "{text}");
        assert_eq!(exec_start(&text).unwrap(), [tricky, "serve", r#"a"b\c $X %i"#]);
        assert_eq!(
            exec_start("[Service]\nExecStart=/bin/x  serve --port 9\n").unwrap(),
            ["/bin/x", "serve", "--port", "9"]
        );
    }

    #[test]
    fn a_program_path_systemd_would_refuse_is_refused_with_what_to_do() {
        for path in [r#"/a"b/local-mlx"#, "/it's/local-mlx", r"/a\b/local-mlx"] {
            let error = check_program(Path::new(path)).unwrap_err();
            assert!(error.contains(path) && error.contains("move local-mlx"), "{error}");
        }
        assert!(check_program(Path::new("/a b/%h $x/local-mlx")).is_ok());
    }

    #[test]
    fn the_env_file_escapes_what_systemd_unescapes() {
        let text = env_file(&[("LOCAL_MLX_API_KEY".into(), r#"a"b\c$d`e f"#.into())]);
        assert!(text.ends_with("LOCAL_MLX_API_KEY=\"a\\\"b\\\\c\\$d\\`e f\"\n"), "{text}");
    }
}
