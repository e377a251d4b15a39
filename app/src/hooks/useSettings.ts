// The provider's settings (selected model, unload timeout, prompt) and the app's own
// (post-processing on/off, provider), loaded once and saved through their commands.
import { useCallback, useEffect, useState } from "react";
import { commands } from "../bindings";
import type { AppSettings, MlxSettings, ProviderOption } from "../bindings";
import { messageOf, unwrap } from "../api";

export function useSettings() {
  const [settings, setSettings] = useState<MlxSettings | null>(null);
  const [app, setApp] = useState<AppSettings | null>(null);
  const [providers, setProviders] = useState<ProviderOption[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void (async () => {
      try {
        setSettings(await commands.mlxGetSettings());
        setApp(await commands.getAppSettings());
        setProviders(await commands.getPostProcessProviders());
      } catch (e) {
        setError(messageOf(e));
      }
    })();
  }, []);

  /** Save a change to the provider's settings; returns false (and says why) on failure. */
  const update = useCallback(
    async (change: Partial<MlxSettings>) => {
      if (!settings) return false;
      try {
        setSettings(unwrap(await commands.mlxUpdateSettings({ ...settings, ...change })));
        setError(null);
        return true;
      } catch (e) {
        setError(messageOf(e));
        return false;
      }
    },
    [settings],
  );

  const setEnabled = useCallback(async (enabled: boolean) => {
    try {
      setApp(unwrap(await commands.setPostProcessEnabled(enabled)));
    } catch (e) {
      setError(messageOf(e));
    }
  }, []);

  const setProvider = useCallback(async (providerId: string) => {
    try {
      setApp(unwrap(await commands.setPostProcessProvider(providerId)));
    } catch (e) {
      setError(messageOf(e));
    }
  }, []);

  return { settings, app, providers, error, update, setEnabled, setProvider };
}

export type SettingsApi = ReturnType<typeof useSettings>;
