import * as v from "valibot";
import { canonicalIp } from "./ip.ts";

/** Valibot schemas for values that recur across request bodies. Invalid input is rejected, never cleaned. */

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** Free text of at most `max` characters without control characters; `""` clears the field. */
export function text(max = 4096) {
  return v.pipe(
    v.string(),
    v.maxLength(max, `must be at most ${max} characters`),
    v.check((value) => !CONTROL_CHARACTERS.test(value), "must not contain control characters"),
  );
}

/** Multi-line text such as a base64 script or a comment; only NUL is rejected. */
export function multilineText(max = 1024 * 1024) {
  return v.pipe(
    v.string(),
    v.maxLength(max, `must be at most ${max} characters`),
    v.check((value) => !value.includes("\u0000"), "must not contain NUL characters"),
  );
}

const TRUE_WORDS = ["true", "yes", "y", "1", "on"];
const FALSE_WORDS = ["false", "no", "n", "0", "off"];

/**
 * A yes/no value as luna2-cli and admins send it: JSON booleans, 0/1, or the words yes/no and
 * true/false in any case. `""` clears the field and becomes null.
 */
export const flag = v.pipe(
  v.union([v.boolean(), v.picklist([0, 1]), v.string()], "must be true or false"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value;
    if (typeof value === "boolean") return value;
    if (typeof value === "number") return value === 1;
    const lower = value.trim().toLowerCase();
    if (lower === "") return null;
    if (TRUE_WORDS.includes(lower)) return true;
    if (FALSE_WORDS.includes(lower)) return false;
    addIssue({ message: `must be true or false, not "${value}"` });
    return NEVER;
  }),
);

/** Accepts a whole number from `min` to `max` as a JSON number or a string of digits. `""` clears it. */
export function integer(min: number, max: number) {
  return v.pipe(
    v.union([v.number(), v.string()], "must be a whole number"),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const value = dataset.value;
      if (value === "") return null;
      const number = typeof value === "number" ? value : /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
      if (!Number.isInteger(number) || number < min || number > max) {
        addIssue({ message: `must be a whole number from ${min} to ${max}, not "${value}"` });
        return NEVER;
      }
      return number;
    }),
  );
}

/** A single IPv4 or IPv6 address, canonicalised; `""` clears it. */
export const ipOrEmpty = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value.trim();
    if (value === "") return null;
    const canonical = canonicalIp(value);
    if (canonical === null) {
      addIssue({ message: `"${dataset.value}" is not a valid IP address` });
      return NEVER;
    }
    return canonical;
  }),
);

/** A list of IP addresses separated by commas and/or spaces, stored comma-separated; `""` clears it. */
export const ipList = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const items = dataset.value.split(/[\s,]+/).filter((item) => item !== "");
    if (items.length === 0) return null;
    const canonical: string[] = [];
    for (const item of items) {
      const address = canonicalIp(item);
      if (address === null) {
        addIssue({ message: `"${item}" is not a valid IP address` });
        return NEVER;
      }
      canonical.push(address);
    }
    return canonical.join(",");
  }),
);

/** A comma- or space-separated list of DNS names, stored comma-separated; `""` clears it. */
export const domainList = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const items = dataset.value.split(/[\s,]+/).filter((item) => item !== "");
    if (items.length === 0) return null;
    for (const item of items) {
      if (!DOMAIN_NAME.test(item)) {
        addIssue({ message: `"${item}" is not a valid domain name` });
        return NEVER;
      }
    }
    return items.join(",");
  }),
);

/** Lower-case DNS name: labels of 1-63 characters, not starting or ending with '-'. */
export const DOMAIN_NAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.?$/;

/** Node, switch and other-device names: lower-case letters, digits, '-' and '.'. */
export const STRICT_NAME = /^[a-z0-9][a-z0-9.-]*$/;

/** Names of groups, images, BMC setups and secrets: letters, digits, '-', '_', '.' and space. */
export const LOOSE_NAME = /^[A-Za-z0-9][A-Za-z0-9._ -]*$/;

/** Names that no object may have, because they collide with path words. */
export const RESERVED_NAMES = ["default", "inventory"];

/**
 * Checks an object name against `pattern` and the reserved words; returns an error message
 * naming `field`, or null when the name is valid.
 */
export function nameProblem(field: string, value: string, pattern: RegExp, max = 63): string | null {
  if (RESERVED_NAMES.includes(value)) return `${field} "${value}" is a reserved word`;
  if (value.length > max) return `${field} "${value}" is longer than ${max} characters`;
  if (!pattern.test(value)) {
    const allowed = pattern === STRICT_NAME
      ? "lower-case letters, digits, '-' and '.'"
      : pattern === DOMAIN_NAME
        ? "lower-case DNS labels of letters, digits and '-'"
        : "letters, digits, '-', '_', '.' and spaces";
    return `${field} "${value}" is invalid: use ${allowed}, starting with a letter or digit`;
  }
  return null;
}

/** Builds a valibot schema for an object name checked by `nameProblem`. */
export function name(field: string, pattern: RegExp, max = 63) {
  return v.pipe(
    v.string(),
    v.check((value) => nameProblem(field, value, pattern, max) === null, (issue) => nameProblem(field, String(issue.input), pattern, max)!),
  );
}
