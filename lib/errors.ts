/**
 * The closed set of domain errors. Library code throws these, and `statusFor` in this file is the
 * only place that turns them into HTTP status codes. No status is ever derived from message text.
 */
export type DomainErrorKind =
  | "invalid"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "in_use"
  | "unavailable";

/** An expected failure whose message is safe to show to the API caller. */
export class DomainError extends Error {
  readonly kind: DomainErrorKind;

  constructor(kind: DomainErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.kind = kind;
    this.name = "DomainError";
  }
}

/** Creates the error for input that fails validation; the message names the field and the value. */
export function invalid(message: string): DomainError {
  return new DomainError("invalid", message);
}

/** Creates the error for a missing or rejected credential. */
export function unauthorized(message: string): DomainError {
  return new DomainError("unauthorized", message);
}

/** Creates the error for a valid credential that does not grant this request. */
export function forbidden(message: string): DomainError {
  return new DomainError("forbidden", message);
}

/** Creates the error for an object or file that does not exist. */
export function notFound(message: string): DomainError {
  return new DomainError("not_found", message);
}

/** Creates the error for a known path requested with a method it does not serve. */
export function methodNotAllowed(message: string): DomainError {
  return new DomainError("method_not_allowed", message);
}

/** Creates the error for a name, MAC address or IP address that another object already uses. */
export function conflict(message: string): DomainError {
  return new DomainError("conflict", message);
}

/** Creates the error for an object that cannot be removed or changed because others still refer to it. */
export function inUse(message: string): DomainError {
  return new DomainError("in_use", message);
}

/** Creates the error for a backend (database, external tool, peer controller) that cannot serve the request now. */
export function unavailable(message: string, cause?: unknown): DomainError {
  return new DomainError("unavailable", message, cause === undefined ? undefined : { cause });
}

const STATUS_BY_KIND = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  in_use: 409,
  unavailable: 503,
} as const satisfies Record<DomainErrorKind, number>;

/** Maps a domain error to its HTTP status code. */
export function statusFor(error: DomainError): (typeof STATUS_BY_KIND)[DomainErrorKind] {
  return STATUS_BY_KIND[error.kind];
}
