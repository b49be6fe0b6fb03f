import * as v from "valibot";
import type { Config } from "./config.ts";
import { invalid, notFound, unavailable } from "./errors.ts";
import { CommandError, type CommandResult, type Hardware } from "./hardware/index.ts";

/**
 * OS users and groups live in LDAP and are managed by `obol`, the ClusterVision user tool, run as
 * `[USERS] COMMAND`. This module builds its argv (obol 1.6: `obol [-J] user|group
 * list|show|add|modify|delete <name> [--flag=value ...]`) and maps its results to domain errors.
 */

/** Whether an account is an OS user or an OS group. */
export type OsAccountKind = "user" | "group";

/** Fields a user create-or-update may set; each key is an LDAP attribute name, as luna2 clients send them. */
export interface OsUserChanges {
  userPassword?: string;
  cn?: string;
  sn?: string;
  givenName?: string;
  /** Primary group by name. */
  groupname?: string;
  uidNumber?: number;
  gidNumber?: number;
  mail?: string;
  telephoneNumber?: string;
  loginShell?: string;
  homeDirectory?: string;
  /** Secondary groups. */
  memberOf?: string[];
  /** Days until the account expires, or -1 for never. */
  shadowExpire?: number;
}

/** Fields a group create-or-update may set. */
export interface OsGroupChanges {
  gidNumber?: number;
  /** User names of the members. */
  member?: string[];
}

/** The services the obol adapter needs: the command runner and `[USERS] COMMAND`. */
export interface OsAccountServices {
  hardware: Hardware;
  config: Pick<Config, "users">;
}

const TIMEOUT_MS = 30_000;
const NAME_MAX = 32;
const ID_MAX = 2 ** 31 - 1;

/** OS user and group names: letters, digits, '_', '.' and '-', not starting with '-' or '.'. */
export const OS_ACCOUNT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Returns why `value` is not a valid OS user or group name, naming `field`, or null. */
export function osAccountNameProblem(field: string, value: string): string | null {
  if (value.length > NAME_MAX) return `${field} "${value}" is longer than ${NAME_MAX} characters`;
  if (!OS_ACCOUNT_NAME.test(value)) {
    return `${field} "${value}" is invalid: use letters, digits, '_', '.' and '-', starting with a letter, digit or '_'`;
  }
  return null;
}

/** Builds a valibot schema for an OS user or group name. */
export function osAccountName(field: string) {
  return v.pipe(
    v.string(),
    v.check((value) => osAccountNameProblem(field, value) === null, (issue) => osAccountNameProblem(field, String(issue.input))!),
  );
}

/** Builds a schema for a non-empty list of OS user or group names, which obol takes comma-separated. */
export function osAccountNames(field: string) {
  return v.pipe(v.array(osAccountName(field)), v.minLength(1, "must name at least one account"));
}

/** A uid or gid: a JSON number or a string of digits. */
export const osIdNumber = v.pipe(
  v.union([v.number(), v.string()], "must be a whole number"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value;
    const number = typeof value === "number" ? value : /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isInteger(number) || number < 0 || number > ID_MAX) {
      addIssue({ message: `must be a whole number from 0 to ${ID_MAX}, not "${value}"` });
      return NEVER;
    }
    return number;
  }),
);

/** Rejects an account name taken from the URL. */
export function checkOsAccountName(kind: OsAccountKind, name: string): void {
  const problem = osAccountNameProblem(kind === "user" ? "User name" : "Group name", name);
  if (problem) throw invalid(`Invalid request: ${problem}`);
}

function noun(kind: OsAccountKind): string {
  return kind === "user" ? "OS user" : "OS group";
}

/** Runs obol; a program that cannot start, times out or exits non-zero becomes `CommandError`. */
function runObol(services: OsAccountServices, args: string[], stdin?: string): Promise<CommandResult> {
  return services.hardware.run({ program: services.config.users.command, args, timeoutMs: TIMEOUT_MS, stdin });
}

/** Runs a read-only obol command; any failure means the directory cannot be reached, so 503. */
async function readObol(services: OsAccountServices, args: string[], action: string): Promise<unknown> {
  let result: CommandResult;
  try {
    result = await runObol(services, args);
  } catch (error) {
    if (error instanceof CommandError) throw unavailable(`Cannot ${action}: ${error.message}`, error);
    throw error;
  }
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw unavailable(`Cannot ${action}: ${services.config.users.command} ${args.join(" ")} printed output that is not JSON`);
  }
}

/**
 * Runs an obol command that changes the directory. The account list was read just before, so
 * the directory was reachable: a non-zero exit is obol rejecting the values (400), while a
 * command that could not start, timed out or was killed is 503.
 * NOTE: a directory that fails between the list and this command is reported as 400 as well.
 */
async function writeObol(services: OsAccountServices, args: string[], action: string, stdin?: string): Promise<void> {
  try {
    await runObol(services, args, stdin);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    const rejected = error.exitCode !== null && error.exitCode > 0 && !error.timedOut && error.signal === null;
    if (rejected) throw invalid(`Invalid request: obol could not ${action}: ${error.message}`);
    throw unavailable(`Cannot ${action}: ${error.message}`, error);
  }
}

type AccountRecord = Record<string, unknown>;

