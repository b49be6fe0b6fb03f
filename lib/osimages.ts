import { decodeBase64Text } from "./base64-text.ts";
import { isAbsolute, join } from "node:path";
import { and, asc, eq, inArray, isNull, or } from "drizzle-orm";
import * as v from "valibot";
import { DEFAULT_GRAB_EXCLUDE, DEFAULT_GRAB_FILESYSTEMS, DEFAULT_KERNEL_MODULES } from "./bootstrap.ts";
import { describeUsers, requireValidName } from "./config-object.ts";
import type { Database, Orm, Transaction } from "./db/database.ts";
import { node, nodeGroup, osimage, osimageTag } from "./db/schema/index.ts";
import { conflict, inUse, invalid, notFound } from "./errors.ts";
import { LOOSE_NAME, multilineText, text } from "./fields.ts";

type Reader = Orm | Transaction;
export type OsimageRow = typeof osimage.$inferSelect;
export type OsimageTagRow = typeof osimageTag.$inferSelect;

/** Longest OS image and tag name: the limit luna2-daemon applies to `newosimage` and `tag`. */
export const OSIMAGE_NAME_MAX = 127;

/** The tag value that reads and writes as "no tag": the image's own files. */
export const NO_TAG = "default";

/**
 * Columns the single GET sends base64-encoded, because luna2-cli decodes them for its editor.
 * POST stores these columns as sent, base64 or plain; the GET encodes only plain values.
 */
const BASE64_COLUMNS = ["grab_filesystems", "grab_exclude", "kerneloptions"] as const;

/** Columns a clone copies from its source unless the request sets them. */
const CLONED_COLUMNS = [
  "grab_filesystems",
  "grab_exclude",
  "initrdfile",
  "kernelfile",
  "kernelmodules",
  "kerneloptions",
  "kernelversion",
  "distribution",
  "osrelease",
] as const;

const clearable = <T extends v.GenericSchema<unknown, string>>(schema: T) =>
  v.optional(v.pipe(schema, v.transform((value: string) => value === "" ? null : value)));

/** A file name under the image files directory: no directory part, so it cannot point elsewhere. */
const fileName = v.pipe(
  text(255),
  v.check((value) => !value.includes("/") && value !== "." && value !== "..", "must be a file name without '/'"),
);

/** Valibot entries of the OS image columns a request body may set, shared by POST and _clone. */
export const osimageFieldEntries = {
  grab_filesystems: clearable(multilineText(65536)),
  grab_exclude: clearable(multilineText(65536)),
  initrdfile: clearable(fileName),
  kernelfile: clearable(fileName),
  kernelmodules: clearable(text(1024)),
  kerneloptions: clearable(multilineText(4096)),
  kernelversion: clearable(text(127)),
  path: clearable(text(4096)),
  imagefile: clearable(fileName),
  distribution: clearable(text(63)),
  osrelease: clearable(text(63)),
  comment: clearable(text(4096)),
};

/** A tag name, or `""` or `default` for no tag. */
export const tagField = v.pipe(
  v.string(),
  v.check(
    (value) => value === "" || value === NO_TAG || /^[A-Za-z0-9][A-Za-z0-9._ -]*$/.test(value) && value.length <= OSIMAGE_NAME_MAX,
    (issue) => `tag "${String(issue.input)}" is invalid: use letters, digits, '-', '_', '.' and spaces, at most ${OSIMAGE_NAME_MAX} characters`,
  ),
);

/** OS image columns a create, update or clone may set; null clears a column. */
export type OsimageFields = { [Key in keyof typeof osimageFieldEntries]?: string | null };

/** An OS image as the API returns it. */
export interface OsimageView {
  name: string;
  grab_filesystems: string | null;
  grab_exclude: string | null;
  initrdfile: string | null;
  kernelfile: string | null;
  kernelmodules: string | null;
  kerneloptions: string | null;
  kernelversion: string | null;
  path: string;
  imagefile: string | null;
  distribution: string | null;
  osrelease: string | null;
  comment: string | null;
  /** Name of the active tag, or `default` for the image's own files. */
  tag: string;
  /** Comma-separated tag names; only in the single GET and only when the image has tags. */
  assigned_tags?: string;
}

/** A tag as GET /config/osimagetag returns it. */
export interface OsimageTagView {
  name: string;
  osimage: string;
  kernelfile: string | null;
  initrdfile: string | null;
  imagefile: string | null;
  path: string;
  /** Comma-separated names of the nodes set to this tag; absent when there are none. */
  nodes?: string;
  /** Comma-separated names of the groups set to this tag; absent when there are none. */
  groups?: string;
}

