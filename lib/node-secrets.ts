import { and, asc, eq } from "drizzle-orm";
import * as v from "valibot";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { groupSecret, node, nodeGroup, nodeSecret } from "./db/schema/index.ts";
import { conflict, invalid, notFound, unavailable } from "./errors.ts";
import { LOOSE_NAME, multilineText, name, nameProblem, STRICT_NAME } from "./fields.ts";
import { type SecretCipher, SecretDecryptionError } from "./secrets.ts";

/** Whether a secret belongs to one node or to every node of a group. */
export type SecretOwnerKind = "node" | "group";

/** One secret as the API shows it: `content` decrypted, exactly as it was sent. */
export interface SecretView {
  name: string;
  content: string;
  path: string | null;
}

/** Secrets keyed by owner kind, then owner name; a kind is present only when it has secrets. */
export type SecretsView = Partial<Record<SecretOwnerKind, Record<string, SecretView[]>>>;

/** One entry of a create-or-update request; `undefined` keeps the stored value, `path: null` clears it. */
export interface SecretInput {
  name: string;
  content?: string;
  path?: string | null;
}

/** Overrides a clone request may set on the copy; `undefined` copies the source's value. */
export interface SecretCloneInput {
  newName: string;
  content?: string;
  path?: string | null;
}

/** Names of the secrets a create-or-update request created and updated. */
export interface SaveResult {
  created: string[];
  updated: string[];
}

const PATH_MAX = 4096;

/** Schema of a secret name: letters, digits, '-', '_', '.' and spaces. */
export const secretName = (field = "name") => name(field, LOOSE_NAME);

/** Schema of secret contents: any text without NUL, stored exactly as sent (luna2-cli sends base64). */
export const secretContent = multilineText();

/**
 * Schema of the file path a secret is installed at: absolute, without '..' segments because the
 * installer writes below the node's root directory. `""` or null clears the path.
 */
export const secretPath = v.pipe(
  v.nullable(v.string()),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value;
    if (value === null || value === "") return null;
    const problem = pathProblem(value);
    if (problem) {
      addIssue({ message: problem });
      return NEVER;
    }
    return value;
  }),
);

function pathProblem(value: string): string | null {
  if (value.length > PATH_MAX) return `path must be at most ${PATH_MAX} characters`;
  if (!value.startsWith("/")) return `path "${value}" must be absolute`;
  if (/[\u0000-\u001f\u007f]/.test(value)) return `path "${value}" must not contain control characters`;
  if (value.split("/").includes("..")) return `path "${value}" must not contain '..' segments`;
  return null;
}

/** Rejects an owner or secret name taken from the URL, naming the value. */
export function checkSecretPathNames(kind: SecretOwnerKind, owner: string, secret?: string): void {
  const ownerProblem = nameProblem(kind === "node" ? "Node name" : "Group name", owner, kind === "node" ? STRICT_NAME : LOOSE_NAME);
  if (ownerProblem) throw invalid(`Invalid request: ${ownerProblem}`);
  if (secret === undefined) return;
  const secretProblem = nameProblem("Secret name", secret, LOOSE_NAME);
  if (secretProblem) throw invalid(`Invalid request: ${secretProblem}`);
}

/**
 * Returns the list sent for `owner` in `{"config":{"secrets":{"<kind>":{"<owner>":[...]}}}}`,
 * rejecting a body that names no owner or another one.
 */
export function unwrapSecretList<Entry>(objects: Record<string, Entry[]>, kind: SecretOwnerKind, owner: string): Entry[] {
  const names = Object.keys(objects);
  if (!(owner in objects) || names.length !== 1) {
    const sent = names.map((key) => `"${key}"`).join(", ") || "nothing";
    throw invalid(`Invalid request: body must contain exactly config.secrets.${kind}.${owner}, not ${sent}`);
  }
  return objects[owner];
}

/**
 * Returns the only entry of a request on one secret, named by the URL. The entry's `name` may be
 * left out, but when sent it must match the URL.
 */
