//! Clean-up quality on the labeled set `eval/transcripts.jsonl` (an eval, not a test).
//!
//! Runs `MlxModelManager::process_text_with` over every transcript with the given model,
//! prompt and decoding constraint, and reports per category: the word error rate
//! against the reference of the raw transcript and of the result, the share improved /
//! unchanged / worse, the share where the check kept transcript to the transcript, and how
//! many results answered the question or followed the instruction after the clean-up check.
//!
//! Decisions (eval/README.md has the details):
//! - WER counts case and punctuation: a token is a run of letters, digits and
//!   apostrophes, or one punctuation mark. "so i" → "So I." is 3 edits away from the
//!   raw text's 0 of the reference; a lower-cased, unpunctuated WER would call it
//!   unchanged, and punctuation and case are half of a clean-up.
//! - "Answered/followed": the result has one of the line's `forbidden` words (answer
//!   words the speaker never said), or, for a question or an instruction, it lost more
//!   than half of the reference's words (a bare "Yes." for "reply only with yes").
//! - `--fixture tiny|smol` serves a test model through test-hub into a temp cache (as
//!   process-bench does); `--model <repo id>` uses the HF cache of the environment
//!   (`HF_HOME`, `HF_HUB_CACHE`), where the model must already be downloaded.
//!
//! Run: `cargo run --release -p local-mlx-bench --bin quality-eval -- --fixture smol`
//! (see docs/QUALITY.md for the options and the results).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use local_mlx::manager::{ManagerConfig, ProcessOptions, SidecarConfig};
use local_mlx::settings::{MlxSettings, ModelUnloadTimeout};
use local_mlx::{MlxModelManager, NullSink};
use serde::{Deserialize, Serialize};
use test_support::{fixture, workspace_root};

#[derive(Parser)]
#[command(about = "Clean-up quality of process_text on the labeled transcript set")]
struct Args {
    /// A test model served through test-hub: `tiny` or `smol`.
    #[arg(long, conflicts_with = "model")]
    fixture: Option<String>,
    /// A model already in the environment's HF cache, e.g. mlx-community/Qwen3-1.7B-4bit.
    #[arg(long)]
    model: Option<String>,
    /// A prompt template file (with `${output}`); the default prompt when absent.
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// Ask the sidecar to decode only the transcript's own words.
    #[arg(long)]
    constrain: bool,
    /// A repetition penalty (1.0: none); the core's default (none) when absent.
    #[arg(long)]
    repetition_penalty: Option<f64>,
    /// Only the first N lines of each category (a quick run).
    #[arg(long)]
    per_category: Option<usize>,
    /// Only these ids, in this order (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the JSON report to this file after every line (a long run can be
    /// stopped and still be read).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The labeled set.
    #[arg(long, default_value_os_t = workspace_root().join("eval/transcripts.jsonl"))]
    set: PathBuf,
    /// Print the report as JSON (with every line's result) instead of Markdown.
    #[arg(long)]
    json: bool,
    /// Print the Markdown of a report written by `--out` (a stopped run), run nothing.
    #[arg(long)]
    render: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Transcript {
    id: String,
    category: String,
    raw: String,
    reference: String,
    #[serde(default)]
    forbidden: Vec<String>,
}

/// One transcript's result.
#[derive(Serialize, Deserialize)]
struct Line {
    id: String,
    category: String,
    raw: String,
    result: String,
    wer_raw: f64,
    wer_result: f64,
    fell_back: bool,
    answered: bool,
    error: Option<String>,
    warnings: Vec<String>,
    tokens: u32,
    generate_ms: u64,
}

/// One category's (or the whole set's) figures.
#[derive(Serialize, Deserialize, Default)]
struct Summary {
    lines: usize,
    wer_raw: f64,
    wer_result: f64,
    improved: f64,
    unchanged: f64,
    worse: f64,
    fell_back: f64,
    answered: usize,
    errors: usize,
}

#[derive(Serialize, Deserialize)]
struct Report {
    model: String,
    prompt: String,
    constrain: bool,
    /// The penalty used; `None` only in reports from before this field, when every call
    /// had the sidecar's 1.15.
    #[serde(default)]
    repetition_penalty: Option<f64>,
    tokens_per_s: f64,
    wall_s: f64,
    categories: BTreeMap<String, Summary>,
    total: Summary,
    lines: Vec<Line>,
}

/// Words (letters, digits, apostrophes) and single punctuation marks.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '\'' || c == '’' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Word error rate of `hypothesis` against `reference`: edits over the reference's
/// length (at least 1, so an empty reference counts every inserted token).
fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (tokens(reference), tokens(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for (i, rt) in r.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, ht) in h.iter().enumerate() {
            let substitute = diagonal + usize::from(rt != ht);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[h.len()] as f64 / r.len().max(1) as f64
}

fn lower_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// See the module's decisions.
fn answered(t: &Transcript, result: &str) -> bool {
    let said = lower_words(result);
    if t.forbidden.iter().any(|f| {
        said.contains(&f.to_lowercase()) || (!f.chars().all(char::is_alphanumeric) && result.contains(f.as_str()))
    }) {
        return true;
    }
    let reference = lower_words(&t.reference);
    let kept = reference.iter().filter(|w| said.contains(w)).count();
    matches!(t.category.as_str(), "questions" | "instructions") && kept * 2 < reference.len()
}

fn summarize<'a>(lines: impl Iterator<Item = &'a Line>) -> Summary {
    let lines: Vec<&Line> = lines.collect();
    let n = lines.len().max(1) as f64;
    let share = |f: &dyn Fn(&Line) -> bool| lines.iter().filter(|l| f(l)).count() as f64 / n;
    Summary {
        lines: lines.len(),
        wer_raw: lines.iter().map(|l| l.wer_raw).sum::<f64>() / n,
        wer_result: lines.iter().map(|l| l.wer_result).sum::<f64>() / n,
        improved: share(&|l| l.wer_result < l.wer_raw),
        unchanged: share(&|l| l.wer_result == l.wer_raw),
        worse: share(&|l| l.wer_result > l.wer_raw),
        fell_back: share(&|l| l.fell_back),
        answered: lines.iter().filter(|l| l.answered).count(),
        errors: lines.iter().filter(|l| l.error.is_some()).count(),
    }
}

fn read_set(args: &Args) -> Result<Vec<Transcript>> {
    let text = std::fs::read_to_string(&args.set).with_context(|| format!("reading {}", args.set.display()))?;
    let mut set = Vec::new();
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let t: Transcript = serde_json::from_str(line).with_context(|| format!("{}:{}", args.set.display(), n + 1))?;
        let count = taken.entry(t.category.clone()).or_default();
        if args.per_category.is_none_or(|max| *count < max) && (args.only.is_empty() || args.only.contains(&t.id)) {
            *count += 1;
            set.push(t);
        }
    }
    if !args.only.is_empty() {
        if let Some(missing) = args.only.iter().find(|id| !set.iter().any(|t| &t.id == *id)) {
            bail!("--only: no transcript {missing:?} in {}", args.set.display());
        }
        set.sort_by_key(|t| args.only.iter().position(|id| *id == t.id));
    }
    Ok(set)
}

