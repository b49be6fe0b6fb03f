import { Buffer } from "node:buffer";
import { type FileHandle, lstat, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { and, eq } from "drizzle-orm";
import type { TokenService } from "./auth.ts";
import type { Orm } from "./db/database.ts";
import { node, nodeGroup, osimage, osimageTag } from "./db/schema/index.ts";
import { forbidden, invalid, notFound, unauthorized, unavailable } from "./errors.ts";
import { requiresToken } from "./files-auth.ts";
import { logger } from "./log.ts";

const log = logger("files");

/**
 * Name ending of a file that is still being written into the image file directory. Writers (image
 * packing, kernel copies) create `<name>.partial` in that same directory and rename it to `<name>`
 * when it is complete. The rename is atomic, so while writers follow this rule a name without
 * this ending refers to a complete file. A `.partial` file is never listed or served.
 */
export const TEMPORARY_SUFFIX = ".partial";

/**
 * Bytes read from disk per chunk when streaming a file. Measured with scripts/bench-files.ts on
 * Node 20 with 2 shared cores, 1 MiB chunks cost the daemon 0.52 s CPU per GiB. 64 KiB chunks cost
 * 0.9-1.9 s and 4 MiB chunks 0.75-1.1 s (docs/benchmarks-files.md).
 */
export const STREAM_CHUNK_BYTES = 1024 * 1024;

/** Kind of a listed file, decided by its name as image packing writes it. */
export type ImageFileKind = "archive" | "kernel" | "initrd";

const KERNEL_NAME = /vmlinu[xz]|bzimage|kernel/i;
const INITRD_NAME = /initramfs|initrd/i;

/** Returns the kind of a file in the image file directory, or null for any other file. */
export function classifyImageFile(name: string): ImageFileKind | null {
  if (requiresToken(name)) return "archive";
  if (INITRD_NAME.test(name)) return "initrd";
  if (KERNEL_NAME.test(name)) return "kernel";
  return null;
}

/** Rejects a file name that could leave the image file directory; returns the name otherwise. */
export function checkFileName(name: string): string {
  if (name === "" || name.includes("/") || name.includes("\\") || name.includes("..") || name.includes("\u0000")) {
    throw invalid(`Invalid request: file name "${name}" must not be empty or contain a path separator or ".."`);
  }
  return name;
}

/**
 * Lists the image archives, kernels and initrds in `directory`, sorted by name. Only regular
 * files count: symbolic links, folders and files ending in TEMPORARY_SUFFIX are left out.
 * Throws `unavailable` when the directory cannot be read or contains none of these files.
 */
export async function listImageFiles(directory: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(directory, { withFileTypes: true });
  } catch (error) {
    throw unavailable(`Cannot read the image file directory ${directory}: ${(error as Error).message}`, error);
  }
  const names = entries
    .filter((entry) => entry.isFile() && !entry.name.endsWith(TEMPORARY_SUFFIX) && classifyImageFile(entry.name) !== null)
    .map((entry) => entry.name)
    .sort();
  if (names.length === 0) throw unavailable(`No image archive, kernel or initrd is present in ${directory}`);
  return names;
}

/** An open file from the image file directory, with the facts the HTTP headers need. */
export interface OpenImageFile {
  name: string;
  handle: FileHandle;
  size: number;
  mtimeMs: number;
  /** Strong validator: changes whenever a rename puts a new file in place. */
  etag: string;
}

/**
 * Opens `name` in `directory` for reading. Throws `notFound` unless it is a regular file (not a
 * symbolic link, folder or TEMPORARY_SUFFIX file). The caller owns the returned handle.
 */
