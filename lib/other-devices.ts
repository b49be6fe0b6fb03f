import { asc, eq } from "drizzle-orm";
import * as v from "valibot";
import { emptyToNull, requireValidName } from "./config-object.ts";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { ipAddress, otherDevice } from "./db/schema/index.ts";
import { copyDeviceAddress, type DeviceAddressChange, type DeviceAddressView, type DeviceRef, listDeviceAddresses, requireFreeMac, setDeviceAddress } from "./devices.ts";
import { conflict, invalid, notFound } from "./errors.ts";
import { ipOrEmpty, STRICT_NAME, text } from "./fields.ts";
import { macAddressOrEmpty } from "./node-interface-changes.ts";

type Reader = Orm | Transaction;
export type OtherDeviceRow = typeof otherDevice.$inferSelect;

const clearable = <T extends v.GenericSchema<unknown, string>>(schema: T) => v.optional(v.pipe(schema, v.transform((value: string) => emptyToNull(value))));

/** Valibot entries of the other-device columns and address keys a request body may set, shared by POST and _clone. */
export const otherDeviceFieldEntries = {
  macaddress: v.optional(macAddressOrEmpty),
  vendor: clearable(text(63)),
  comment: clearable(text(4096)),
  ipaddress: v.optional(ipOrEmpty),
  network: v.optional(text(63)),
};

/** Other-device columns and address keys a create, update or clone may set; null clears a column. */
export type OtherDeviceFields = Partial<Omit<OtherDeviceRow, "id" | "name">> & DeviceAddressChange;

/** Another device as the API returns it, with its address when it has one. */
export type OtherDeviceView = Omit<OtherDeviceRow, "id"> & Partial<DeviceAddressView>;

function toView(row: OtherDeviceRow, address: DeviceAddressView | undefined): OtherDeviceView {
  const { id: _id, ...view } = row;
  return address === undefined ? view : { ...view, ...address };
}

function ref(row: Pick<OtherDeviceRow, "id" | "name">): DeviceRef {
  return { column: "other_device_id", id: row.id, label: `other device "${row.name}"` };
}

/** Loads another device by name, or throws 404 naming it. */
export async function findOtherDevice(db: Reader, name: string): Promise<OtherDeviceRow> {
  requireValidName("Device name", name, STRICT_NAME);
  const [row] = await db.select().from(otherDevice).where(eq(otherDevice.name, name));
  if (!row) throw notFound(`Other device "${name}" not found`);
  return row;
}

/** Lists every other device keyed by name, or throws 404 when there is none. */
export async function listOtherDevices(db: Reader): Promise<Record<string, OtherDeviceView>> {
  const rows = await db.select().from(otherDevice).orderBy(asc(otherDevice.name));
  if (rows.length === 0) throw notFound("No other device is available");
  const addresses = await listDeviceAddresses(db, "other_device_id");
  return Object.fromEntries(rows.map((row) => [row.name, toView(row, addresses.get(row.id))]));
}

/** Returns one other device keyed by its name, with its address when it has one. */
export async function getOtherDevice(db: Reader, name: string): Promise<Record<string, OtherDeviceView>> {
  const row = await findOtherDevice(db, name);
  const addresses = await listDeviceAddresses(db, "other_device_id");
  return { [row.name]: toView(row, addresses.get(row.id)) };
}

async function requireFreeName(tx: Transaction, name: string): Promise<void> {
  requireValidName("newotherdevname", name, STRICT_NAME);
  const [existing] = await tx.select({ id: otherDevice.id }).from(otherDevice).where(eq(otherDevice.name, name));
  if (existing) throw conflict(`Other device "${name}" already exists`);
}

function splitFields(fields: OtherDeviceFields): { columns: Partial<OtherDeviceRow>; address: DeviceAddressChange } {
  const { ipaddress, network, ...columns } = fields;
  return { columns, address: { ipaddress, network } };
}

/**
 * Creates the other device `name` or updates it, and renames it to `newName` when given.
 * Columns, MAC and address change in one transaction. Returns whether the device was created.
 */
export async function saveOtherDevice(db: Database, name: string, fields: OtherDeviceFields, now: number, newName?: string): Promise<"created" | "updated"> {
  requireValidName("Device name", name, STRICT_NAME);
  const { columns, address } = splitFields(fields);
  return db.write(async (tx) => {
    const [existing] = await tx.select().from(otherDevice).where(eq(otherDevice.name, name));
    if (!existing) {
      if (newName !== undefined) throw invalid(`Invalid request: newotherdevname is only allowed when renaming, but other device "${name}" does not exist`);
      if (columns.macaddress) await requireFreeMac(tx, columns.macaddress, null);
      const [created] = await tx.insert(otherDevice).values({ ...columns, name }).returning();
      await setDeviceAddress(tx, ref(created), address, now);
      return "created";
    }
    if (columns.macaddress) await requireFreeMac(tx, columns.macaddress, { column: "other_device_id", id: existing.id });
    const values: Partial<OtherDeviceRow> = { ...columns };
    if (newName !== undefined && newName !== name) {
      await requireFreeName(tx, newName);
      values.name = newName;
    }
    if (Object.keys(values).length > 0) await tx.update(otherDevice).set(values).where(eq(otherDevice.id, existing.id));
    await setDeviceAddress(tx, ref({ id: existing.id, name: values.name ?? name }), address, now);
    return "updated";
  });
}

/**
 * Copies other device `name` to `newName` without its MAC address, which must stay unique,
 * then applies `fields`. Without an address in `fields` the copy gets the lowest free
 * address in the source's network.
 */
export async function cloneOtherDevice(db: Database, name: string, newName: string, fields: OtherDeviceFields, now: number): Promise<void> {
  const { columns, address } = splitFields(fields);
  await db.write(async (tx) => {
    const source = await findOtherDevice(tx, name);
    await requireFreeName(tx, newName);
    if (columns.macaddress) await requireFreeMac(tx, columns.macaddress, null);
    const { id: _id, name: _name, macaddress: _mac, ...copied } = source;
    const [created] = await tx.insert(otherDevice).values({ ...copied, ...columns, name: newName }).returning();
    if (address.ipaddress !== undefined || address.network !== undefined) await setDeviceAddress(tx, ref(created), address, now);
    else await copyDeviceAddress(tx, ref(source), ref(created), now);
  });
}

/** Deletes another device and its address. */
export async function deleteOtherDevice(db: Database, name: string): Promise<void> {
  await db.write(async (tx) => {
    const row = await findOtherDevice(tx, name);
    await tx.delete(ipAddress).where(eq(ipAddress.other_device_id, row.id));
    await tx.delete(otherDevice).where(eq(otherDevice.id, row.id));
  });
}
