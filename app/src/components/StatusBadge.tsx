import type { MlxModelState } from "../bindings";

export const STATE_LABELS: Record<MlxModelState, string> = {
  not_downloaded: "Not downloaded",
  downloading: "Downloading",
  downloaded: "Downloaded",
  loading: "Loading",
  ready: "Ready",
};

export function StatusBadge({ state }: { state: MlxModelState }) {
  return (
    <span className={`badge badge-${state}`} data-testid="status-badge" data-state={state}>
      {STATE_LABELS[state]}
    </span>
  );
}
