// The prompt template: `${output}` stands for the transcript. Whether a prompt is
// usable is the core's rule (`mlx_update_settings` refuses it with the reason, shown).
import { useEffect, useState } from "react";
import { DEFAULT_PROMPT } from "../bindings";

export function PromptEditor(props: { value: string; save: (prompt: string) => Promise<boolean> }) {
  const [draft, setDraft] = useState(props.value);
  const [saved, setSaved] = useState(false);
  useEffect(() => setDraft(props.value), [props.value]);
  const dirty = draft !== props.value;
  const save = async (prompt: string) => setSaved(await props.save(prompt));
  return (
    <div className="prompt">
      <label htmlFor="prompt">Prompt template</label>
      <textarea
        id="prompt"
        rows={6}
        value={draft}
        spellCheck={false}
        onChange={(e) => {
          setDraft(e.target.value);
          setSaved(false);
        }}
      />
      <p className="hint">
        <code>{"${output}"}</code> stands for the transcript. The text without it is sent as the system message and
        the transcript as the user message.
      </p>
      <div className="inline">
        <button type="button" className="primary" disabled={!dirty} onClick={() => void save(draft)}>
          Save prompt
        </button>
        <button type="button" disabled={props.value === DEFAULT_PROMPT} onClick={() => void save(DEFAULT_PROMPT)}>
          Reset to default
        </button>
        {saved && !dirty && (
          <span className="hint" role="status">
            Saved.
          </span>
        )}
      </div>
    </div>
  );
}
