//! `MlxModelManager::process_text` end to end: the real sidecar, the real tiny model
//! (and once the real SmolLM2-135M), real processes killed on purpose.

mod common;

use common::sidecar_env::SidecarEnv;
use local_mlx::postprocess::KeptReason;
use local_mlx::settings::ModelUnloadTimeout;
use local_mlx::{EventType, LoadPhase, ModelState};
use test_support::{kill_group, process_alive, wait_until};

/// Long enough that the tiny model generates for a few seconds (its budget grows with
/// the transcript), so there is time to act during the generation.
fn long_transcript() -> String {
    "so um the thing is we should probably uh move the meeting to thursday because ".repeat(40)
}

fn count(env: &SidecarEnv, event_type: EventType) -> usize {
    env.sink.events().iter().filter(|e| e.event_type == event_type).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cold_call_starts_the_sidecar_loads_and_generates_and_a_warm_call_does_neither() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    assert!(!env.manager.sidecar_running());

    let cold = env.manager.process_text("um so i think we should uh meet tomorrow").await.unwrap();
    assert!(cold.tokens_generated > 0 && cold.prompt_tokens > 0, "{cold:?}");
    assert!(cold.timings.start_ms > 0 && cold.timings.load_ms > 0, "{:?}", cold.timings);
    assert_eq!(cold.model_id, env.model);
    let phases: Vec<Option<LoadPhase>> =
        env.sink.events().iter().filter(|e| e.event_type == EventType::LoadingStarted).map(|e| e.phase).collect();
    assert!(
        phases.contains(&Some(LoadPhase::StartingServer)) && phases.contains(&Some(LoadPhase::LoadingModel)),
        "{phases:?}"
    );
    assert_eq!(count(&env, EventType::LoadingCompleted), 1);
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::Ready);
    let pid = env.manager.sidecar_pid().unwrap();

    let warm = env.manager.process_text("and then uh we can talk about the budget").await.unwrap();
    assert_eq!((warm.timings.start_ms, warm.timings.load_ms), (0, 0), "{:?}", warm.timings);
    assert_eq!(count(&env, EventType::LoadingCompleted), 1, "no second load");
    assert_eq!(env.manager.sidecar_pid(), Some(pid), "no second spawn");
    assert!(warm.cached_tokens > 0, "the same system prompt is reused from the prefix cache: {warm:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tiny_models_cut_off_answer_falls_back_to_the_transcript_with_a_warning() {
    // The random tiny model never ends its turn, so every answer hits the token limit.
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    let text = "um so i think we should uh meet tomorrow";
    let out = env.manager.process_text(text).await.unwrap();
    assert_eq!(out.text, text);
    assert_eq!(out.clean_up.kept_original, Some(KeptReason::CutOff), "{:?}", out.clean_up);
    assert!(out.clean_up.warnings[0].contains("cut off"), "{:?}", out.clean_up.warnings);
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_text_is_returned_unchanged_without_starting_anything_and_huge_text_is_refused() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    let out = env.manager.process_text("   \n ").await.unwrap();
    assert_eq!(out.text, "   \n ");
    assert_eq!(out.clean_up.kept_original, Some(KeptReason::EmptyTranscript));
    assert!(!env.manager.sidecar_running());

    let err = env.manager.process_text(&"a".repeat(20_001)).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::TranscriptTooLong);
    assert!(err.to_string().contains("20001"), "{err}");
    assert!(!env.manager.sidecar_running());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_is_not_downloaded_says_how_to_download_it() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    env.manager.delete_model(&env.model).await.unwrap();
    let err = env.manager.process_text("hello there").await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::NotDownloaded);
    assert!(err.to_string().contains("local-mlx pull"), "{err}");
    assert!(!env.manager.sidecar_running());
}

