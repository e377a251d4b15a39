//! `process_text` against mlx-lm used directly (a benchmark, not a test).
//!
//! On the *smol* fixture (SmolLM2-135M-Instruct, 4-bit), served by test-hub and pulled
//! into a temp cache, each repetition measures in one run:
//! - **cold**: a fresh manager's first `process_text` (spawn the sidecar through uv, load,
//!   generate) against a fresh `python anchor.py` (interpreter start, `import mlx_lm`,
//!   `load`, generate the same number of tokens), wall time from spawn to exit;
//! - **warm**: a later `process_text` (sidecar up, model loaded, the system prompt's KV
//!   cache reused) against mlx-lm's own pre-fill + generation of the same prompt and
//!   token count in the anchor process;
//! - **warm without prefix reuse**: the same transcript, with a nonce at the start of the
//!   prompt template so the sidecar cannot reuse the cached prefix. Sampled runs differ
//!   in length, so reuse is judged by the anchor-normalized ratios, not raw seconds.
//!
//! Run: `cargo run --release -p local-mlx-bench --bin process-bench -- [reps]`
//! (from the repo root, after `tools/test.sh` or `tools/demo.sh` synced the environments).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use local_mlx::manager::{ManagerConfig, ProcessOptions, SidecarConfig};
use local_mlx::postprocess::{build_messages, DEFAULT_PROMPT};
use local_mlx::settings::{MlxSettings, ModelUnloadTimeout};
use local_mlx::{DownloadOutcome, MlxModelManager, NullSink};
use test_support::{fixture, workspace_root};

/// The cold call's transcript, then the warm one's (used with and without reuse).
const TRANSCRIPTS: [&str; 2] = [
    "um so i think we should uh meet tomorrow at noon to go over the budget",
    "okay so the the report is basically done but uh i still need the numbers from sales",
];

struct Ours {
    /// The model folder the download left (what the anchor loads).
    snapshot: PathBuf,
    cold_s: f64,
    warm_s: f64,
    warm_no_reuse_s: f64,
    tokens: [u32; 3],
    cached_warm: u32,
    cached_no_reuse: u32,
}

async fn ours(tmp: &Path, hub_url: &str, model: &str, nonce: usize) -> Result<Ours> {
    let mut sidecar = SidecarConfig::in_dir(workspace_root().join("python-backend"));
    sidecar.log_path = Some(tmp.join("sidecar.log"));
    let config = ManagerConfig {
        hub: local_mlx::manager::HubConfig::new(hub_url, tmp.join("hf/hub")),
        sidecar,
        settings: MlxSettings {
            selected_model: model.to_string(),
            model_unload_timeout: ModelUnloadTimeout::Never,
            ..MlxSettings::default()
        },
        custom_models: Vec::new(),
    };
    let manager = MlxModelManager::new(config, Arc::new(NullSink))?;
    let snapshot = match manager.download(model).await? {
        DownloadOutcome::Downloaded { snapshot, .. } | DownloadOutcome::AlreadyDownloaded { snapshot } => snapshot,
        DownloadOutcome::Cancelled { .. } => bail!("the download of {model} was cancelled"),
    };
    let timed = |text: &'static str, options: ProcessOptions| {
        let manager = &manager;
        async move {
            let start = Instant::now();
            let out = manager.process_text_with(text, options).await?;
            anyhow::Ok((start.elapsed().as_secs_f64(), out))
        }
    };
    // The whole answer is timed, however slow the machine: no deadline.
    let whole =
        || ProcessOptions { answer_within: Some(local_mlx::settings::AnswerWithin::NEVER), ..Default::default() };
    let (cold_s, cold) = timed(TRANSCRIPTS[0], whole()).await?;
    let (warm_s, warm) = timed(TRANSCRIPTS[1], whole()).await?;
    let nonced = ProcessOptions { prompt: Some(nonced_prompt(nonce)), ..whole() };
    let (warm_no_reuse_s, no_reuse) = timed(TRANSCRIPTS[1], nonced).await?;
    manager.shutdown().await;
    Ok(Ours {
        snapshot,
        cold_s,
        warm_s,
        warm_no_reuse_s,
        tokens: [cold.tokens_generated, warm.tokens_generated, no_reuse.tokens_generated],
        cached_warm: warm.cached_tokens,
        cached_no_reuse: no_reuse.cached_tokens,
    })
}

