// The model list and everything that moves in it: statuses from `mlx_list_models`,
// live download progress and load phases from the one event channel, and the
// per-model notes (errors, "cancelled") the cards show. Actions are the provider's
// commands; each refreshes the list when it ends, and events refresh it meanwhile.
import { useCallback, useEffect, useRef, useState } from "react";
import { commands, events } from "../bindings";
import type { MlxLoadPhase, MlxModelInfo, MlxModelStateEvent } from "../bindings";
import { messageOf, unwrap } from "../api";
import { formatBytes } from "../format";

export type LiveProgress = { downloaded: number; total: number; speed: number; progress: number };
export type Note = { tone: "error" | "info"; text: string };
export type Loading = { modelId: string; phase: MlxLoadPhase | null };

export function useModels() {
  const [models, setModels] = useState<MlxModelInfo[]>([]);
  const [live, setLive] = useState<Record<string, LiveProgress>>({});
  const [notes, setNotes] = useState<Record<string, Note>>({});
  const [loading, setLoading] = useState<Loading | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const mounted = useRef(true);

  const refresh = useCallback(async () => {
    try {
      const list = await commands.mlxListModels();
      if (mounted.current) setModels(list);
      if (mounted.current) setListError(null);
    } catch (error) {
      if (mounted.current) setListError(messageOf(error));
    }
  }, []);

  const note = useCallback((id: string, value: Note | null) => {
    setNotes((all) => {
      const next = { ...all };
      if (value) next[id] = value;
      else delete next[id];
      return next;
    });
  }, []);

  const dropLive = useCallback((id: string) => {
    setLive((all) => {
      const next = { ...all };
      delete next[id];
      return next;
    });
  }, []);

  const onEvent = useCallback(
    (event: MlxModelStateEvent) => {
      const id = event.model_id;
      switch (event.event_type) {
        case "download_progress":
          setLive((all) => ({
            ...all,
            [id]: {
              downloaded: event.downloaded_bytes ?? 0,
              total: event.total_bytes ?? 0,
              speed: event.bytes_per_second ?? 0,
              progress: event.progress ?? 0,
            },
          }));
          return;
        case "download_started":
          setLive((all) => ({ ...all, [id]: { downloaded: 0, total: 0, speed: 0, progress: 0 } }));
          note(id, null);
          break;
        case "download_completed":
          dropLive(id);
          break;
        case "loading_started":
          setLoading({ modelId: id, phase: event.phase ?? null });
          setLoadError(null);
          break;
        case "loading_completed":
          setLoading(null);
          break;
        case "unloaded":
          setLoading((current) => (current?.modelId === id ? null : current));
          break;
        case "error":
          dropLive(id);
          setLoading((current) => {
            if (current?.modelId === id) setLoadError(event.error ?? "loading failed");
            return current?.modelId === id ? null : current;
          });
          break;
      }
      void refresh();
    },
    [dropLive, note, refresh],
  );

  useEffect(() => {
    mounted.current = true;
    let unlisten: (() => void) | undefined;
    let cancelled = false;
    void events.mlxModelStateEvent
      .listen((e) => onEvent(e.payload))
      .then((stop) => {
        if (cancelled) stop();
        else unlisten = stop;
      });
    void refresh();
    return () => {
      cancelled = true;
      mounted.current = false;
      unlisten?.();
    };
  }, [onEvent, refresh]);

  const runDownload = useCallback(
    async (id: string, start: () => ReturnType<typeof commands.mlxRetryDownload>) => {
      note(id, null);
      try {
        const outcome = unwrap(await start());
        if (outcome.outcome === "cancelled") {
          note(id, {
            tone: "info",
            text:
              outcome.partial_bytes > 0
                ? `Download cancelled. ${formatBytes(outcome.partial_bytes)} are kept: Download resumes from there.`
                : "Download cancelled.",
          });
        }
      } catch (error) {
        note(id, { tone: "error", text: messageOf(error) });
      } finally {
        dropLive(id);
        await refresh();
      }
    },
    [dropLive, note, refresh],
  );

  const download = useCallback((id: string) => runDownload(id, () => commands.mlxDownloadModel(id)), [runDownload]);
  const retry = useCallback((id: string) => runDownload(id, () => commands.mlxRetryDownload()), [runDownload]);

  const cancel = useCallback(
    async (id: string) => {
      try {
        unwrap(await commands.mlxCancelDownload());
      } catch (error) {
        note(id, { tone: "error", text: messageOf(error) });
      }
    },
    [note],
  );

  const remove = useCallback(
    async (id: string) => {
      try {
        unwrap(await commands.mlxDeleteModel(id));
        note(id, { tone: "info", text: "Deleted." });
      } catch (error) {
        note(id, { tone: "error", text: messageOf(error) });
      } finally {
        await refresh();
      }
    },
    [note, refresh],
  );

  const unload = useCallback(
    async (id: string) => {
      try {
        unwrap(await commands.mlxUnloadModel());
      } catch (error) {
        note(id, { tone: "error", text: messageOf(error) });
      } finally {
        await refresh();
      }
    },
    [note, refresh],
  );

  const addCustom = useCallback(async (id: string) => {
    const list = unwrap(await commands.mlxAddCustomModel(id));
    if (mounted.current) setModels(list);
  }, []);

  const warmUp = useCallback(async () => {
    try {
      unwrap(await commands.mlxWarmUp());
    } catch (error) {
      setLoadError(messageOf(error));
      setLoading(null);
    } finally {
      await refresh();
    }
  }, [refresh]);

  return {
    models,
    live,
    notes,
    loading,
    loadError,
    listError,
    refresh,
    download,
    retry,
    cancel,
    remove,
    unload,
    addCustom,
    warmUp,
  };
}

export type ModelsApi = ReturnType<typeof useModels>;
