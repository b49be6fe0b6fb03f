import { and, asc, eq, isNull, or } from "drizzle-orm";
import * as v from "valibot";
import { describeUsers, requireValidName } from "./config-object.ts";
import { randomHex } from "./config.ts";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { bmcsetup, node, nodeGroup } from "./db/schema/index.ts";
import { conflict, inUse, invalid, notFound } from "./errors.ts";
import { integer, LOOSE_NAME, text } from "./fields.ts";

type Reader = Orm | Transaction;
export type BmcSetupRow = typeof bmcsetup.$inferSelect;

/** ipmitool privilege levels a BMC setup may request. */
export const BMC_PRIVILEGES = ["USER", "OPERATOR", "ADMINISTRATOR"] as const;

/** Values of `unmanaged_bmc_users`; null means the installer leaves unknown BMC users alone. */
export const UNMANAGED_BMC_USERS = ["disable", "delete"] as const;

/** Defaults of a new BMC setup, as the bootstrap cluster uses them. */
const CREATE_DEFAULTS = { userid: 2, netchannel: 1, mgmtchannel: 1 };

/** Random bytes of a generated password. Its 16 hex characters fit every BMC, because IPMI 1.5 allows 16 password bytes and IPMI 2.0 allows 20. */
const GENERATED_PASSWORD_BYTES = 8;

/** A BMC password: stored and sent to ipmitool exactly as given, so only control characters are rejected. */
const password = v.pipe(text(255), v.minLength(1, "must not be empty"));

/** Valibot entries of the BMC setup columns a request body may set, shared by POST and _clone. */
export const bmcSetupFieldEntries = {
  userid: v.optional(integer(1, 255)),
  username: v.optional(v.pipe(text(63), v.transform((value) => value || null))),
  password: v.optional(password),
  netchannel: v.optional(integer(0, 15)),
  mgmtchannel: v.optional(integer(0, 15)),
  comment: v.optional(v.pipe(text(4096), v.transform((value) => value || null))),
  unmanaged_bmc_users: v.optional(v.pipe(
    v.picklist(["", "none", "skip", ...UNMANAGED_BMC_USERS], 'must be "disable", "delete" or empty'),
    v.transform((value) => value === "disable" || value === "delete" ? value : null),
  )),
  // Suite 0 authenticates nothing, so it is never accepted.
  cipher_suite: v.optional(integer(1, 17)),
  privilege: v.optional(v.pipe(
    v.string(),
    v.transform((value) => value.toUpperCase()),
    v.union([v.literal(""), v.picklist(BMC_PRIVILEGES)], `must be ${BMC_PRIVILEGES.join(", ")} or empty`),
    v.transform((value) => value === "" ? null : value),
  )),
  retries: v.optional(integer(0, 10)),
  timeout: v.optional(integer(1, 600)),
};

/** Columns a create, update or clone may set; null clears a column. */
export interface BmcSetupFields {
  userid?: number | null;
  username?: string | null;
  password?: string;
  netchannel?: number | null;
  mgmtchannel?: number | null;
  comment?: string | null;
  unmanaged_bmc_users?: (typeof UNMANAGED_BMC_USERS)[number] | null;
  cipher_suite?: number | null;
  privilege?: (typeof BMC_PRIVILEGES)[number] | null;
  retries?: number | null;
  timeout?: number | null;
}

/** A BMC setup as the API returns it; the password is returned as stored, which luna2-cli shows. */
export type BmcSetupView = Omit<BmcSetupRow, "id">;

function toView(row: BmcSetupRow): BmcSetupView {
  const { id: _id, ...view } = row;
  return view;
}

/** Loads a BMC setup by name, or throws 404 naming it. */
export async function findBmcSetup(db: Reader, name: string): Promise<BmcSetupRow> {
  requireValidName("BMC setup name", name, LOOSE_NAME);
  const [row] = await db.select().from(bmcsetup).where(eq(bmcsetup.name, name));
  if (!row) throw notFound(`BMC setup "${name}" not found`);
  return row;
}

/** Lists every BMC setup keyed by name, or throws 404 when there is none. */
export async function listBmcSetups(db: Reader): Promise<Record<string, BmcSetupView>> {
  const rows = await db.select().from(bmcsetup).orderBy(asc(bmcsetup.name));
  if (rows.length === 0) throw notFound("No BMC setup is available");
  return Object.fromEntries(rows.map((row) => [row.name, toView(row)]));
}

