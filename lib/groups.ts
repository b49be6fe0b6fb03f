import { and, asc, eq } from "drizzle-orm";
import * as v from "valibot";
import { UNMANAGED_BMC_USERS } from "./bmcsetups.ts";
import { DEFAULT_PARTSCRIPT, DEFAULT_POSTSCRIPT } from "./bootstrap.ts";
import { listControllers, PROVISION_METHODS } from "./cluster.ts";
import { countOf, listNames } from "./config-object.ts";
import type { Database, Transaction } from "./db/database.ts";
import { bmcsetup, groupInterface, groupSecret, node, nodeGroup, osimage, osimageTag } from "./db/schema/index.ts";
import { conflict, invalid, inUse } from "./errors.ts";
import { DOMAIN_NAME, flag, multilineText, text } from "./fields.ts";
import { applyGroupInterfaceEntry, GroupInterfaceEntry, type GroupInterfaceInput, type InterfaceChanges } from "./group-interfaces.ts";
import { checkGroupName, findGroup, type GroupRow, INTERFACE_NAME, INTERFACE_NAME_MAX, requireGroup } from "./group-view.ts";

type GroupInsert = typeof nodeGroup.$inferInsert;

/** Name of the interface a node boots from, which every new group gets. */
const BOOT_INTERFACE = "BOOTIF";

/** Column values of a new group where the request does not set them. */
const CREATE_DEFAULTS = {
  prescript: "",
  partscript: DEFAULT_PARTSCRIPT,
  postscript: DEFAULT_POSTSCRIPT,
  setupbmc: false,
  netboot: true,
  bootmenu: false,
  ipxe_kernel: "default",
} satisfies Partial<GroupInsert>;

/** Largest script a group stores, in characters of base64. */
const SCRIPT_MAX = 1024 * 1024;

function orNull<T extends string>(value: T): T | null {
  return value === "" ? null : value;
}

/** A comma- or space-separated list of role or script names, stored comma-separated; `""` clears it. */
const nameList = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const items = dataset.value.split(/[\s,]+/).filter((item) => item !== "");
    const bad = items.find((item) => !/^[a-z0-9_-]+$/.test(item));
    if (bad !== undefined) {
      addIssue({ message: `"${bad}" is invalid: use lower-case letters, digits, '-' and '_'` });
      return NEVER;
    }
    return items.length === 0 ? null : [...new Set(items)].join(",");
  }),
);

/** Schema accepting one of `choices`, or `""`, which clears the field. */
function choiceOrEmpty<const Choices extends readonly string[]>(choices: Choices, caseInsensitive = false) {
  return v.pipe(
    v.string(),
    v.transform((value) => (caseInsensitive ? value.toLowerCase() : value)),
    v.check((value) => value === "" || choices.includes(value), `must be ${choices.map((item) => `"${item}"`).join(", ")} or empty`),
    v.transform((value) => orNull(value) as Choices[number] | null),
  );
}

/** Valibot entries of the group fields a request body may set, shared by POST and _clone. */
export const groupFieldEntries = {
  setupbmc: v.optional(flag),
  netboot: v.optional(flag),
  bootmenu: v.optional(flag),
  domain: v.optional(v.pipe(
    v.string(),
    v.check((value) => value === "" || DOMAIN_NAME.test(value), "must be a lower-case DNS name or empty"),
    v.transform(orNull),
  )),
  kerneloptions: v.optional(v.pipe(text(4096), v.transform(orNull))),
  ipxe_kernel: v.optional(choiceOrEmpty(["default", "alternative"], true)),
  prescript: v.optional(multilineText(SCRIPT_MAX)),
  partscript: v.optional(multilineText(SCRIPT_MAX)),
  postscript: v.optional(multilineText(SCRIPT_MAX)),
  comment: v.optional(v.pipe(multilineText(65536), v.transform(orNull))),
  roles: v.optional(nameList),
  scripts: v.optional(nameList),
  provision_interface: v.optional(v.pipe(
    v.string(),
    v.check(
      (value) => value === "" || (value.length <= INTERFACE_NAME_MAX && INTERFACE_NAME.test(value)),
      "must be an interface name or empty",
    ),
    v.transform(orNull),
  )),
  provision_method: v.optional(choiceOrEmpty(PROVISION_METHODS)),
  provision_fallback: v.optional(choiceOrEmpty(PROVISION_METHODS)),
  unmanaged_bmc_users: v.optional(v.pipe(
    v.picklist(["", "none", "skip", ...UNMANAGED_BMC_USERS], 'must be "disable", "delete" or empty'),
    v.transform((value) => (value === "disable" || value === "delete" ? value : null)),
  )),
  /** The group's BMC setup by name; `""` clears it. */
  bmcsetupname: v.optional(text(63)),
  /** The same as `bmcsetupname`, the key nodes use. */
  bmcsetup: v.optional(text(63)),
  /** The group's OS image by name; `""` clears it and its tag. */
  osimage: v.optional(text(63)),
  /** A tag of the group's OS image; `""` or `default` selects the image's own files. */
  osimagetag: v.optional(text(127)),
  interfaces: v.optional(v.array(GroupInterfaceEntry)),
};

