// Post-processing on/off and the provider choice, where Handy puts them; the only
// provider here is "Local (MLX)", shown disabled with the reason on a machine MLX
// cannot run on (Windows, an Intel Mac).
import type { ProviderOption } from "../bindings";
import type { SettingsApi } from "../hooks/useSettings";
import { SettingRow, SettingsGroup } from "./Layout";

/** The chosen provider, or `null` while the list loads or when it cannot run here. */
export function usableProvider(settings: SettingsApi): ProviderOption | null {
  const chosen = settings.providers.find((p) => p.id === settings.app?.post_process_provider_id);
  return chosen && chosen.disabled_reason === null ? chosen : null;
}

export function PostProcessingToggle({ settings }: { settings: SettingsApi }) {
  const { app, providers, setEnabled, setProvider } = settings;
  if (!app) return null;
  const chosen = providers.find((p) => p.id === app.post_process_provider_id);
  const noneUsable = providers.length > 0 && providers.every((p) => p.disabled_reason !== null);
  return (
    <SettingsGroup title="General">
      <SettingRow
        title="Enable post-processing"
        htmlFor="post-process-enabled"
        description="Clean up each transcript with a language model before it is pasted."
      >
        <input
          id="post-process-enabled"
          type="checkbox"
          role="switch"
          className="switch"
          checked={app.post_process_enabled}
          onChange={(e) => void setEnabled(e.target.checked)}
        />
      </SettingRow>
      <SettingRow
        title="Provider"
        htmlFor="post-process-provider"
        description="Runs on this computer with MLX: no API key, nothing leaves the machine."
      >
        <select
          id="post-process-provider"
          value={app.post_process_provider_id}
          disabled={!app.post_process_enabled || noneUsable}
          aria-describedby={chosen?.disabled_reason || chosen?.note ? "provider-note" : undefined}
          onChange={(e) => void setProvider(e.target.value)}
        >
          {providers.map((p) => (
            <option key={p.id} value={p.id} disabled={p.disabled_reason !== null}>
              {p.label}
            </option>
          ))}
        </select>
      </SettingRow>
      {chosen?.disabled_reason ? (
        <p id="provider-note" className="banner banner-error provider-note" role="alert">
          {chosen.label} is not available on this computer. {chosen.disabled_reason}.
        </p>
      ) : (
        chosen?.note && (
          <p id="provider-note" className="hint provider-note">
            {chosen.note}.
          </p>
        )
      )}
    </SettingsGroup>
  );
}
