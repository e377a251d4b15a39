// "Try it": a transcript in, the enhanced text out, with its time, tokens and the
// clean-up check's warnings.
import { useState } from "react";
import { commands } from "../bindings";
import type { MlxProcessOutput } from "../bindings";
import { messageOf, unwrap } from "../api";
import { formatMs } from "../format";

export function TryIt(props: { disabledReason: string | null }) {
  const [text, setText] = useState("um so i think we should uh meet tomorrow at like ten");
  const [output, setOutput] = useState<MlxProcessOutput | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [running, setRunning] = useState(false);

  const enhance = async () => {
    setRunning(true);
    setError(null);
    setOutput(null);
    try {
      setOutput(unwrap(await commands.mlxProcessTextDetailed(text)));
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setRunning(false);
    }
  };

  const t = output?.timings;
  const extra = t && [t.start_ms > 0 ? `start ${formatMs(t.start_ms)}` : null, t.load_ms > 0 ? `load ${formatMs(t.load_ms)}` : null].filter(Boolean);
  return (
    <div className="try-it">
      <label htmlFor="transcript">Transcript</label>
      <textarea id="transcript" rows={3} value={text} onChange={(e) => setText(e.target.value)} />
      <div className="inline">
        <button
          type="button"
          className="primary"
          disabled={running || !text.trim() || !!props.disabledReason}
          onClick={() => void enhance()}
        >
          {running ? "Enhancing…" : "Enhance"}
        </button>
        {props.disabledReason && <span className="hint">{props.disabledReason}</span>}
      </div>
      {error && (
        <p className="note note-error" role="alert">
          {error}
        </p>
      )}
      {output && (
        <div className="result" data-testid="try-result">
          <output htmlFor="transcript" className="result-text">
            {output.text}
          </output>
          <p className="hint" data-testid="try-meta">
            {output.clean_up.kept_original === null ? "Enhanced" : "Kept the original"} by {output.model_id} in {formatMs(output.timings.total_ms)}
            {extra && extra.length > 0 ? ` (${extra.join(", ")})` : ""} · {output.tokens_generated} tokens generated ·{" "}
            {output.prompt_tokens} prompt tokens
          </p>
          {output.clean_up.warnings.length > 0 && (
            <ul className="warnings" aria-label="Warnings">
              {output.clean_up.warnings.map((w) => (
                <li key={w} className="note note-warning">
                  {w}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}