export function unwrapSingleSecret<Entry extends { name?: string }>(
  objects: Record<string, Entry[]>,
  kind: SecretOwnerKind,
  owner: string,
  secret: string,
): Entry {
  const list = unwrapSecretList(objects, kind, owner);
  if (list.length !== 1) throw invalid(`Invalid request: config.secrets.${kind}.${owner} must list exactly one secret, not ${list.length}`);
  const [entry] = list;
  if (entry.name !== undefined && entry.name !== secret) {
    throw invalid(`Invalid request: name "${entry.name}" does not match secret "${secret}" in the URL`);
  }
  return entry;
}

type Reader = Orm | Transaction;

interface Owner {
  kind: SecretOwnerKind;
  id: number;
  name: string;
}

interface StoredSecret {
  id: number;
  name: string;
  content: string;
  path: string | null;
}

function label(owner: { kind: SecretOwnerKind; name: string }): string {
  return `${owner.kind} "${owner.name}"`;
}

async function findOwner(db: Reader, kind: SecretOwnerKind, ownerName: string): Promise<Owner> {
  const table = kind === "node" ? node : nodeGroup;
  const [row] = await db.select({ id: table.id }).from(table).where(eq(table.name, ownerName));
  if (!row) throw notFound(`${kind === "node" ? "Node" : "Group"} "${ownerName}" does not exist`);
  return { kind, id: row.id, name: ownerName };
}

async function listStored(db: Reader, owner: Owner): Promise<StoredSecret[]> {
  if (owner.kind === "node") {
    return db
      .select({ id: nodeSecret.id, name: nodeSecret.name, content: nodeSecret.content, path: nodeSecret.path })
      .from(nodeSecret).where(eq(nodeSecret.node_id, owner.id)).orderBy(asc(nodeSecret.name));
  }
  return db
    .select({ id: groupSecret.id, name: groupSecret.name, content: groupSecret.content, path: groupSecret.path })
    .from(groupSecret)
    .where(eq(groupSecret.group_id, owner.id))
    .orderBy(asc(groupSecret.name));
}

async function findStored(db: Reader, owner: Owner, secret: string): Promise<StoredSecret | null> {
  const rows = await listStored(db, owner);
  return rows.find((row) => row.name === secret) ?? null;
}

async function insertStored(tx: Transaction, owner: Owner, row: { name: string; content: string; path: string | null }): Promise<void> {
  if (owner.kind === "node") await tx.insert(nodeSecret).values({ node_id: owner.id, ...row });
  else await tx.insert(groupSecret).values({ group_id: owner.id, ...row });
}

async function updateStored(tx: Transaction, owner: Owner, id: number, values: { content?: string; path?: string | null }): Promise<void> {
  if (Object.keys(values).length === 0) return;
  if (owner.kind === "node") await tx.update(nodeSecret).set(values).where(eq(nodeSecret.id, id));
  else await tx.update(groupSecret).set(values).where(eq(groupSecret.id, id));
}

async function deleteStored(tx: Transaction, owner: Owner, id: number): Promise<void> {
  if (owner.kind === "node") await tx.delete(nodeSecret).where(and(eq(nodeSecret.id, id), eq(nodeSecret.node_id, owner.id)));
  else await tx.delete(groupSecret).where(and(eq(groupSecret.id, id), eq(groupSecret.group_id, owner.id)));
}

async function decryptRow(cipher: SecretCipher, owner: { kind: SecretOwnerKind; name: string }, row: StoredSecret): Promise<SecretView> {
  try {
    return { name: row.name, content: await cipher.decrypt(row.content), path: row.path };
  } catch (error) {
    if (!(error instanceof SecretDecryptionError)) throw error;
    throw unavailable(`Secret "${row.name}" of ${label(owner)} cannot be decrypted: the stored data was altered or the key file changed`, error);
  }
}

function decryptRows(cipher: SecretCipher, owner: { kind: SecretOwnerKind; name: string }, rows: StoredSecret[]): Promise<SecretView[]> {
  return Promise.all(rows.map((row) => decryptRow(cipher, owner, row)));
}

