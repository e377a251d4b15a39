// The one place the frontend turns the generated bindings' `Result`s into values or
// thrown `AppError`s, so components can use try/catch and show `message` as it is.
import type { MlxCommandError, MlxErrorKind, Result } from "./bindings";

export class AppError extends Error {
  readonly kind: MlxErrorKind;
  constructor(error: MlxCommandError) {
    super(error.message);
    this.kind = error.kind;
  }
}

export function unwrap<T>(result: Result<T, MlxCommandError>): T {
  if (result.status === "error") throw new AppError(result.error);
  return result.data;
}

/** The message of anything thrown: an `AppError` from the core, or a plain error. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  return JSON.stringify(error);
}
