// A stand-in for the Rust side, behind Tauri's own IPC mock: commands answer from an
// in-memory model list, and `emitModelEvent` sends events on the real channel name.
import { mockIPC } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import type {
  AppSettings,
  MlxCommandError,
  MlxModelInfo,
  MlxModelStateEvent,
  MlxSettings,
  MlxModelState,
  MlxRefusal,
  ProviderOption,
} from "../src/bindings";

export const EVENT_CHANNEL = "mlx-model-state-event";

export function model(id: string, state: MlxModelState, extra: Partial<MlxModelInfo> = {}): MlxModelInfo {
  return {
    id,
    display_name: id.split("/")[1],
    description: `The ${id} model.`,
    repo: id,
    revision: "main",
    size_bytes: 940_000_000,
    ram_bytes: 2_000_000_000,
    is_default: false,
    is_builtin: true,
    ...extra,
    status: {
      model_id: id,
      state,
      partial_bytes: 0,
      bytes_needed: 0,
      has_files: state !== "not_downloaded",
      delete_blocked: deleteBlocked(id, state),
      ...extra.status,
    },
  };
}

/** What the core's delete rule says for `state` (downloading and loading refuse). */
function deleteBlocked(id: string, state: MlxModelState): MlxRefusal | undefined {
  return state === "downloading" || state === "loading"
    ? { kind: "busy", message: `model '${id}' is ${state}: deleting it is not possible now` }
    : undefined;
}

export type Handler = (args: Record<string, unknown>) => unknown;

export class FakeBackend {
  models: MlxModelInfo[];
  settings: MlxSettings = {
    selected_model: "org/selected",
    model_unload_timeout: "min5",
    prompt: "Clean up: ${output}",
    uv_path: null,
    answer_within_seconds: 15,
    engine: "sidecar",
  };
  app: AppSettings = { post_process_enabled: true, post_process_provider_id: "local-mlx", custom_models: [] };
  /** What `get_post_process_providers` says; set `disabled_reason` to play an unsupported machine. */
  providers: ProviderOption[] = [{ id: "local-mlx", label: "Local (MLX)", disabled_reason: null, note: null }];
  availableBytes = 50_000_000_000;
  calls: { cmd: string; args: Record<string, unknown> }[] = [];
  /** Per-command overrides; throw an `MlxCommandError` object to fail. */
  handlers: Record<string, Handler> = {};

  constructor(models: MlxModelInfo[]) {
    this.models = models;
  }

  install() {
    mockIPC((cmd, args) => this.handle(cmd, (args ?? {}) as Record<string, unknown>), { shouldMockEvents: true });
    return this;
  }

  called(cmd: string) {
    return this.calls.filter((c) => c.cmd === cmd);
  }

  setState(id: string, state: MlxModelState, status: Partial<MlxModelInfo["status"]> = {}) {
    this.models = this.models.map((m) => {
      if (m.id !== id) return m;
      const partial = status.partial_bytes ?? m.status.partial_bytes;
      const derived = { has_files: state !== "not_downloaded" || partial > 0, delete_blocked: deleteBlocked(id, state) };
      return { ...m, status: { ...m.status, state, ...derived, ...status } };
    });
  }

  private async handle(cmd: string, args: Record<string, unknown>) {
    this.calls.push({ cmd, args });
    const override = this.handlers[cmd];
    if (override) return override(args);
    switch (cmd) {
      case "mlx_list_models": {
        // As the core: while one model downloads, every other one says why it cannot.
        const active = this.models.find((m) => m.status.state === "downloading")?.id;
        const blocked = (id: string): MlxRefusal | undefined =>
          active && active !== id
            ? { kind: "download_in_progress", message: `'${active}' is already downloading: wait for it or cancel it before downloading '${id}'` }
            : undefined;
        return this.models.map((m) => ({ ...m, status: { ...m.status, download_blocked: m.status.download_blocked ?? blocked(m.id) } }));
      }
      case "mlx_get_settings":
        return this.settings;
      case "mlx_update_settings":
        this.settings = args.settings as MlxSettings;
        return this.settings;
      case "get_app_settings":
        return this.app;
      case "get_post_process_providers":
        return this.providers;
      case "set_post_process_enabled":
        this.app = { ...this.app, post_process_enabled: args.enabled as boolean };
        return this.app;
      case "mlx_warm_up":
      case "mlx_unload_model":
      case "mlx_delete_model":
        return null;
      case "mlx_cancel_download":
        return "org/downloading";
      default:
        throw { kind: "invalid_request", message: `no fake for ${cmd}` } satisfies MlxCommandError;
    }
  }
}

export async function emitModelEvent(event: Partial<MlxModelStateEvent> & Pick<MlxModelStateEvent, "event_type" | "model_id">) {
  // Fields the core skips when empty are absent, as on the wire.
  const full: MlxModelStateEvent = event;
  await emit(EVENT_CHANNEL, full);
}
