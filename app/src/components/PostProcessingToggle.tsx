// Post-processing on/off and the provider choice, where Handy puts them; the only
// provider here is "Local (MLX)".
import type { SettingsApi } from "../hooks/useSettings";
import { SettingRow, SettingsGroup } from "./Layout";

export function PostProcessingToggle({ settings }: { settings: SettingsApi }) {
  const { app, providers, setEnabled, setProvider } = settings;
  if (!app) return null;
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
          disabled={!app.post_process_enabled}
          onChange={(e) => void setProvider(e.target.value)}
        >
          {providers.map((p) => (
            <option key={p.id} value={p.id}>
              {p.label}
            </option>
          ))}
        </select>
      </SettingRow>
    </SettingsGroup>
  );
}