/// A manager with `model` downloaded and selected, kept loaded between calls.
async fn manager(args: &Args, tmp: &tempfile::TempDir) -> Result<(MlxModelManager, String, Option<test_hub::TestHub>)> {
    let (mut config, model, hub) = match (&args.fixture, &args.model) {
        (Some(name), _) => {
            let f = fixture(name);
            let hub = test_hub::TestHub::start(&f.repos).await?;
            let mut sidecar = SidecarConfig::in_dir(workspace_root().join("python-backend"));
            sidecar.log_path = Some(tmp.path().join("sidecar.log"));
            let config = ManagerConfig {
                hub: local_mlx::manager::HubConfig::new(hub.url(), tmp.path().join("hf/hub")),
                sidecar,
                settings: MlxSettings::default(),
                custom_models: Vec::new(),
            };
            (config, f.repo_id, Some(hub))
        }
        (None, Some(model)) => (ManagerConfig::from_env()?, model.clone(), None),
        (None, None) => bail!("give --fixture tiny|smol or --model <repo id already in the HF cache>"),
    };
    // An eval on a busy machine may run at a tenth of the interactive speed: waiting
    // beats a timeout counted as a failed clean-up.
    config.sidecar.timeouts.generate_base = std::time::Duration::from_secs(600);
    config.sidecar.timeouts.generate_per_token = std::time::Duration::from_secs(20);
    config.settings = MlxSettings {
        selected_model: model.clone(),
        model_unload_timeout: ModelUnloadTimeout::Never,
        ..MlxSettings::default()
    };
    let manager = MlxModelManager::new(config, Arc::new(NullSink))?;
    if hub.is_some() {
        manager.download(&model).await?;
    }
    Ok((manager, model, hub))
}