/** Lists every node and group secret, decrypted. Throws not-found when there are none at all. */
export async function getAllSecrets(db: Orm, cipher: SecretCipher): Promise<SecretsView> {
  const nodeRows = await db
    .select({ owner: node.name, id: nodeSecret.id, name: nodeSecret.name, content: nodeSecret.content, path: nodeSecret.path })
    .from(nodeSecret)
    .innerJoin(node, eq(node.id, nodeSecret.node_id))
    .orderBy(asc(node.name), asc(nodeSecret.name));
  const groupRows = await db
    .select({ owner: nodeGroup.name, id: groupSecret.id, name: groupSecret.name, content: groupSecret.content, path: groupSecret.path })
    .from(groupSecret)
    .innerJoin(nodeGroup, eq(nodeGroup.id, groupSecret.group_id))
    .orderBy(asc(nodeGroup.name), asc(groupSecret.name));
  // LUNA2-COMPAT: the original daemon returns 404 rather than an empty list when no secret exists.
  if (nodeRows.length === 0 && groupRows.length === 0) throw notFound("No secrets available");

  const view: SecretsView = {};
  for (const [kind, rows] of [["node", nodeRows], ["group", groupRows]] as const) {
    if (rows.length === 0) continue;
    const byOwner: Record<string, SecretView[]> = {};
    for (const row of rows) {
      (byOwner[row.owner] ??= []).push(await decryptRow(cipher, { kind, name: row.owner }, row));
    }
    view[kind] = byOwner;
  }
  return view;
}

/**
 * Lists a node's secrets and those of its group, decrypted: what the installer writes to disk.
 * Throws not-found for an unknown node and, as the original daemon does, when both lists are empty.
 */
export async function getNodeSecrets(db: Orm, cipher: SecretCipher, nodeName: string): Promise<SecretsView> {
  const [row] = await db
    .select({ id: node.id, groupId: nodeGroup.id, groupName: nodeGroup.name })
    .from(node)
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .where(eq(node.name, nodeName));
  if (!row) throw notFound(`Node "${nodeName}" does not exist`);

  const nodeOwner: Owner = { kind: "node", id: row.id, name: nodeName };
  const groupOwner: Owner = { kind: "group", id: row.groupId, name: row.groupName };
  const nodeSecrets = await decryptRows(cipher, nodeOwner, await listStored(db, nodeOwner));
  const groupSecrets = await decryptRows(cipher, groupOwner, await listStored(db, groupOwner));
  if (nodeSecrets.length === 0 && groupSecrets.length === 0) throw notFound(`No secrets available for node "${nodeName}"`);

  const view: SecretsView = {};
  if (nodeSecrets.length > 0) view.node = { [nodeName]: nodeSecrets };
  if (groupSecrets.length > 0) view.group = { [row.groupName]: groupSecrets };
  return view;
}

/** Lists a group's own secrets, decrypted; not-found for an unknown group or one without secrets. */
export async function getGroupSecrets(db: Orm, cipher: SecretCipher, groupName: string): Promise<SecretsView> {
  const owner = await findOwner(db, "group", groupName);
  const secrets = await decryptRows(cipher, owner, await listStored(db, owner));
  if (secrets.length === 0) throw notFound(`No secrets available for group "${groupName}"`);
  return { group: { [groupName]: secrets } };
}

/** Returns one secret of a node or group, decrypted. */
export async function getSecret(db: Orm, cipher: SecretCipher, kind: SecretOwnerKind, ownerName: string, secret: string): Promise<SecretsView> {
  const owner = await findOwner(db, kind, ownerName);
  const row = await findStored(db, owner, secret);
  if (!row) throw notFound(`Secret "${secret}" of ${label(owner)} does not exist`);
  return { [kind]: { [ownerName]: [await decryptRow(cipher, owner, row)] } };
}

async function encryptInput(cipher: SecretCipher, input: SecretInput): Promise<{ content?: string; path?: string | null }> {
  const values: { content?: string; path?: string | null } = {};
  if (input.content !== undefined) values.content = await cipher.encrypt(input.content);
  if (input.path !== undefined) values.path = input.path;
  return values;
}

/**
 * Creates or updates several secrets of one owner in one transaction. Contents are encrypted
 * before they reach the database. A new secret needs `content`; an existing one keeps what the
 * entry leaves out.
 */