/** Returns the image's directory: the stored path (relative to `imageDirectory` unless absolute), else `<imageDirectory>/<name>`. */
export function imagePath(row: Pick<OsimageRow, "name" | "path">, imageDirectory: string): string {
  if (!row.path) return join(imageDirectory, row.name);
  return isAbsolute(row.path) ? row.path : join(imageDirectory, row.path);
}

function requireImageName(name: string, field = "OS image name"): void {
  requireValidName(field, name, LOOSE_NAME, OSIMAGE_NAME_MAX);
}

/** Loads an OS image by name, or throws 404 naming it. */
export async function findOsimage(db: Reader, name: string): Promise<OsimageRow> {
  requireImageName(name);
  const [row] = await db.select().from(osimage).where(eq(osimage.name, name));
  if (!row) throw notFound(`OS image "${name}" not found`);
  return row;
}

async function tagsByImage(db: Reader): Promise<Map<number, OsimageTagRow[]>> {
  const tags = await db.select().from(osimageTag).orderBy(asc(osimageTag.name));
  const byImage = new Map<number, OsimageTagRow[]>();
  for (const tag of tags) byImage.set(tag.osimage_id, [...byImage.get(tag.osimage_id) ?? [], tag]);
  return byImage;
}

function toView(row: OsimageRow, tags: OsimageTagRow[], imageDirectory: string): OsimageView {
  return {
    name: row.name,
    grab_filesystems: row.grab_filesystems,
    grab_exclude: row.grab_exclude,
    initrdfile: row.initrdfile,
    kernelfile: row.kernelfile,
    kernelmodules: row.kernelmodules,
    kerneloptions: row.kerneloptions,
    kernelversion: row.kernelversion,
    path: imagePath(row, imageDirectory),
    imagefile: row.imagefile,
    distribution: row.distribution,
    osrelease: row.osrelease,
    comment: row.comment,
    tag: tags.find((tag) => tag.id === row.tag_id)?.name ?? NO_TAG,
  };
}

/** Lists every OS image keyed by name with plain-text values, or throws 404 when there is none. */
export async function listOsimages(db: Reader, imageDirectory: string): Promise<Record<string, OsimageView>> {
  const rows = await db.select().from(osimage).orderBy(asc(osimage.name));
  if (rows.length === 0) throw notFound("No OS image is available");
  const tags = await tagsByImage(db);
  return Object.fromEntries(rows.map((row) => [row.name, toView(row, tags.get(row.id) ?? [], imageDirectory)]));
}

/**
 * Returns one OS image keyed by its name, with its tag names and with grab_filesystems,
 * grab_exclude and kerneloptions base64-encoded as luna2-cli expects.
 */
export async function getOsimage(db: Reader, name: string, imageDirectory: string): Promise<Record<string, OsimageView>> {
  const row = await findOsimage(db, name);
  const tags = (await tagsByImage(db)).get(row.id) ?? [];
  const view = toView(row, tags, imageDirectory);
  for (const column of BASE64_COLUMNS) {
    const value = view[column];
    // A value stored as luna2-cli sent it is base64 already; the original daemon sent those unchanged.
    if (value !== null && decodeBase64Text(value) === null) view[column] = Buffer.from(value, "utf8").toString("base64");
  }
  if (tags.length > 0) view.assigned_tags = tags.map((tag) => tag.name).join(", ");
  return { [row.name]: view };
}

async function requireFreeName(tx: Transaction, name: string, field: string): Promise<void> {
  requireImageName(name, field);
  const [existing] = await tx.select({ id: osimage.id }).from(osimage).where(eq(osimage.name, name));
  if (existing) throw conflict(`OS image "${name}" already exists`);
}

/**
 * Makes `tag` the active tag of an image, creating it first as a snapshot of the image's
 * current kernel, initrd, image file and kernel options. `""` or `default` clears the tag.
 */
export async function setActiveTag(tx: Transaction, image: OsimageRow, tag: string): Promise<void> {
  if (tag === "" || tag === NO_TAG) {
    await tx.update(osimage).set({ tag_id: null }).where(eq(osimage.id, image.id));
    return;
  }
  let [row] = await tx.select().from(osimageTag).where(and(eq(osimageTag.osimage_id, image.id), eq(osimageTag.name, tag)));
  if (!row) {
    [row] = await tx
      .insert(osimageTag)
      .values({
        osimage_id: image.id,
        name: tag,
        kernelfile: image.kernelfile,
        initrdfile: image.initrdfile,
        imagefile: image.imagefile,
        kerneloptions: image.kerneloptions,
      })
      .returning();
  }
  await tx.update(osimage).set({ tag_id: row.id }).where(eq(osimage.id, image.id));
}

