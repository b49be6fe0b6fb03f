import { asc, eq } from "drizzle-orm";
import * as v from "valibot";
import { describeUsers, emptyToNull, requireValidName } from "./config-object.ts";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { ipAddress, node, switchDevice } from "./db/schema/index.ts";
import { copyDeviceAddress, type DeviceAddressChange, type DeviceAddressView, type DeviceRef, listDeviceAddresses, requireFreeMac, setDeviceAddress } from "./devices.ts";
import { conflict, inUse, invalid, notFound } from "./errors.ts";
import { flag, ipOrEmpty, multilineText, STRICT_NAME, text } from "./fields.ts";
import { macAddressOrEmpty } from "./node-interface-changes.ts";

type Reader = Orm | Transaction;
export type SwitchRow = typeof switchDevice.$inferSelect;

/** Defaults of a new switch: the Q-BRIDGE-MIB forwarding table and the usual SNMP communities. */
const CREATE_DEFAULTS = { oid: ".1.3.6.1.2.1.17.7.1.2.2.1.2", read: "public", rw: "trusted" };

/** ZTP configuration formats a switch may receive. */
export const ZTP_FORMATS = ["commands", "yaml"] as const;

const clearable = <T extends v.GenericSchema<unknown, string>>(schema: T) => v.optional(v.pipe(schema, v.transform((value: string) => emptyToNull(value))));

const objectIdentifier = v.pipe(
  text(255),
  v.check((value) => value === "" || /^\.?\d+(\.\d+)*$/.test(value), (issue) => `"${String(issue.input)}" is not an SNMP OID such as .1.3.6.1.2.1.17.7.1.2.2.1.2`),
);

/** Port names or numbers separated by commas and/or spaces, stored comma-separated; `""` clears them. */
const portList = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const ports = dataset.value.split(/[\s,]+/).filter((port) => port !== "");
    if (ports.length === 0) return null;
    const bad = ports.find((port) => !/^[A-Za-z0-9][A-Za-z0-9/._:-]{0,63}$/.test(port));
    if (bad !== undefined) {
      addIssue({ message: `"${bad}" is not a port name: use letters, digits, '/', '.', '_', ':' and '-'` });
      return NEVER;
    }
    return ports.join(",");
  }),
);

/** Valibot entries of the switch columns and address keys a request body may set, shared by POST and _clone. */
export const switchFieldEntries = {
  macaddress: v.optional(macAddressOrEmpty),
  oid: clearable(objectIdentifier),
  read: clearable(text(255)),
  rw: clearable(text(255)),
  uplinkports: v.optional(portList),
  vendor: clearable(text(63)),
  netboot: v.optional(flag),
  default_url: clearable(text(1024)),
  bootfile: clearable(text(1024)),
  ztpconfig: clearable(multilineText(1024 * 1024)),
  ztpformat: v.optional(v.pipe(
    v.picklist(["", ...ZTP_FORMATS], `must be ${ZTP_FORMATS.join(" or ")} or empty`),
    v.transform((value) => emptyToNull(value)),
  )),
  comment: clearable(text(4096)),
  ipaddress: v.optional(ipOrEmpty),
  network: v.optional(text(63)),
};

/** Switch columns and address keys a create, update or clone may set; null clears a column. */
export type SwitchFields = Partial<Omit<SwitchRow, "id" | "name">> & DeviceAddressChange;

/** A switch as the API returns it, with its address when it has one. */
export type SwitchView = Omit<SwitchRow, "id"> & Partial<DeviceAddressView>;

function toView(row: SwitchRow, address: DeviceAddressView | undefined): SwitchView {
  const { id: _id, ...view } = row;
  return address === undefined ? view : { ...view, ...address };
}

function ref(row: Pick<SwitchRow, "id" | "name">): DeviceRef {
  return { column: "switch_id", id: row.id, label: `switch "${row.name}"` };
}

/** Loads a switch by name, or throws 404 naming it. */
export async function findSwitch(db: Reader, name: string): Promise<SwitchRow> {
  requireValidName("Switch name", name, STRICT_NAME);
  const [row] = await db.select().from(switchDevice).where(eq(switchDevice.name, name));
  if (!row) throw notFound(`Switch "${name}" not found`);
  return row;
}