const GroupFieldsSchema = v.strictObject(groupFieldEntries);

/** The group fields of one parsed request body. */
export type GroupFields = v.InferOutput<typeof GroupFieldsSchema>;

/** Outcome of a group POST: whether the group was created, and which interfaces changed. */
export interface GroupSaveResult {
  outcome: "created" | "updated";
  interfaces: InterfaceChanges;
}

/**
 * Creates the group `name` or updates it, renaming it to `newName` when given, and applies
 * the body's interfaces to the group and its member nodes, all in one transaction. A new
 * group gets the defaults of CREATE_DEFAULTS and a BOOTIF interface on the beacon
 * controller's network unless the body sends one.
 */
export async function saveGroup(db: Database, name: string, fields: GroupFields, newName: string | undefined, now: number): Promise<GroupSaveResult> {
  checkGroupName(name);
  return db.write(async (tx) => {
    const existing = await findGroup(tx, name);
    const columns = await resolveColumns(tx, fields, existing);

    if (existing === null) {
      if (newName !== undefined) {
        throw invalid(`Invalid request: newgroupname is only allowed when renaming, but group "${name}" does not exist`);
      }
      // A BMC setup without setupbmc means the caller wants it used.
      const setupbmc = columns.setupbmc === undefined && columns.bmcsetup_id ? { setupbmc: true } : {};
      const [group] = await tx.insert(nodeGroup).values({ ...CREATE_DEFAULTS, ...columns, ...setupbmc, name }).returning();
      requireBmcSetupForSetupBmc(group, true);
      const entries = [...(fields.interfaces ?? [])];
      if (!entries.some((entry) => (entry.newinterfacename ?? entry.interface) === BOOT_INTERFACE)) {
        entries.unshift({ interface: BOOT_INTERFACE, network: await beaconNetwork(tx) });
      }
      return { outcome: "created", interfaces: await applyEntries(tx, group, entries, now) };
    }

    if (newName !== undefined && newName !== name) {
      if ((await findGroup(tx, newName)) !== null) throw conflict(`Group "${newName}" already exists`);
      columns.name = newName;
    }
    let group = existing;
    if (Object.keys(columns).length > 0) {
      [group] = await tx.update(nodeGroup).set(columns).where(eq(nodeGroup.id, existing.id)).returning();
    }
    requireBmcSetupForSetupBmc(group, columns.setupbmc !== undefined || columns.bmcsetup_id !== undefined);
    return { outcome: "updated", interfaces: await applyEntries(tx, group, fields.interfaces ?? [], now) };
  });
}

/**
 * Creates `newName` as a copy of group `source`: its columns with `fields` applied over them,
 * its interfaces (entries in `fields.interfaces` replace same-named ones) and its secrets,
 * copied as ciphertext. The new group has no members, so no node changes.
 */
export async function cloneGroup(db: Database, source: string, newName: string, fields: GroupFields, now: number): Promise<void> {
  checkGroupName(newName, "newgroupname");
  await db.write(async (tx) => {
    const original = await requireGroup(tx, source);
    if ((await findGroup(tx, newName)) !== null) throw conflict(`Group "${newName}" already exists`);
    const columns = await resolveColumns(tx, fields, original);
    const { id: _id, name: _name, ...copied } = original;
    const [group] = await tx.insert(nodeGroup).values({ ...copied, ...columns, name: newName }).returning();
    requireBmcSetupForSetupBmc(group, true);

    const interfaces = await tx.select().from(groupInterface).where(eq(groupInterface.group_id, original.id));
    for (const { id: _interfaceId, group_id: _groupId, ...row } of interfaces) {
      await tx.insert(groupInterface).values({ ...row, group_id: group.id });
    }
    const secrets = await tx.select().from(groupSecret).where(eq(groupSecret.group_id, original.id));
    for (const { id: _secretId, group_id: _groupId, ...row } of secrets) {
      await tx.insert(groupSecret).values({ ...row, group_id: group.id });
    }
    await applyEntries(tx, group, fields.interfaces ?? [], now);
  });
}

/**
 * Deletes a group with its interfaces and secrets. Throws in-use, naming up to ten member
 * nodes and their count, while nodes still belong to it.
 */
