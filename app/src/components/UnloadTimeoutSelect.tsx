// Handy's "Unload model" choices, with its labels.
import type { MlxModelUnloadTimeout } from "../bindings";

export const UNLOAD_TIMEOUTS: { value: MlxModelUnloadTimeout; label: string }[] = [
  { value: "never", label: "Never" },
  { value: "immediately", label: "Immediately" },
  { value: "min2", label: "After 2 minutes" },
  { value: "min5", label: "After 5 minutes" },
  { value: "min10", label: "After 10 minutes" },
  { value: "min15", label: "After 15 minutes" },
  { value: "hour1", label: "After 1 hour" },
  { value: "sec15", label: "After 15 seconds (debug)" },
];

export function UnloadTimeoutSelect(props: { id: string; value: MlxModelUnloadTimeout; onChange: (v: MlxModelUnloadTimeout) => void }) {
  return (
    <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.target.value as MlxModelUnloadTimeout)}>
      {UNLOAD_TIMEOUTS.map((t) => (
        <option key={t.value} value={t.value}>
          {t.label}
        </option>
      ))}
    </select>
  );
}