/** A create or update of one OS image. */
export interface OsimageChange {
  fields: OsimageFields;
  /** New active tag; `""` or `default` clears it. */
  tag?: string;
  /** New name. */
  newName?: string;
}

/**
 * Creates the OS image `name` with the default grab lists and kernel modules, or updates it.
 * A rename marks the image changed, so the next pack rebuilds its files, and pins the old
 * directory as `path` when none was stored, because this call does not move the directory.
 * Returns whether the image was created.
 */
export async function saveOsimage(db: Database, name: string, change: OsimageChange, imageDirectory: string): Promise<"created" | "updated"> {
  requireImageName(name);
  return db.write(async (tx) => {
    const [existing] = await tx.select().from(osimage).where(eq(osimage.name, name));
    if (!existing) {
      if (change.newName !== undefined) {
        throw invalid(`Invalid request: newosimage is only allowed when renaming, but OS image "${name}" does not exist`);
      }
      const [created] = await tx
        .insert(osimage)
        .values({
          grab_filesystems: DEFAULT_GRAB_FILESYSTEMS,
          grab_exclude: DEFAULT_GRAB_EXCLUDE,
          kernelmodules: DEFAULT_KERNEL_MODULES,
          ...change.fields,
          name,
        })
        .returning();
      if (change.tag !== undefined) await setActiveTag(tx, created, change.tag);
      return "created";
    }

    const values: Partial<OsimageRow> = { ...change.fields };
    if (change.newName !== undefined && change.newName !== name) {
      await requireFreeName(tx, change.newName, "newosimage");
      values.name = change.newName;
      values.changed = true;
      // The directory is not moved: the renamed image keeps pointing at the old one through `path`.
      if (!existing.path && change.fields.path === undefined) values.path = imagePath(existing, imageDirectory);
    }
    if (Object.keys(values).length > 0) await tx.update(osimage).set(values).where(eq(osimage.id, existing.id));
    if (change.tag !== undefined) {
      const [updated] = await tx.select().from(osimage).where(eq(osimage.id, existing.id));
      await setActiveTag(tx, updated, change.tag);
    }
    return "updated";
  });
}

/** Sets the active tag of an existing image; see `setActiveTag`. */
export async function tagOsimage(db: Database, name: string, tag: string): Promise<void> {
  await db.write(async (tx) => setActiveTag(tx, await findOsimage(tx, name), tag));
}

/**
 * Creates OS image `newName` as a copy of `name`'s settings and file names, then applies
 * `fields`. Only the database row is written: the tags stay with the source and the image
 * directory is not copied.
 */
export async function cloneOsimage(db: Database, name: string, newName: string, fields: OsimageFields): Promise<void> {
  await db.write(async (tx) => {
    const source = await findOsimage(tx, name);
    await requireFreeName(tx, newName, "newosimage");
    const copied: OsimageFields = {};
    for (const column of CLONED_COLUMNS) copied[column] = source[column];
    await tx.insert(osimage).values({ ...copied, ...fields, name: newName });
  });
}

/** Deletes an OS image and its tags; throws 409 naming the groups and nodes that still use it. */
export async function deleteOsimage(db: Database, name: string): Promise<void> {
  await db.write(async (tx) => {
    const row = await findOsimage(tx, name);
    const groups = await tx.select({ name: nodeGroup.name }).from(nodeGroup).where(eq(nodeGroup.osimage_id, row.id)).orderBy(asc(nodeGroup.name));
    const nodes = await tx.select({ name: node.name }).from(node).where(eq(node.osimage_id, row.id)).orderBy(asc(node.name));
    const users = describeUsers(groups.map((group) => group.name), nodes.map((item) => item.name));
    if (users !== null) throw inUse(`Cannot delete OS image "${name}": ${users} still use it`);

    const tagIds = (await tx.select({ id: osimageTag.id }).from(osimageTag).where(eq(osimageTag.osimage_id, row.id))).map((tag) => tag.id);
    if (tagIds.length > 0) {
      await tx.update(node).set({ osimagetag_id: null }).where(inArray(node.osimagetag_id, tagIds));
      await tx.update(nodeGroup).set({ osimagetag_id: null }).where(inArray(nodeGroup.osimagetag_id, tagIds));
    }
    await tx.update(osimage).set({ tag_id: null }).where(eq(osimage.id, row.id));
    await tx.delete(osimageTag).where(eq(osimageTag.osimage_id, row.id));
    await tx.delete(osimage).where(eq(osimage.id, row.id));
    // NOTE: the image directory and its packed files stay on disk; nodes may still be booting them.
  });
}

