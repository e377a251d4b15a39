// What the first use is waiting for (a first run syncs the Python environment; a large model loads for seconds): the Python
// environment's first sync, the server's start, the model's load; or why it failed.
import type { MlxLoadPhase } from "../bindings";
import type { Loading } from "../hooks/useModels";

const PHASES: Record<MlxLoadPhase, string> = {
  syncing_environment: "Setting up the Python environment (first run: this can take a few minutes)…",
  starting_server: "Starting the MLX server…",
  loading_model: "Loading the model into memory…",
};

export function LoadingBanner(props: { loading: Loading | null; error: string | null; retry: () => void }) {
  const { loading, error, retry } = props;
  if (loading) {
    return (
      <div className="banner banner-info" role="status" data-testid="loading-banner">
        <span className="spinner" aria-hidden="true" />
        <span>
          <strong>{loading.modelId}</strong>: {loading.phase ? PHASES[loading.phase] : "Getting the model ready…"}
        </span>
      </div>
    );
  }
  if (error) {
    return (
      <div className="banner banner-error" role="alert">
        <span>The model could not be made ready: {error}</span>
        <button type="button" onClick={retry}>
          Try again
        </button>
      </div>
    );
  }
  return null;
}