/** Returns one BMC setup keyed by its name. */
export async function getBmcSetup(db: Reader, name: string): Promise<Record<string, BmcSetupView>> {
  const row = await findBmcSetup(db, name);
  return { [row.name]: toView(row) };
}

async function requireFreeName(tx: Transaction, name: string): Promise<void> {
  requireValidName("BMC setup name", name, LOOSE_NAME);
  const [existing] = await tx.select({ id: bmcsetup.id }).from(bmcsetup).where(eq(bmcsetup.name, name));
  if (existing) throw conflict(`BMC setup "${name}" already exists`);
}

/**
 * Creates the BMC setup `name` or updates it, and renames it to `newName` when given. A new
 * setup gets user id 2 and channels 1 unless sent, and a random password when none is sent.
 * Returns whether the setup was created.
 */
export async function saveBmcSetup(db: Database, name: string, fields: BmcSetupFields, newName?: string): Promise<"created" | "updated"> {
  requireValidName("BMC setup name", name, LOOSE_NAME);
  return db.write(async (tx) => {
    const [existing] = await tx.select().from(bmcsetup).where(eq(bmcsetup.name, name));
    if (!existing) {
      if (newName !== undefined) {
        throw invalid(`Invalid request: newbmcname is only allowed when renaming, but BMC setup "${name}" does not exist`);
      }
      await tx.insert(bmcsetup).values({
        ...CREATE_DEFAULTS,
        ...fields,
        name,
        password: fields.password ?? randomHex(GENERATED_PASSWORD_BYTES),
      });
      return "created";
    }
    const values: Partial<BmcSetupRow> = { ...fields };
    if (newName !== undefined && newName !== name) {
      await requireFreeName(tx, newName);
      values.name = newName;
    }
    if (Object.keys(values).length > 0) await tx.update(bmcsetup).set(values).where(eq(bmcsetup.id, existing.id));
    return "updated";
  });
}

/** Copies BMC setup `name` with every column to `newName`, then applies `fields`. */
export async function cloneBmcSetup(db: Database, name: string, newName: string, fields: BmcSetupFields): Promise<void> {
  await db.write(async (tx) => {
    const source = await findBmcSetup(tx, name);
    await requireFreeName(tx, newName);
    const { id: _id, ...columns } = source;
    await tx.insert(bmcsetup).values({ ...columns, ...fields, name: newName });
  });
}

/** Names of the groups and nodes that refer to a BMC setup directly. */
async function bmcSetupUsers(db: Reader, id: number): Promise<{ groups: string[]; nodes: string[] }> {
  const groups = await db.select({ name: nodeGroup.name }).from(nodeGroup).where(eq(nodeGroup.bmcsetup_id, id)).orderBy(asc(nodeGroup.name));
  const nodes = await db.select({ name: node.name }).from(node).where(eq(node.bmcsetup_id, id)).orderBy(asc(node.name));
  return { groups: groups.map((row) => row.name), nodes: nodes.map((row) => row.name) };
}

/** Deletes a BMC setup; throws 409 naming the groups and nodes that still use it. */
export async function deleteBmcSetup(db: Database, name: string): Promise<void> {
  await db.write(async (tx) => {
    const row = await findBmcSetup(tx, name);
    const users = await bmcSetupUsers(tx, row.id);
    const description = describeUsers(users.groups, users.nodes);
    if (description !== null) throw inUse(`Cannot delete BMC setup "${name}": ${description} still use it`);
    await tx.delete(bmcsetup).where(eq(bmcsetup.id, row.id));
  });
}

/** Lists the nodes that use a BMC setup, set on the node itself or inherited from its group. */
export async function listBmcSetupMembers(db: Reader, name: string): Promise<string[]> {
  const row = await findBmcSetup(db, name);
  const rows = await db
    .select({ name: node.name })
    .from(node)
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .where(or(eq(node.bmcsetup_id, row.id), and(isNull(node.bmcsetup_id), eq(nodeGroup.bmcsetup_id, row.id))))
    .orderBy(asc(node.name));
  return rows.map((member) => member.name);
}
