// One model of the list: name, size, description, RAM hint, status badge, live
// progress, notes, and the buttons that make sense in its state.
import type { MlxModelInfo } from "../bindings";
import type { LiveProgress, Note } from "../hooks/useModels";
import { formatBytes } from "../format";
import { waitingOn, warnings } from "../refusal";
import { DownloadProgress } from "./DownloadProgress";
import { StatusBadge } from "./StatusBadge";

export type CardActions = {
  download: (id: string) => void;
  retry: (id: string) => void;
  cancel: (id: string) => void;
  remove: (id: string) => void;
  unload: (id: string) => void;
  select: (id: string) => void;
};

type Props = {
  model: MlxModelInfo;
  selected: boolean;
  live?: LiveProgress;
  note?: Note;
  actions: CardActions;
};

export function ModelCard({ model, selected, live, note, actions }: Props) {
  const { id, status } = model;
  const state = status.state;
  // The core decides, the card shows: whether Delete or Download may run now, whether
  // the download fits on the disk, and whether (and with how many attempts) a failed
  // one is retried. A refusal that passes by itself disables its button with the
  // reason; one the user must fix is a warning (see ../refusal.ts).
  const blocked = waitingOn(status.delete_blocked);
  const notes = warnings(status.disk_warning, status.download_blocked, status.delete_blocked);
  const retryAttempts = status.retry_attempts ?? null;
  const tipId = `delete-reason-${id.replace(/\W+/g, "-")}`;
  const hasFiles = status.has_files;
  const downloadBlocked = waitingOn(status.download_blocked)?.message;

  const size = model.size_bytes > 0 ? `${formatBytes(model.size_bytes)} download` : "size unknown";
  const ram = model.ram_bytes > 0 ? `needs about ${formatBytes(model.ram_bytes)} of memory` : null;

  return (
    <li className={`model${selected ? " model-selected" : ""}`} data-model-id={id} aria-label={model.display_name}>
      <div className="model-head">
        <div className="model-title">
          <span className="model-name">{model.display_name}</span>
          {model.is_default && <span className="tag">Recommended</span>}
          {selected && <span className="tag tag-selected">Selected</span>}
        </div>
        <StatusBadge state={state} />
      </div>
      <p className="model-description">{model.description}</p>
      <p className="model-meta">
        <code>{model.repo}</code> · {size}
        {ram && ` · ${ram}`}
      </p>

      {state === "downloading" && live && <DownloadProgress name={model.display_name} live={live} />}
      {state === "not_downloaded" && status.partial_bytes > 0 && !note && (
        <p className="note note-info">{formatBytes(status.partial_bytes)} downloaded so far: Download resumes from there.</p>
      )}
      {notes.map((warning) => (
        <p key={warning.message} className="note note-warning" role="status" data-kind={warning.kind}>
          {warning.message}
        </p>
      ))}
      {note && (
        <p className={`note note-${note.tone}`} role={note.tone === "error" ? "alert" : "status"} data-testid="model-note">
          {note.text}
        </p>
      )}

      <div className="model-actions">
        {retryAttempts !== null && (
          <button type="button" className="primary" onClick={() => actions.retry(id)} disabled={!!downloadBlocked} title={downloadBlocked}>
            Retry (up to {retryAttempts} attempts)
          </button>
        )}
        {state === "not_downloaded" && retryAttempts === null && (
          <button
            type="button"
            className="primary"
            onClick={() => actions.download(id)}
            disabled={!!downloadBlocked}
            title={downloadBlocked}
          >
            Download
          </button>
        )}
        {state === "downloading" && (
          <button type="button" onClick={() => actions.cancel(id)}>
            Cancel
          </button>
        )}
        {(state === "downloaded" || state === "ready") && !selected && (
          <button type="button" className="primary" onClick={() => actions.select(id)}>
            Select
          </button>
        )}
        {state === "ready" && (
          <button type="button" onClick={() => actions.unload(id)}>
            Unload
          </button>
        )}
        {hasFiles && (
          <span className="tip-anchor">
            {/* A busy Delete looks disabled and says why; a click still asks the core,
                whose check is the one that counts, and its refusal is shown. */}
            <button
              type="button"
              className="danger"
              aria-disabled={blocked ? "true" : undefined}
              aria-describedby={blocked ? tipId : undefined}
              onClick={() => actions.remove(id)}
            >
              Delete
            </button>
            {blocked && (
              <span role="tooltip" id={tipId} className="tip">
                {blocked.message}
              </span>
            )}
          </span>
        )}
      </div>
    </li>
  );
}