#[tokio::test(flavor = "multi_thread")]
async fn immediately_unloads_and_stops_the_sidecar_after_each_use() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Immediately).await;
    env.manager.process_text("hello there my friend").await.unwrap();
    assert!(!env.manager.sidecar_running());
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::Downloaded);
    assert_eq!(count(&env, EventType::Unloaded), 1);
    // The next call starts again transparently.
    env.manager.process_text("hello again").await.unwrap();
    assert_eq!(count(&env, EventType::LoadingCompleted), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_idle_deadline_unloads_and_the_sidecar_process_is_gone() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Sec15).await;
    env.manager.process_text("hello there my friend").await.unwrap();
    let pid = env.manager.sidecar_pid().unwrap();
    assert!(process_alive(pid));
    wait_until("the idle unload", || count(&env, EventType::Unloaded) == 1).await;
    wait_until("the sidecar to exit", || !process_alive(pid)).await;
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::Downloaded);
    assert!(!env.manager.sidecar_running());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sidecar_killed_mid_request_gives_a_clear_error_and_the_next_call_works() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    env.manager.warm_up().await.unwrap();
    let pid = env.manager.sidecar_pid().unwrap();
    let manager = env.manager.clone();
    let call = tokio::spawn(async move { manager.process_text(&long_transcript()).await });
    wait_until("the generation to start", || env.manager.is_generating(&env.model)).await;
    kill_group(pid);

    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::SidecarCrashed, "{err}");
    assert!(err.to_string().contains("restarted on the next request"), "{err}");
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::Downloaded);

    let out = env.manager.process_text("hello there my friend").await.unwrap();
    assert!(out.tokens_generated > 0);
    assert_ne!(env.manager.sidecar_pid(), Some(pid));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_is_refused_during_a_generation_and_unloads_an_idle_model() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    env.manager.warm_up().await.unwrap();
    let manager = env.manager.clone();
    let call = tokio::spawn(async move { manager.process_text(&long_transcript()).await });
    wait_until("the generation to start", || env.manager.is_generating(&env.model)).await;

    let status = env.manager.model_status(&env.model).unwrap();
    let err = env.manager.delete_model(&env.model).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::Busy);
    assert!(err.to_string().contains("generating"), "{err}");
    // The status overlays the session's state on the disk's and gives the same answer.
    assert_eq!(status.state, ModelState::Ready);
    assert_eq!(status.delete_blocked, Some(local_mlx::Refusal::from(&err)), "kind `busy` and the same sentence");
    call.await.unwrap().unwrap();

    // Loaded but idle: delete unloads, stops the sidecar and deletes.
    let status = env.manager.model_status(&env.model).unwrap();
    assert_eq!((status.state, status.delete_blocked, status.has_files), (ModelState::Ready, None, true));
    env.manager.delete_model(&env.model).await.unwrap();
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::NotDownloaded);
    assert!(!env.manager.sidecar_running());
}

/// `warm_up` starts the sidecar and loads the selected model once: a second call starts
/// no process and announces no load, and the dictation that follows pays no start or
/// load time. The status shows the model `process_text` then uses as Ready.
#[tokio::test(flavor = "multi_thread")]
async fn warm_up_is_idempotent_and_the_next_dictation_pays_no_start_or_load() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    env.manager.warm_up().await.unwrap();
    assert_eq!(count(&env, EventType::LoadingCompleted), 1);
    let phases: Vec<Option<LoadPhase>> =
        env.sink.events().iter().filter(|e| e.event_type == EventType::LoadingStarted).map(|e| e.phase).collect();
    assert!(
        phases.contains(&Some(LoadPhase::StartingServer)) && phases.contains(&Some(LoadPhase::LoadingModel)),
        "warm-up announces its phases: {phases:?}"
    );
    let pid = env.manager.sidecar_pid().unwrap();
    let events = env.sink.events().len();

    env.manager.warm_up().await.unwrap();
    assert_eq!(env.manager.sidecar_pid(), Some(pid), "no second process");
    assert_eq!(env.sink.events().len(), events, "no event from a second warm-up: {:?}", &env.sink.events()[events..]);
    assert_eq!(env.manager.model_status(&env.manager.settings().selected_model).unwrap().state, ModelState::Ready);

    let out = env.manager.process_text("um so we meet at noon").await.unwrap();
    assert_eq!(out.model_id, env.manager.settings().selected_model, "the warmed-up model is the one used");
    assert_eq!((out.timings.start_ms, out.timings.load_ms), (0, 0), "{:?}", out.timings);
    assert_eq!(count(&env, EventType::LoadingCompleted), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_calls_are_served_one_after_another_with_a_single_load() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let manager = env.manager.clone();
            tokio::spawn(async move { manager.process_text(&format!("call number {i} um please")).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(count(&env, EventType::LoadingCompleted), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn switching_the_selected_model_unloads_the_old_one() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    env.manager.warm_up().await.unwrap();
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::Ready);
    let settings = local_mlx::settings::MlxSettings {
        selected_model: local_mlx::DEFAULT_MODEL_ID.to_string(),
        ..env.manager.settings()
    };
    env.manager.update_settings(settings).await.unwrap();
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::Downloaded);
    assert!(!env.manager.sidecar_running());
}

#[tokio::test(flavor = "multi_thread")]
async fn smol_answers_with_real_text() {
    let env = SidecarEnv::new("smol", ModelUnloadTimeout::Never).await;
    let out = env.manager.process_text("um so i think we should uh meet tomorrow at noon").await.unwrap();
    assert!(out.tokens_generated > 0);
    let words: Vec<String> =
        out.text.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()).collect();
    assert!(words.iter().any(|w| w == "meet") && words.iter().any(|w| w == "tomorrow"), "{out:?}");
    assert!(out.text.chars().all(|c| !c.is_control() || c == '\n'), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_deleted_behind_our_back_while_loaded_is_unloaded_and_reported_missing() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    env.manager.warm_up().await.unwrap();
    let snapshot = env.manager.model_status(&env.model).unwrap().snapshot_path.unwrap();
    let repo_dir = snapshot.parent().unwrap().parent().unwrap().to_path_buf();
    std::fs::remove_dir_all(&repo_dir).unwrap();

    let err = env.manager.process_text("hello there my friend").await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::NotDownloaded, "{err}");
    assert!(err.to_string().contains("local-mlx pull"), "{err}");
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::NotDownloaded);
    assert!(!env.manager.sidecar_running(), "the orphaned copy in memory is released");
    assert_eq!(count(&env, EventType::Unloaded), 1);
}