export async function openImageFile(directory: string, name: string): Promise<OpenImageFile> {
  checkFileName(name);
  const missing = () => notFound(`File "${name}" is not present in ${directory}`);
  if (name.endsWith(TEMPORARY_SUFFIX)) throw missing();
  const path = join(directory, name);

  // lstat rejects symbolic links. Comparing it with fstat after open proves that the file we
  // opened is the one we checked, even if a rename replaced the name in between.
  let linkStats;
  let handle: FileHandle;
  try {
    linkStats = await lstat(path);
    if (!linkStats.isFile()) throw missing();
    handle = await open(path, "r");
  } catch (error) {
    // A missing file is a normal 404. Any other failure (permissions, I/O) needs an admin to look.
    const code = (error as { code?: string }).code;
    if (code !== undefined && code !== "ENOENT") log.warning("Cannot open {path}: {error}", { path, error: (error as Error).message });
    throw missing();
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile() || stats.ino !== linkStats.ino || stats.dev !== linkStats.dev) throw missing();
    const mtimeMs = Math.floor(stats.mtimeMs);
    return {
      name,
      handle,
      size: stats.size,
      mtimeMs,
      etag: `"${stats.size.toString(16)}-${mtimeMs.toString(16)}-${stats.ino.toString(16)}"`,
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Decides whether the sender of `token` may download `name`. Kernels, initrds and other files are
 * public. Image archives (and their .torrent files) need an admin token, or the provision token
 * of a node whose effective OS image or OS image tag names that archive as its imagefile. Throws
 * `unauthorized` for a missing or invalid token and `forbidden` for another node's provision token.
 */
export async function authorizeImageFile(tokens: TokenService, db: Orm, token: string | undefined, name: string): Promise<void> {
  if (!requiresToken(name)) return;
  const caller = await tokens.verify(token);
  if (caller.kind === "admin") return;
  if (caller.kind === "anonymous") throw unauthorized("A valid token is missing");
  const allowed = await imageFilesOfNode(db, caller.node);
  if (!allowed.some((file) => name === file || name === `${file}.torrent`)) {
    throw forbidden(`Token is not valid for file "${name}": it is not the image of node ${caller.node}`);
  }
}

/**
 * Returns the image archive names a node installs from. These are the imagefile of its OS image
 * (the node's, else its group's) and the imagefile of the tag it boots (the node's, else its
 * group's, else the image's active tag) when that tag belongs to that image.
 */
async function imageFilesOfNode(db: Orm, nodeName: string): Promise<string[]> {
  const [row] = await db
    .select({
      nodeImage: node.osimage_id,
      nodeTag: node.osimagetag_id,
      groupImage: nodeGroup.osimage_id,
      groupTag: nodeGroup.osimagetag_id,
    })
    .from(node)
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .where(eq(node.name, nodeName));
  const imageId = row?.nodeImage ?? row?.groupImage ?? null;
  if (imageId === null) return [];

  const [image] = await db.select({ imagefile: osimage.imagefile, tagId: osimage.tag_id }).from(osimage).where(eq(osimage.id, imageId));
  if (!image) return [];
  const files = image.imagefile ? [image.imagefile] : [];
  const tagId = row.nodeTag ?? row.groupTag ?? image.tagId;
  if (tagId !== null) {
    const [tag] = await db
      .select({ imagefile: osimageTag.imagefile })
      .from(osimageTag)
      .where(and(eq(osimageTag.id, tagId), eq(osimageTag.osimage_id, imageId)));
    if (tag?.imagefile) files.push(tag.imagefile);
  }
  return files;
}

/** The request headers that decide between 200, 206, 304 and 416, and whether a body is sent. */
export interface FileRequest {
  method: string;
  range?: string | null;
  ifRange?: string | null;
  ifNoneMatch?: string | null;
  ifModifiedSince?: string | null;
}

/**
 * Builds the response for an opened file: 304 when a validator matches, 206 for one satisfiable
 * byte range, 416 for an unsatisfiable one, 200 otherwise. A header with several ranges
 * gets the whole file (RFC 9110 lets a server ignore Range). The body streams from the
 * handle and closes it at the end or on cancel. Responses without a body close it at once.
 */
export async function buildFileResponse(file: OpenImageFile, request: FileRequest): Promise<Response> {
  const headers = new Headers({
    "accept-ranges": "bytes",
    "content-type": "application/octet-stream",
    etag: file.etag,
    "last-modified": new Date(file.mtimeMs).toUTCString(),
  });

  if (isNotModified(file, request)) {
    await file.handle.close();
    return new Response(null, { status: 304, headers });
  }

  let start = 0;
  let end = file.size;
  let status = 200;
  if (request.range && rangeApplies(file, request.ifRange)) {
    const range = parseRange(request.range, file.size);
    if (range === "unsatisfiable") {
      await file.handle.close();
      headers.set("content-range", `bytes */${file.size}`);
      headers.set("content-type", "application/json");
      const body = JSON.stringify({ message: `Range "${request.range}" is outside file "${file.name}" of ${file.size} bytes` });
      return new Response(body, { status: 416, headers });
    }
    if (range !== null) {
      ({ start, end } = range);
      status = 206;
      headers.set("content-range", `bytes ${start}-${end - 1}/${file.size}`);
    }
  }

  headers.set("content-length", String(end - start));
  if (request.method === "HEAD") {
    await file.handle.close();
    return new Response(null, { status, headers });
  }
  return new Response(streamFile(file.handle, start, end), { status, headers });
}

/** True when If-None-Match, or without it If-Modified-Since, shows that the client's copy is current. */
function isNotModified(file: OpenImageFile, request: FileRequest): boolean {
  if (request.ifNoneMatch) {
    return request.ifNoneMatch.split(",").some((tag) => {
      const trimmed = tag.trim();
      return trimmed === "*" || trimmed.replace(/^W\//, "") === file.etag;
    });
  }
  if (request.ifModifiedSince) {
    const since = Date.parse(request.ifModifiedSince);
    // HTTP dates have whole seconds, so compare the modification time rounded down.
    return !Number.isNaN(since) && Math.floor(file.mtimeMs / 1000) * 1000 <= since;
  }
  return false;
}

/** True unless If-Range names another version of the file, in which case Range is ignored. */
function rangeApplies(file: OpenImageFile, ifRange: string | null | undefined): boolean {
  if (!ifRange) return true;
  const value = ifRange.trim();
  if (value.startsWith('"')) return value === file.etag;
  const date = Date.parse(value);
  return !Number.isNaN(date) && date === Math.floor(file.mtimeMs / 1000) * 1000;
}

/**
 * Parses a single `bytes=` range into a half-open [start, end) interval. Returns null for a
 * header to ignore (another unit, several ranges, bad syntax) and "unsatisfiable" for a range
 * that starts at or after the end of the file.
 */
export function parseRange(header: string, size: number): { start: number; end: number } | "unsatisfiable" | null {
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match || (match[1] === "" && match[2] === "")) return null;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(match[1]);
  const last = match[2] === "" ? Number.POSITIVE_INFINITY : Number(match[2]);
  if (last < start) return null;
  if (start >= size) return "unsatisfiable";
  return { start, end: Math.min(last, size - 1) + 1 };
}

/** Streams bytes [start, end) of an open file in STREAM_CHUNK_BYTES chunks, then closes it. */
function streamFile(handle: FileHandle, start: number, end: number): ReadableStream<Uint8Array> {
  let position = start;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const length = Math.min(STREAM_CHUNK_BYTES, end - position);
          if (length <= 0) {
            await close();
            controller.close();
            return;
          }
          // Each chunk needs its own buffer because the server may still hold the previous one.
          // allocUnsafe skips zero-filling: the read overwrites the bytes that are sent.
          const buffer = Buffer.allocUnsafe(length);
          const { bytesRead } = await handle.read(buffer, 0, length, position);
          if (bytesRead === 0) throw new Error(`File ended after ${position} of ${end} bytes: it was truncated while being sent`);
          position += bytesRead;
          controller.enqueue(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
          if (position >= end) {
            await close();
            controller.close();
          }
        } catch (error) {
          await close().catch(() => undefined);
          controller.error(error);
        }
      },
      cancel: close,
    },
    new CountQueuingStrategy({ highWaterMark: 2 }),
  );
}