export async function saveSecrets(db: Database, cipher: SecretCipher, kind: SecretOwnerKind, ownerName: string, inputs: SecretInput[]): Promise<SaveResult> {
  if (inputs.length === 0) throw invalid(`Invalid request: config.secrets.${kind}.${ownerName} must list at least one secret`);
  const seen = new Set<string>();
  for (const input of inputs) {
    if (seen.has(input.name)) throw invalid(`Invalid request: secret "${input.name}" is listed more than once`);
    seen.add(input.name);
  }
  const encrypted = await Promise.all(inputs.map((input) => encryptInput(cipher, input)));

  return db.write(async (tx) => {
    const owner = await findOwner(tx, kind, ownerName);
    const stored = new Map((await listStored(tx, owner)).map((row) => [row.name, row]));
    const result: SaveResult = { created: [], updated: [] };
    for (const [index, input] of inputs.entries()) {
      const values = encrypted[index];
      const existing = stored.get(input.name);
      if (existing) {
        await updateStored(tx, owner, existing.id, values);
        result.updated.push(input.name);
        continue;
      }
      if (values.content === undefined) {
        throw invalid(`Invalid request: secret "${input.name}" of ${label(owner)} does not exist yet, so it needs "content"`);
      }
      await insertStored(tx, owner, { name: input.name, content: values.content, path: values.path ?? null });
      result.created.push(input.name);
    }
    return result;
  });
}

/**
 * Updates one secret; with `create` it is created when missing (node secrets), without it a
 * missing secret is not-found (group secrets). Returns whether it was created.
 */
export async function saveSecret(
  db: Database,
  cipher: SecretCipher,
  kind: SecretOwnerKind,
  ownerName: string,
  input: SecretInput,
  options: { create: boolean },
): Promise<{ created: boolean }> {
  const values = await encryptInput(cipher, input);
  return db.write(async (tx) => {
    const owner = await findOwner(tx, kind, ownerName);
    const existing = await findStored(tx, owner, input.name);
    if (existing) {
      await updateStored(tx, owner, existing.id, values);
      return { created: false };
    }
    if (!options.create) throw notFound(`Secret "${input.name}" of ${label(owner)} does not exist`);
    if (values.content === undefined) {
      throw invalid(`Invalid request: secret "${input.name}" of ${label(owner)} does not exist yet, so it needs "content"`);
    }
    await insertStored(tx, owner, { name: input.name, content: values.content, path: values.path ?? null });
    return { created: true };
  });
}

/** Copies a secret under a new name of the same owner, optionally with new content or path. */
export async function cloneSecret(
  db: Database,
  cipher: SecretCipher,
  kind: SecretOwnerKind,
  ownerName: string,
  secret: string,
  clone: SecretCloneInput,
): Promise<void> {
  const content = clone.content === undefined ? undefined : await cipher.encrypt(clone.content);
  await db.write(async (tx) => {
    const owner = await findOwner(tx, kind, ownerName);
    const source = await findStored(tx, owner, secret);
    if (!source) throw notFound(`Secret "${secret}" of ${label(owner)} does not exist`);
    if (await findStored(tx, owner, clone.newName)) throw conflict(`Secret "${clone.newName}" of ${label(owner)} already exists`);
    await insertStored(tx, owner, {
      name: clone.newName,
      content: content ?? source.content,
      path: clone.path === undefined ? source.path : clone.path,
    });
  });
}

/** Deletes one secret of a node or group. */
export async function deleteSecret(db: Database, kind: SecretOwnerKind, ownerName: string, secret: string): Promise<void> {
  await db.write(async (tx) => {
    const owner = await findOwner(tx, kind, ownerName);
    const row = await findStored(tx, owner, secret);
    if (!row) throw notFound(`Secret "${secret}" of ${label(owner)} does not exist`);
    await deleteStored(tx, owner, row.id);
  });
}

/** Builds the `{"message"}` text for a create-or-update that created at least one secret. */
export function describeSave(kind: SecretOwnerKind, ownerName: string, result: SaveResult): string {
  const quote = (names: string[]) => names.map((item) => `"${item}"`).join(", ");
  const created = `Created ${result.created.length === 1 ? "secret" : "secrets"} ${quote(result.created)}`;
  const updated = result.updated.length === 0 ? "" : ` and updated ${quote(result.updated)}`;
  return `${created}${updated} for ${kind} "${ownerName}"`;
}