export async function deleteGroup(db: Database, name: string): Promise<void> {
  await db.write(async (tx) => {
    const group = await requireGroup(tx, name);
    const members = await tx.select({ name: node.name }).from(node).where(eq(node.group_id, group.id)).orderBy(asc(node.name));
    if (members.length > 0) {
      const names = members.map((member) => member.name);
      const verb = names.length === 1 ? "uses" : "use";
      throw inUse(`Cannot delete group "${group.name}": ${countOf(names, "node")} still ${verb} it: ${listNames(names)}`);
    }
    // The foreign keys cascade, but deleting dependants first does not depend on them being enforced.
    await tx.delete(groupInterface).where(eq(groupInterface.group_id, group.id));
    await tx.delete(groupSecret).where(eq(groupSecret.group_id, group.id));
    await tx.delete(nodeGroup).where(eq(nodeGroup.id, group.id));
  });
}

async function applyEntries(tx: Transaction, group: GroupRow, entries: GroupInterfaceInput[], now: number): Promise<InterfaceChanges> {
  const changes: InterfaceChanges = { created: [], updated: [] };
  for (const entry of entries) {
    const outcome = await applyGroupInterfaceEntry(tx, group, entry, now);
    changes[outcome].push(entry.newinterfacename ?? entry.interface);
  }
  return changes;
}

/** Name of the network of the beacon controller's address, where a new group's BOOTIF goes. */
async function beaconNetwork(tx: Transaction): Promise<string> {
  const beacon = (await listControllers(tx)).find((item) => item.beacon);
  if (!beacon?.network) {
    throw invalid(`Invalid request: interface ${BOOT_INTERFACE} was not sent and the beacon controller has no network to put it in: send interfaces with ${BOOT_INTERFACE} and its network`);
  }
  return beacon.network;
}

function requireBmcSetupForSetupBmc(group: GroupRow, touched: boolean): void {
  if (touched && group.setupbmc === true && group.bmcsetup_id === null) {
    throw invalid(`Invalid request: setupbmc of group "${group.name}" requires a BMC setup: send bmcsetupname`);
  }
}

/**
 * Turns the request fields into column values, resolving the BMC setup, OS image and tag
 * names to ids. Setting `osimage` resets the tag unless the same request sets `osimagetag`.
 */
async function resolveColumns(tx: Transaction, fields: GroupFields, current: GroupRow | null): Promise<Partial<GroupInsert>> {
  const { bmcsetupname, bmcsetup: bmcsetupAlias, osimage: imageName, osimagetag: tagName, interfaces: _interfaces, ...plain } = fields;
  const columns: Partial<GroupInsert> = {};
  for (const [key, value] of Object.entries(plain)) {
    if (value !== undefined) (columns as Record<string, unknown>)[key] = value;
  }

  if (bmcsetupname !== undefined && bmcsetupAlias !== undefined && bmcsetupname !== bmcsetupAlias) {
    throw invalid(`Invalid request: bmcsetupname "${bmcsetupname}" and bmcsetup "${bmcsetupAlias}" differ: send one of them`);
  }
  const setupName = bmcsetupname ?? bmcsetupAlias;
  if (setupName !== undefined) {
    if (setupName === "") {
      columns.bmcsetup_id = null;
    } else {
      const [row] = await tx.select({ id: bmcsetup.id }).from(bmcsetup).where(eq(bmcsetup.name, setupName));
      if (!row) throw invalid(`Invalid request: bmcsetupname "${setupName}" does not exist`);
      columns.bmcsetup_id = row.id;
    }
  }

  if (imageName !== undefined) {
    if (imageName === "") {
      columns.osimage_id = null;
    } else {
      const [row] = await tx.select({ id: osimage.id }).from(osimage).where(eq(osimage.name, imageName));
      if (!row) throw invalid(`Invalid request: osimage "${imageName}" does not exist`);
      columns.osimage_id = row.id;
    }
    columns.osimagetag_id = null;
  }

  if (tagName !== undefined) {
    if (tagName === "" || tagName === "default") {
      columns.osimagetag_id = null;
    } else {
      const imageId = columns.osimage_id !== undefined ? columns.osimage_id : (current?.osimage_id ?? null);
      if (imageId === null) throw invalid(`Invalid request: osimagetag "${tagName}" needs an osimage: send osimage too`);
      const [row] = await tx
        .select({ id: osimageTag.id })
        .from(osimageTag)
        .where(and(eq(osimageTag.osimage_id, imageId), eq(osimageTag.name, tagName)));
      if (!row) throw invalid(`Invalid request: osimagetag "${tagName}" is not a tag of the group's osimage`);
      columns.osimagetag_id = row.id;
    }
  }
  return columns;
}