/** Lists every switch keyed by name, or throws 404 when there is none. */
export async function listSwitches(db: Reader): Promise<Record<string, SwitchView>> {
  const rows = await db.select().from(switchDevice).orderBy(asc(switchDevice.name));
  if (rows.length === 0) throw notFound("No switch is available");
  const addresses = await listDeviceAddresses(db, "switch_id");
  return Object.fromEntries(rows.map((row) => [row.name, toView(row, addresses.get(row.id))]));
}

/** Returns one switch keyed by its name, with its address when it has one. */
export async function getSwitch(db: Reader, name: string): Promise<Record<string, SwitchView>> {
  const row = await findSwitch(db, name);
  const addresses = await listDeviceAddresses(db, "switch_id");
  return { [row.name]: toView(row, addresses.get(row.id)) };
}

async function requireFreeName(tx: Transaction, name: string, field: string): Promise<void> {
  requireValidName(field, name, STRICT_NAME);
  const [existing] = await tx.select({ id: switchDevice.id }).from(switchDevice).where(eq(switchDevice.name, name));
  if (existing) throw conflict(`Switch "${name}" already exists`);
}

function splitFields(fields: SwitchFields): { columns: Partial<SwitchRow>; address: DeviceAddressChange } {
  const { ipaddress, network, ...columns } = fields;
  return { columns, address: { ipaddress, network } };
}

/**
 * Creates the switch `name` with the default OID and communities, or updates it, and renames
 * it to `newName` when given. Columns, MAC and address change in one transaction. Returns
 * whether the switch was created.
 */
export async function saveSwitch(db: Database, name: string, fields: SwitchFields, now: number, newName?: string): Promise<"created" | "updated"> {
  requireValidName("Switch name", name, STRICT_NAME);
  const { columns, address } = splitFields(fields);
  return db.write(async (tx) => {
    const [existing] = await tx.select().from(switchDevice).where(eq(switchDevice.name, name));
    if (!existing) {
      if (newName !== undefined) throw invalid(`Invalid request: newswitchname is only allowed when renaming, but switch "${name}" does not exist`);
      if (columns.macaddress) await requireFreeMac(tx, columns.macaddress, null);
      const [created] = await tx.insert(switchDevice).values({ ...CREATE_DEFAULTS, ...columns, name }).returning();
      await setDeviceAddress(tx, ref(created), address, now);
      return "created";
    }
    if (columns.macaddress) await requireFreeMac(tx, columns.macaddress, { column: "switch_id", id: existing.id });
    const values: Partial<SwitchRow> = { ...columns };
    if (newName !== undefined && newName !== name) {
      await requireFreeName(tx, newName, "newswitchname");
      values.name = newName;
    }
    if (Object.keys(values).length > 0) await tx.update(switchDevice).set(values).where(eq(switchDevice.id, existing.id));
    await setDeviceAddress(tx, ref({ id: existing.id, name: values.name ?? name }), address, now);
    return "updated";
  });
}

/**
 * Copies switch `name` to `newName` without its MAC address, which must stay unique, then
 * applies `fields`. Without an address in `fields` the copy gets the lowest free address in
 * the source's network.
 */
export async function cloneSwitch(db: Database, name: string, newName: string, fields: SwitchFields, now: number): Promise<void> {
  const { columns, address } = splitFields(fields);
  await db.write(async (tx) => {
    const source = await findSwitch(tx, name);
    await requireFreeName(tx, newName, "newswitchname");
    if (columns.macaddress) await requireFreeMac(tx, columns.macaddress, null);
    const { id: _id, name: _name, macaddress: _mac, ...copied } = source;
    const [created] = await tx.insert(switchDevice).values({ ...copied, ...columns, name: newName }).returning();
    if (address.ipaddress !== undefined || address.network !== undefined) await setDeviceAddress(tx, ref(created), address, now);
    else await copyDeviceAddress(tx, ref(source), ref(created), now);
  });
}

/** Deletes a switch and its address; throws 409 naming the nodes whose switch it is. */
export async function deleteSwitch(db: Database, name: string): Promise<void> {
  await db.write(async (tx) => {
    const row = await findSwitch(tx, name);
    const nodes = await tx.select({ name: node.name }).from(node).where(eq(node.switch_id, row.id)).orderBy(asc(node.name));
    const users = describeUsers([], nodes.map((item) => item.name));
    if (users !== null) throw inUse(`Cannot delete switch "${name}": ${users} still use it`);
    await tx.delete(ipAddress).where(eq(ipAddress.switch_id, row.id));
    await tx.delete(switchDevice).where(eq(switchDevice.id, row.id));
  });
}