async function listRecords(services: OsAccountServices, kind: OsAccountKind): Promise<AccountRecord[]> {
  const args = ["-J", kind, "list"];
  const output = await readObol(services, args, `list ${noun(kind)}s`);
  if (!Array.isArray(output) || !output.every((item) => typeof item === "object" && item !== null && !Array.isArray(item))) {
    throw unavailable(`Cannot list ${noun(kind)}s: ${services.config.users.command} ${args.join(" ")} printed JSON that is not a list of objects`);
  }
  return output as AccountRecord[];
}

/** obol lists users with their name in `uid` and groups with theirs in `cn`. */
function findRecord(records: AccountRecord[], kind: OsAccountKind, name: string): AccountRecord | undefined {
  const key = kind === "user" ? "uid" : "cn";
  return records.find((record) => record[key] === name);
}

async function requireRecord(services: OsAccountServices, kind: OsAccountKind, name: string): Promise<AccountRecord> {
  const record = findRecord(await listRecords(services, kind), kind, name);
  if (!record) throw notFound(`${noun(kind)} "${name}" does not exist`);
  return record;
}

/** Lists OS users or groups as obol prints them; not-found when there are none. */
export async function listOsAccounts(services: OsAccountServices, kind: OsAccountKind): Promise<AccountRecord[]> {
  const records = await listRecords(services, kind);
  // LUNA2-COMPAT: the original daemon returns 404 rather than an empty list.
  if (records.length === 0) throw notFound(`No ${noun(kind)}s available`);
  return records;
}

/** Shows one OS user or group as obol prints it, without the password hash. */
export async function getOsAccount(services: OsAccountServices, kind: OsAccountKind, name: string): Promise<AccountRecord> {
  await requireRecord(services, kind, name);
  const output = await readObol(services, ["-J", kind, "show", name], `show ${noun(kind)} "${name}"`);
  if (typeof output !== "object" || output === null || Array.isArray(output)) {
    throw unavailable(`Cannot show ${noun(kind)} "${name}": obol printed JSON that is not an object`);
  }
  const { userPassword: _hash, ...record } = output as AccountRecord;
  return record;
}

/** `--flag=value` keeps a value that starts with '-' from being read as another option. */
function flag(name: string, value: string | number | string[]): string {
  return `${name}=${Array.isArray(value) ? value.join(",") : value}`;
}

const USER_FLAGS: [Exclude<keyof OsUserChanges, "userPassword">, string][] = [
  ["cn", "--cn"],
  ["sn", "--sn"],
  ["givenName", "--givenName"],
  ["groupname", "--group"],
  ["uidNumber", "--uid"],
  ["gidNumber", "--gid"],
  ["mail", "--mail"],
  ["telephoneNumber", "--phone"],
  ["loginShell", "--shell"],
  ["memberOf", "--groups"],
  ["shadowExpire", "--expire"],
  ["homeDirectory", "--home"],
];

/**
 * Creates the OS user, or modifies it when it exists. The password never enters argv, where
 * `ps` would show it: obol's `--prompt-password` reads it as one line from stdin.
 */
export async function saveOsUser(services: OsAccountServices, name: string, changes: OsUserChanges): Promise<"created" | "updated"> {
  const existing = findRecord(await listRecords(services, "user"), "user", name);
  const values = { ...changes };
  if (existing && values.uidNumber !== undefined) {
    // obol cannot change the uid of an existing user; resending the current one is harmless.
    if (String(values.uidNumber) !== String(existing.uidNumber)) {
      throw invalid(`Invalid request: uidNumber of OS user "${name}" cannot be changed from ${existing.uidNumber} to ${values.uidNumber}`);
    }
    delete values.uidNumber;
  }

  const args = ["user", existing ? "modify" : "add", name];
  for (const [key, option] of USER_FLAGS) {
    const value = values[key];
    if (value !== undefined) args.push(flag(option, value));
  }
  let stdin: string | undefined;
  if (values.userPassword !== undefined) {
    args.push("--prompt-password");
    stdin = `${values.userPassword}\n`;
  }

  await writeObol(services, args, `${existing ? "change" : "add"} OS user "${name}"`, stdin);
  return existing ? "updated" : "created";
}

/** Creates the OS group, or modifies it when it exists. */
export async function saveOsGroup(services: OsAccountServices, name: string, changes: OsGroupChanges): Promise<"created" | "updated"> {
  const existing = findRecord(await listRecords(services, "group"), "group", name);
  let gidNumber = changes.gidNumber;
  if (existing && gidNumber !== undefined) {
    // obol cannot change the gid of an existing group; resending the current one is harmless.
    if (String(gidNumber) !== String(existing.gidNumber)) {
      throw invalid(`Invalid request: gidNumber of OS group "${name}" cannot be changed from ${existing.gidNumber} to ${gidNumber}`);
    }
    gidNumber = undefined;
  }

  const args = ["group", existing ? "modify" : "add", name];
  if (gidNumber !== undefined) args.push(flag("--gid", gidNumber));
  if (changes.member !== undefined) args.push(flag("--users", changes.member));

  await writeObol(services, args, `${existing ? "change" : "add"} OS group "${name}"`);
  return existing ? "updated" : "created";
}

/** Deletes an OS user or group; not-found when obol does not list it. */
export async function deleteOsAccount(services: OsAccountServices, kind: OsAccountKind, name: string): Promise<void> {
  await requireRecord(services, kind, name);
  await writeObol(services, [kind, "delete", name], `delete ${noun(kind)} "${name}"`);
}
