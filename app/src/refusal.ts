// How the UI shows the core's rule answers (`delete_blocked`, `download_blocked`,
// `disk_warning`): it branches on each answer's `kind` and shows its `message` as it is.
import type { MlxRefusal } from "./bindings";

/**
 * Whether a refusal passes by itself once what is under way ends (another download, a
 * load, a generation): its button then looks disabled and says why. Any other refusal
 * (no room on the disk) is the user's to fix: it is shown as a warning and the button
 * stays enabled, so the core's check on the click is the one that counts.
 */
export function passesByItself(refusal: MlxRefusal): boolean {
  switch (refusal.kind) {
    case "busy":
    case "download_in_progress":
      return true;
    default:
      return false;
  }
}

/** The refusal when it passes by itself, else `null` (see {@link passesByItself}). */
export function waitingOn(refusal: MlxRefusal | undefined): MlxRefusal | null {
  return refusal && passesByItself(refusal) ? refusal : null;
}

/** The refusals the user has to act on, to show as warnings. */
export function warnings(...refusals: (MlxRefusal | undefined)[]): MlxRefusal[] {
  return refusals.filter((r): r is MlxRefusal => !!r && !passesByItself(r));
}