async fn run(args: &Args) -> Result<Report> {
    let set = read_set(args)?;
    let prompt = match &args.prompt_file {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => local_mlx::postprocess::DEFAULT_PROMPT.to_string(),
    };
    let tmp = tempfile::tempdir()?;
    let (manager, model, _hub) = manager(args, &tmp).await?;
    let started = Instant::now();
    let mut lines = Vec::new();
    for (i, t) in set.iter().enumerate() {
        let options = ProcessOptions {
            prompt: Some(prompt.clone()),
            constrain_to_input: Some(args.constrain),
            repetition_penalty: args.repetition_penalty,
            // Quality is measured on whole answers, however slow the machine.
            answer_within: Some(local_mlx::settings::AnswerWithin::NEVER),
            ..Default::default()
        };
        let (result, fell_back, error, warnings, tokens, generate_ms) =
            match manager.process_text_with(&t.raw, options).await {
                Ok(out) => {
                    let fell_back = !out.clean_up.is_passed() && out.tokens_generated > 0;
                    (out.text, fell_back, None, out.clean_up.warnings, out.tokens_generated, out.timings.generate_ms)
                }
                // An error is reported on its line, never the end of the run.
                Err(e) => (t.raw.clone(), false, Some(e.to_string()), vec![], 0, 0),
            };
        eprintln!("[{}/{}] {} {:?} -> {:?} {:?}", i + 1, set.len(), t.id, t.raw, result, warnings);
        lines.push(Line {
            id: t.id.clone(),
            category: t.category.clone(),
            wer_raw: wer(&t.reference, &t.raw),
            wer_result: wer(&t.reference, &result),
            answered: answered(t, &result),
            raw: t.raw.clone(),
            result,
            fell_back,
            error,
            warnings,
            tokens,
            generate_ms,
        });
        if let Some(out) = &args.out {
            let partial = report(&model, &prompt, args, started, std::mem::take(&mut lines));
            std::fs::write(out, serde_json::to_string_pretty(&partial)?)?;
            lines = partial.lines;
        }
    }
    manager.shutdown().await;
    Ok(report(&model, &prompt, args, started, lines))
}

fn report(model: &str, prompt: &str, args: &Args, started: Instant, lines: Vec<Line>) -> Report {
    let mut categories = BTreeMap::new();
    for category in lines.iter().map(|l| l.category.clone()) {
        categories
            .entry(category.clone())
            .or_insert_with(|| summarize(lines.iter().filter(|l| l.category == category)));
    }
    let (tokens, ms) = lines.iter().fold((0u64, 0u64), |(t, m), l| (t + u64::from(l.tokens), m + l.generate_ms));
    Report {
        model: model.to_string(),
        prompt: prompt.to_string(),
        constrain: args.constrain,
        repetition_penalty: Some(args.repetition_penalty.unwrap_or(local_mlx::chat::DEFAULT_REPETITION_PENALTY)),
        tokens_per_s: tokens as f64 / (ms.max(1) as f64 / 1000.0),
        wall_s: started.elapsed().as_secs_f64(),
        total: summarize(lines.iter()),
        categories,
        lines,
    }
}

fn markdown(r: &Report) -> String {
    let mut out = format!(
        "model `{}`, constrain {}, repetition penalty {}, {:.1} tokens/s while generating, {:.0} s in all\n\n",
        r.model,
        r.constrain,
        r.repetition_penalty.map_or("1.15 (the sidecar's, before reports named it)".to_string(), |p| p.to_string()),
        r.tokens_per_s,
        r.wall_s
    );
    out.push_str("| category | lines | WER raw | WER result | improved | unchanged | worse | check kept transcript | answered/followed | errors |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    let pct = |x: f64| format!("{:.0} %", x * 100.0);
    for (name, s) in r.categories.iter().map(|(n, s)| (n.as_str(), s)).chain([("**all**", &r.total)]) {
        out.push_str(&format!(
            "| {name} | {} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} |\n",
            s.lines,
            s.wer_raw,
            s.wer_result,
            pct(s.improved),
            pct(s.unchanged),
            pct(s.worse),
            pct(s.fell_back),
            s.answered,
            s.errors
        ));
    }
    out
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.render {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let report: Report =
            serde_json::from_str(&text).with_context(|| format!("{} is not a report", path.display()))?;
        print!("{}", markdown(&report));
        return Ok(());
    }
    let report = run(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", markdown(&report));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wer_counts_case_punctuation_and_empty_references() {
        assert_eq!(wer("So I went.", "So I went."), 0.0);
        assert_eq!(wer("So I went.", "so i went"), 3.0 / 4.0);
        assert_eq!(wer("", "um"), 1.0);
        assert_eq!(wer("", ""), 0.0);
        assert_eq!(wer("It's late.", "it's late."), 1.0 / 3.0, "one case change in three tokens");
    }
}
