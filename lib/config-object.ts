import * as v from "valibot";
import { invalid } from "./errors.ts";
import { nameProblem } from "./fields.ts";

/** Most names an in-use or conflict message lists before it ends with "...". */
const LISTED_NAMES = 10;

/** Rejects an object name from a URL or a body with a 400 naming `field` and the value. */
export function requireValidName(field: string, value: string, pattern: RegExp, max = 63): void {
  const problem = nameProblem(field, value, pattern, max);
  if (problem !== null) throw invalid(`Invalid request: ${problem}`);
}

/**
 * Rejects a body `name` that differs from the URL name. luna2-cli always sends `name`; a
 * different value would be a silent rename, so callers must use the rename key instead.
 */
export function requireSameName(bodyName: string | undefined, urlName: string, renameKey: string): void {
  if (bodyName !== undefined && bodyName !== urlName) {
    throw invalid(`Invalid request: name "${bodyName}" differs from "${urlName}" in the URL: send ${renameKey} to rename`);
  }
}

/** Formats names for a message as `a, b, c`, cut after ten names with ", ...". */
export function listNames(names: readonly string[]): string {
  const shown = names.slice(0, LISTED_NAMES).join(", ");
  return names.length > LISTED_NAMES ? `${shown}, ...` : shown;
}

/** Counts `names` with a singular or plural noun, e.g. `1 node` or `3 nodes`. */
export function countOf(names: readonly unknown[], noun: string): string {
  return `${names.length} ${noun}${names.length === 1 ? "" : "s"}`;
}

/**
 * Describes who still uses an object, e.g. `1 group (compute-group) and 2 nodes (node001, node002)`,
 * or returns null when nothing uses it.
 */
export function describeUsers(groups: readonly string[], nodes: readonly string[]): string | null {
  const parts: string[] = [];
  if (groups.length > 0) parts.push(`${countOf(groups, "group")} (${listNames(groups)})`);
  if (nodes.length > 0) parts.push(`${countOf(nodes, "node")} (${listNames(nodes)})`);
  return parts.length > 0 ? parts.join(" and ") : null;
}

/** Returns null for `""` and the value otherwise, for nullable text columns where `""` clears. */
export function emptyToNull<T>(value: T | ""): T | null {
  return value === "" ? null : value;
}

/** Wraps objects keyed by name in the `{"config": {"<type>": {...}}}` response body. */
export function wrapObjects(type: string, objects: Record<string, unknown>): { config: Record<string, Record<string, unknown>> } {
  return { config: { [type]: objects } };
}

/** Schema of the `name` key luna2-cli puts in every object body. */
export const bodyName = v.optional(v.string());
