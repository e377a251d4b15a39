// The Post-processing settings page: Handy's layout with "Local (MLX)" as the provider.
import { useEffect, useRef } from "react";
import { useModels } from "./hooks/useModels";
import { useSettings } from "./hooks/useSettings";
import { SettingRow, SettingsGroup } from "./components/Layout";
import { PostProcessingToggle, usableProvider } from "./components/PostProcessingToggle";
import { LoadingBanner } from "./components/LoadingBanner";
import { ModelList } from "./components/ModelList";
import { UnloadTimeoutSelect } from "./components/UnloadTimeoutSelect";
import { AnswerWithinSelect } from "./components/AnswerWithinSelect";
import { PromptEditor } from "./components/PromptEditor";
import { TryIt } from "./components/TryIt";

export default function App() {
  const settings = useSettings();
  const models = useModels();
  const { settings: mlx, app } = settings;
  // The provider's own settings appear only once it is known to run on this machine,
  // so an unsupported one is never pre-warmed and offers no Download.
  const active = (app?.post_process_enabled ?? false) && usableProvider(settings) !== null;
  const selected = models.models.find((m) => m.id === mlx?.selected_model);
  const selectedState = selected?.status.state;

  // Visiting the page pre-warms the selected model (so the first dictation does not wait for the load), once per visit
  // and model, when there is something to warm.
  const warmed = useRef<string | null>(null);
  useEffect(() => {
    if (!active || !mlx || selectedState !== "downloaded" || warmed.current === mlx.selected_model) return;
    warmed.current = mlx.selected_model;
    void models.warmUp();
  }, [active, mlx, selectedState, models.warmUp]);

  const tryDisabled = !active
    ? "Post-processing is off."
    : !selected || selectedState === "not_downloaded" || selectedState === "downloading"
      ? "Download and select a model first."
      : null;

  return (
    <main className="page">
      <header className="page-header">
        <h1>Post-processing</h1>
        <p>Clean up each transcript with a small language model running on this computer.</p>
      </header>
      {settings.error && (
        <p className="banner banner-error" role="alert">
          {settings.error}
        </p>
      )}
      <PostProcessingToggle settings={settings} />
      {app && !app.post_process_enabled && <p className="hint off-note">Post-processing is off: transcripts are pasted as transcribed.</p>}
      {active && mlx && (
        <>
          <LoadingBanner loading={models.loading} error={models.loadError} retry={() => void models.warmUp()} />
          <SettingsGroup title="Model" id="models">
            <ModelList
              models={models}
              selectedModel={mlx.selected_model}
              onSelect={(id) => void settings.update({ selected_model: id }).then(() => models.refresh())}
            />
          </SettingsGroup>
          <SettingsGroup title="Memory">
            <SettingRow
              title="Unload model"
              htmlFor="unload-timeout"
              description="Free the model's memory after it has been idle this long; the next transcript loads it again."
            >
              <UnloadTimeoutSelect
                id="unload-timeout"
                value={mlx.model_unload_timeout}
                onChange={(value) => void settings.update({ model_unload_timeout: value })}
              />
            </SettingRow>
          </SettingsGroup>
          <SettingsGroup title="Waiting">
            <SettingRow
              title="Answer within"
              htmlFor="answer-within"
              description="If the model has no clean-up by then (a slow first load, a busy computer), the transcript is pasted as it came."
            >
              <AnswerWithinSelect
                id="answer-within"
                value={mlx.answer_within_seconds}
                onChange={(value) => void settings.update({ answer_within_seconds: value })}
              />
            </SettingRow>
          </SettingsGroup>
          <SettingsGroup title="Prompt">
            <PromptEditor value={mlx.prompt} save={(prompt) => settings.update({ prompt })} />
          </SettingsGroup>
          <SettingsGroup title="Try it">
            <TryIt disabledReason={tryDisabled} />
          </SettingsGroup>
        </>
      )}
    </main>
  );
}
