// The UI's one branch on a rule answer's kind: a wait disables, anything else warns.
import { describe, expect, test } from "vitest";
import type { MlxErrorKind } from "../src/bindings";
import { passesByItself, waitingOn, warnings } from "../src/refusal";

const refusal = (kind: MlxErrorKind) => ({ kind, message: `refused: ${kind}` });

describe("rule answers", () => {
  test.each([
    ["busy", true],
    ["download_in_progress", true],
    ["insufficient_disk", false],
    ["offline", false],
  ] as const)("%s passes by itself: %s", (kind, passes) => {
    expect(passesByItself(refusal(kind))).toBe(passes);
  });

  test("a wait is returned for its button, anything else becomes a warning", () => {
    expect(waitingOn(refusal("busy"))).toEqual(refusal("busy"));
    expect(waitingOn(refusal("insufficient_disk"))).toBeNull();
    expect(waitingOn(undefined)).toBeNull();
    expect(warnings(refusal("insufficient_disk"), undefined, refusal("download_in_progress"))).toEqual([refusal("insufficient_disk")]);
  });
});
