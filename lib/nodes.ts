import { and, eq } from "drizzle-orm";
import * as v from "valibot";
import { PROVISION_METHODS } from "./cluster.ts";
import type { Database, Transaction } from "./db/database.ts";
import { bmcsetup, ipAddress, network, node, nodeGroup, nodeInterface, nodeSecret, osimage, osimageTag, switchDevice } from "./db/schema/index.ts";
import { conflict, forbidden, invalid, notFound } from "./errors.ts";
import { flag, multilineText, name, nameProblem, STRICT_NAME, text } from "./fields.ts";
import { applyInterfaceChanges, INTERFACE_NAME, InterfaceEntry } from "./node-interface-changes.ts";
import { allocateInterfaceAddress, syncNodeWithGroup } from "./node-interfaces.ts";
import type { NodeRow } from "./node-view.ts";

const csv = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    if (!/^[a-z0-9, -]*$/.test(dataset.value)) {
      addIssue({ message: `"${dataset.value}" is invalid: use lower-case names of letters, digits and '-', separated by commas` });
      return NEVER;
    }
    const items = dataset.value.split(/[\s,]+/).filter((item) => item !== "");
    return items.length === 0 ? null : items.join(",");
  }),
);

const provisionMethod = v.union(
  [v.literal(""), v.picklist(PROVISION_METHODS)],
  (issue) => `"${issue.input}" is not supported: use ${PROVISION_METHODS.join(", ")}`,
);

const ipxeKernel = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const lower = dataset.value.toLowerCase();
    if (lower === "") return null;
    if (lower === "default" || lower === "alternative") return lower;
    addIssue({ message: `must be default or alternative, not "${dataset.value}"` });
    return NEVER;
  }),
);

const unmanagedBmcUsers = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const lower = dataset.value.toLowerCase();
    // "none" and "skip" mean the same as empty: leave unmanaged BMC users alone.
    if (lower === "" || lower === "none" || lower === "skip") return null;
    if (lower === "disable" || lower === "delete") return lower;
    addIssue({ message: `must be disable, delete or empty, not "${dataset.value}"` });
    return NEVER;
  }),
);

const provisionInterface = v.union(
  [v.literal(""), v.pipe(v.string(), v.regex(INTERFACE_NAME))],
  (issue) => `"${issue.input}" is not a valid interface name`,
);

/**
 * Fields of a node in a create, update or clone body. `group`, `osimage`, `osimagetag`,
 * `bmcsetup` and `switch` are names resolved to ids; `""` clears a field (but not `group`).
 */
export const NodeFields = v.strictObject({
  name: v.optional(name("name", STRICT_NAME)),
  newnodename: v.optional(name("newnodename", STRICT_NAME)),
  group: v.optional(v.string()),
  osimage: v.optional(v.string()),
  osimagetag: v.optional(v.string()),
  bmcsetup: v.optional(v.string()),
  switch: v.optional(v.string()),
  interfaces: v.optional(v.array(InterfaceEntry)),
  kerneloptions: v.optional(multilineText(4096)),
  ipxe_kernel: v.optional(ipxeKernel),
  switchport: v.optional(text(63)),
  service: v.optional(flag),
  setupbmc: v.optional(flag),
  netboot: v.optional(flag),
  bootmenu: v.optional(flag),
  comment: v.optional(multilineText(65536)),
  roles: v.optional(csv),
  scripts: v.optional(csv),
  vendor: v.optional(text(255)),
  assettag: v.optional(text(255)),
  prescript: v.optional(multilineText()),
  partscript: v.optional(multilineText()),
  postscript: v.optional(multilineText()),
  provision_interface: v.optional(provisionInterface),
  provision_method: v.optional(provisionMethod),
  provision_fallback: v.optional(provisionMethod),
  tpm_uuid: v.optional(text(255)),
  tpm_pubkey: v.optional(multilineText(16384)),
  tpm_sha256: v.optional(text(256)),
  unmanaged_bmc_users: v.optional(unmanagedBmcUsers),
});

/** Parsed node fields. */
export type NodeInput = v.InferOutput<typeof NodeFields>;

/** Keys the provision token of a node may send for its own node: what the installer reports. */
export const PROVISION_TOKEN_KEYS = ["name", "vendor", "assettag", "interfaces", "tpm_uuid", "tpm_pubkey", "tpm_sha256"];

const PSEUDO_KEYS = ["name", "newnodename", "group", "osimage", "osimagetag", "bmcsetup", "switch", "interfaces"] as const;

type NodeColumns = Partial<Omit<NodeRow, "id" | "name">>;

