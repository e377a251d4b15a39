// How long a clean-up may take before the transcript is pasted as it came.

export const ANSWER_WITHIN: { value: number | null; label: string }[] = [
  { value: 5, label: "5 seconds" },
  { value: 10, label: "10 seconds" },
  { value: 15, label: "15 seconds" },
  { value: 30, label: "30 seconds" },
  { value: 60, label: "1 minute" },
  { value: null, label: "Wait as long as it takes" },
];

/** A number of seconds, or `null` for no deadline; a value not in the list is shown too. */
export function AnswerWithinSelect(props: { id: string; value: number | null; onChange: (v: number | null) => void }) {
  const known = ANSWER_WITHIN.some((choice) => choice.value === props.value);
  const choices = known ? ANSWER_WITHIN : [...ANSWER_WITHIN, { value: props.value, label: `${props.value} seconds` }];
  return (
    <select
      id={props.id}
      value={props.value === null ? "never" : String(props.value)}
      onChange={(e) => props.onChange(e.target.value === "never" ? null : Number(e.target.value))}
    >
      {choices.map((choice) => (
        <option key={choice.label} value={choice.value === null ? "never" : String(choice.value)}>
          {choice.label}
        </option>
      ))}
    </select>
  );
}