/// The default prompt behind a nonce: same length and wording, but no cached prefix.
fn nonced_prompt(nonce: usize) -> String {
    format!("[{nonce}] {DEFAULT_PROMPT}")
}

/// The system message `process_text` sends for `template` (the instructions before `${output}`).
fn instructions(template: &str) -> String {
    build_messages(template, "").into_iter().next().map(|m| m.content).unwrap_or_default()
}

struct Anchor {
    wall_to_first_s: f64,
    generate_s: Vec<f64>,
}

fn anchor(snapshot: &Path, tokens: [u32; 3], nonce: usize) -> Result<Anchor> {
    let system = instructions(DEFAULT_PROMPT);
    let nonced = instructions(&nonced_prompt(nonce));
    let job = serde_json::json!({
        "model": snapshot,
        "systems": [&system, &system, &nonced],
        "users": [TRANSCRIPTS[0], TRANSCRIPTS[1], TRANSCRIPTS[1]],
        "tokens": tokens,
    });
    let python = workspace_root().join("python-backend/.venv/bin/python");
    let start = Instant::now();
    let out = Command::new(python).arg(workspace_root().join("bench/src/anchor.py")).arg(job.to_string()).output()?;
    let wall = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("anchor failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let t: serde_json::Value =
        serde_json::from_slice(out.stdout.rsplit(|b| *b == b'\n').find(|l| !l.is_empty()).unwrap())?;
    let generate: Vec<f64> = t["generate"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let in_process_after_first: f64 = generate[1..].iter().sum();
    Ok(Anchor { wall_to_first_s: wall - in_process_after_first, generate_s: generate })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    let reps: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(3);
    let smol = fixture("smol");
    let model = smol.repo_id;
    let hub = test_hub::TestHub::start(&smol.repos).await?;
    let (mut cold, mut warm, mut no_reuse) = (vec![], vec![], vec![]);
    let (mut a_cold, mut a_warm, mut a_no_reuse) = (vec![], vec![], vec![]);
    for rep in 0..reps {
        let tmp = tempfile::tempdir()?;
        let o = ours(tmp.path(), &hub.url(), &model, rep).await?;
        let a = anchor(&o.snapshot, o.tokens, rep)?;
        eprintln!(
            "rep {rep}: ours cold {:.2}s warm {:.2}s (cached {}) no-reuse {:.2}s (cached {}); anchor cold {:.2}s gen {:.2}s {:.2}s; tokens {:?}",
            o.cold_s, o.warm_s, o.cached_warm, o.warm_no_reuse_s, o.cached_no_reuse, a.wall_to_first_s, a.generate_s[1], a.generate_s[2], o.tokens
        );
        cold.push(o.cold_s);
        warm.push(o.warm_s);
        no_reuse.push(o.warm_no_reuse_s);
        a_cold.push(a.wall_to_first_s);
        a_warm.push(a.generate_s[1]);
        a_no_reuse.push(a.generate_s[2]);
    }
    let (c, w, n) = (median(cold), median(warm), median(no_reuse));
    let (ac, aw, an) = (median(a_cold), median(a_warm), median(a_no_reuse));
    println!("| case (smol, medians of {reps}) | local-mlx | anchor | ratio |");
    println!("|---|---|---|---|");
    println!("| cold: spawn → text | {c:.2} s | {ac:.2} s (python: import, load, generate) | {:.2} |", c / ac);
    println!("| warm, prefix reused | {w:.2} s | {aw:.2} s (mlx-lm pre-fill + generate) | {:.2} |", w / aw);
    println!("| warm, prefix not reusable | {n:.2} s | {an:.2} s (mlx-lm pre-fill + generate) | {:.2} |", n / an);
    // Token counts differ between sampled runs, so compare the anchor-normalized times.
    println!(
        "| prefix reuse: warm ratio with / without | {:.2} | {:.2} | {:.2} |",
        w / aw,
        n / an,
        (w / aw) / (n / an)
    );
    Ok(())
}