async function idByName(tx: Transaction, table: typeof nodeGroup | typeof osimage | typeof bmcsetup | typeof switchDevice, key: string, value: string): Promise<number> {
  const [row] = await tx.select({ id: table.id }).from(table).where(eq(table.name, value));
  if (!row) throw invalid(`Invalid request: ${key} "${value}" does not exist`);
  return row.id;
}

/** Turns the fields and pseudo keys of a body into node columns, resolving names to ids. */
async function resolveColumns(tx: Transaction, input: NodeInput, current: NodeRow | null): Promise<NodeColumns> {
  const columns: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined || (PSEUDO_KEYS as readonly string[]).includes(key)) continue;
    // The CLI sends "" to clear; text columns store that as null so that inheritance applies.
    columns[key] = value === "" ? null : value;
  }
  if (input.service === null) columns.service = false;

  if (input.group !== undefined) {
    if (input.group === "") throw invalid("Invalid request: group must name a group, it cannot be cleared");
    columns.group_id = await idByName(tx, nodeGroup, "group", input.group);
  }
  if (input.osimage !== undefined) {
    columns.osimage_id = input.osimage === "" ? null : await idByName(tx, osimage, "osimage", input.osimage);
    // A tag belongs to one image, so a new image starts on its own files.
    columns.osimagetag_id = null;
  }
  if (input.bmcsetup !== undefined) columns.bmcsetup_id = input.bmcsetup === "" ? null : await idByName(tx, bmcsetup, "bmcsetup", input.bmcsetup);
  if (input.switch !== undefined) columns.switch_id = input.switch === "" ? null : await idByName(tx, switchDevice, "switch", input.switch);

  if (input.osimagetag !== undefined && input.osimagetag !== "" && input.osimagetag !== "default") {
    const groupId = (columns.group_id as number | undefined) ?? current?.group_id;
    let imageId = columns.osimage_id !== undefined ? (columns.osimage_id as number | null) : current?.osimage_id ?? null;
    if (imageId === null && groupId !== undefined) {
      const [group] = await tx.select({ osimage_id: nodeGroup.osimage_id }).from(nodeGroup).where(eq(nodeGroup.id, groupId));
      imageId = group?.osimage_id ?? null;
    }
    if (imageId === null) throw invalid(`Invalid request: osimagetag "${input.osimagetag}" needs an osimage, but the node has none`);
    const [tag] = await tx
      .select({ id: osimageTag.id })
      .from(osimageTag)
      .where(and(eq(osimageTag.osimage_id, imageId), eq(osimageTag.name, input.osimagetag)));
    if (!tag) throw invalid(`Invalid request: osimagetag "${input.osimagetag}" is not a tag of the node's osimage`);
    columns.osimagetag_id = tag.id;
  } else if (input.osimagetag !== undefined) {
    columns.osimagetag_id = null;
  }
  return columns as NodeColumns;
}

async function findNode(tx: Transaction, nodeName: string): Promise<NodeRow | null> {
  const [row] = await tx.select().from(node).where(eq(node.name, nodeName));
  return row ?? null;
}

async function checkNameFree(tx: Transaction, nodeName: string): Promise<void> {
  if (await findNode(tx, nodeName)) throw conflict(`Node "${nodeName}" already exists`);
}

/** Sender of a node body: an admin, or the provision token of the node named in the URL. */
export type NodeWriter = "admin" | "provision";

/**
 * Creates or updates the node called `nodeName` in one transaction and returns which it did.
 * A new node needs `group` and gets its group's interfaces; changing `group` re-syncs them.
 * `newnodename` renames an existing node. Body `interfaces` are applied last.
 */