/** Lists the nodes that use an OS image, set on the node itself or inherited from its group. */
export async function listOsimageMembers(db: Reader, name: string): Promise<string[]> {
  const row = await findOsimage(db, name);
  const rows = await db
    .select({ name: node.name })
    .from(node)
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .where(or(eq(node.osimage_id, row.id), and(isNull(node.osimage_id), eq(nodeGroup.osimage_id, row.id))))
    .orderBy(asc(node.name));
  return rows.map((member) => member.name);
}

/** Deletes tag `tag` of image `name`; throws 409 naming the groups and nodes set to it. */
export async function deleteOsimageTag(db: Database, name: string, tag: string): Promise<void> {
  await db.write(async (tx) => {
    const image = await findOsimage(tx, name);
    const [row] = await tx.select().from(osimageTag).where(and(eq(osimageTag.osimage_id, image.id), eq(osimageTag.name, tag)));
    if (!row) throw notFound(`OS image "${name}" has no tag "${tag}"`);
    const groups = await tx.select({ name: nodeGroup.name }).from(nodeGroup).where(eq(nodeGroup.osimagetag_id, row.id)).orderBy(asc(nodeGroup.name));
    const nodes = await tx.select({ name: node.name }).from(node).where(eq(node.osimagetag_id, row.id)).orderBy(asc(node.name));
    const users = describeUsers(groups.map((group) => group.name), nodes.map((item) => item.name));
    if (users !== null) throw inUse(`Cannot delete tag "${tag}" of OS image "${name}": ${users} still use it`);

    if (image.tag_id === row.id) await tx.update(osimage).set({ tag_id: null }).where(eq(osimage.id, image.id));
    await tx.delete(osimageTag).where(eq(osimageTag.id, row.id));
    // NOTE: the tag's packed files stay on disk until a later pack of the image removes superseded ones.
  });
}

/**
 * Lists tags keyed by tag name, of one image when `imageName` is given, else of all images.
 * Tag names are unique per image only, so in the full list a repeated name is keyed
 * `<image>/<tag>` instead of overwriting the first.
 */
export async function listOsimageTags(db: Reader, imageDirectory: string, imageName?: string): Promise<Record<string, OsimageTagView>> {
  const image = imageName === undefined ? null : await findOsimage(db, imageName);
  const rows = await db
    .select({ tag: osimageTag, image: osimage })
    .from(osimageTag)
    .innerJoin(osimage, eq(osimage.id, osimageTag.osimage_id))
    .where(image === null ? undefined : eq(osimageTag.osimage_id, image.id))
    .orderBy(asc(osimage.name), asc(osimageTag.name));
  if (rows.length === 0) {
    throw notFound(image === null ? "No OS image tag is available" : `OS image "${image.name}" has no tags`);
  }

  const tagIds = rows.map((row) => row.tag.id);
  const nodes = await db.select({ name: node.name, tagId: node.osimagetag_id }).from(node).where(inArray(node.osimagetag_id, tagIds)).orderBy(asc(node.name));
  const groups = await db
    .select({ name: nodeGroup.name, tagId: nodeGroup.osimagetag_id })
    .from(nodeGroup)
    .where(inArray(nodeGroup.osimagetag_id, tagIds))
    .orderBy(asc(nodeGroup.name));

  const views: Record<string, OsimageTagView> = {};
  for (const { tag, image: owner } of rows) {
    const view: OsimageTagView = {
      name: tag.name,
      osimage: owner.name,
      kernelfile: tag.kernelfile,
      initrdfile: tag.initrdfile,
      imagefile: tag.imagefile,
      path: imagePath(owner, imageDirectory),
    };
    const nodeNames = nodes.filter((item) => item.tagId === tag.id).map((item) => item.name);
    const groupNames = groups.filter((item) => item.tagId === tag.id).map((item) => item.name);
    if (nodeNames.length > 0) view.nodes = nodeNames.join(", ");
    if (groupNames.length > 0) view.groups = groupNames.join(", ");
    views[tag.name in views ? `${owner.name}/${tag.name}` : tag.name] = view;
  }
  return views;
}