export async function saveNode(db: Database, nodeName: string, input: NodeInput, now: number, writer: NodeWriter = "admin"): Promise<"created" | "updated"> {
  if (input.name !== undefined && input.name !== nodeName) {
    throw invalid(`Invalid request: name "${input.name}" differs from the node in the URL "${nodeName}": use newnodename to rename`);
  }
  if (writer === "provision") {
    const denied = Object.keys(input).find((key) => !PROVISION_TOKEN_KEYS.includes(key));
    if (denied) throw forbidden(`Token of node "${nodeName}" may not set ${denied}: it may set ${PROVISION_TOKEN_KEYS.join(", ")}`);
  }

  return db.write(async (tx) => {
    const current = await findNode(tx, nodeName);
    if (current === null && writer === "provision") throw notFound(`Node "${nodeName}" does not exist`);
    const columns = await resolveColumns(tx, input, current);

    let nodeId: number;
    let outcome: "created" | "updated";
    let finalName = nodeName;
    if (current === null) {
      if (input.newnodename !== undefined) throw invalid("Invalid request: newnodename is only allowed when renaming or cloning a node");
      if (input.group === undefined) throw invalid("Invalid request: group name is required for new nodes");
      const [created] = await tx
        .insert(node)
        .values({ ...columns, name: nodeName, group_id: columns.group_id! })
        .returning({ id: node.id });
      nodeId = created.id;
      outcome = "created";
      await syncNodeWithGroup(tx, nodeId, now);
    } else {
      nodeId = current.id;
      outcome = "updated";
      if (input.newnodename !== undefined && input.newnodename !== nodeName) {
        await checkNameFree(tx, input.newnodename);
        finalName = input.newnodename;
      }
      const values = { ...columns, ...(finalName !== nodeName ? { name: finalName } : {}) };
      if (Object.keys(values).length > 0) await tx.update(node).set(values).where(eq(node.id, nodeId));
      if (columns.group_id !== undefined && columns.group_id !== current.group_id) {
        await syncNodeWithGroup(tx, nodeId, now, current.group_id);
      }
    }

    if (input.interfaces !== undefined) await applyInterfaceChanges(tx, nodeId, finalName, input.interfaces, now);
    return outcome;
  });
}

/**
 * Creates node `input.newnodename` as a copy of `sourceName` in one transaction: its columns
 * with the body's fields applied, its secrets as stored ciphertext, and its interfaces without
 * MAC addresses and with newly allocated addresses. TPM identity and install status are not copied.
 */
export async function cloneNode(db: Database, sourceName: string, input: NodeInput, now: number): Promise<string> {
  const targetName = input.newnodename;
  if (targetName === undefined) throw invalid("Invalid request: newnodename is required to clone a node");
  if (input.name !== undefined && input.name !== sourceName) {
    throw invalid(`Invalid request: name "${input.name}" differs from the node in the URL "${sourceName}"`);
  }

  return db.write(async (tx) => {
    const source = await findNode(tx, sourceName);
    if (source === null) throw notFound(`Node "${sourceName}" does not exist`);
    await checkNameFree(tx, targetName);

    const { id: _id, name: _name, tpm_uuid: _uuid, tpm_pubkey: _pubkey, tpm_sha256: _sha, ...copied } = source;
    const columns = await resolveColumns(tx, input, source);
    const [created] = await tx.insert(node).values({ ...copied, ...columns, name: targetName }).returning({ id: node.id });

    const bodyInterfaceNames = new Set((input.interfaces ?? []).map((entry) => entry.interface));
    if (input.interfaces !== undefined) await applyInterfaceChanges(tx, created.id, targetName, input.interfaces, now);

    const sourceInterfaces = await tx
      .select({ item: nodeInterface, address: ipAddress })
      .from(nodeInterface)
      .leftJoin(ipAddress, eq(ipAddress.node_interface_id, nodeInterface.id))
      .where(eq(nodeInterface.node_id, source.id))
      .orderBy(nodeInterface.id);
    for (const { item, address } of sourceInterfaces) {
      if (bodyInterfaceNames.has(item.interface)) continue;
      const { id: _interfaceId, node_id: _nodeId, macaddress: _mac, ...settings } = item;
      const [copy] = await tx.insert(nodeInterface).values({ ...settings, node_id: created.id }).returning({ id: nodeInterface.id });
      if (address === null) continue;
      const [net] = await tx.select().from(network).where(eq(network.id, address.network_id));
      if (net) await allocateInterfaceAddress(tx, copy.id, net, address.dhcp, now, `interface ${item.interface} of node "${targetName}"`, true);
    }
    await syncNodeWithGroup(tx, created.id, now, columns.group_id !== undefined ? source.group_id : undefined);

    const secrets = await tx.select().from(nodeSecret).where(eq(nodeSecret.node_id, source.id));
    for (const { id: _secretId, node_id: _owner, ...secret } of secrets) {
      await tx.insert(nodeSecret).values({ ...secret, node_id: created.id });
    }
    return targetName;
  });
}

/** Deletes a node; its interfaces, addresses, secrets and status go with it through foreign keys. */
export async function deleteNode(db: Database, nodeName: string): Promise<void> {
  await db.write(async (tx) => {
    const deleted = await tx.delete(node).where(eq(node.name, nodeName)).returning({ id: node.id });
    if (deleted.length === 0) throw notFound(`Node "${nodeName}" does not exist`);
  });
}

/** Returns `value` when it is a valid node name for a URL path; throws invalid naming it otherwise. */
export function checkNodeName(value: string): string {
  const problem = nameProblem("Node name", value, STRICT_NAME);
  if (problem) throw invalid(`Invalid request: ${problem}`);
  return value;
}
