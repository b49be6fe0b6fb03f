import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readlinkSync, renameSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { serve } from "@hono/node-server";
import { eq } from "drizzle-orm";
import { node, osimage, osimageTag } from "../lib/db/schema/index.ts";
import { parseRange, STREAM_CHUNK_BYTES, TEMPORARY_SUFFIX } from "../lib/files.ts";
import { createTestApp, type TestApp } from "./helpers.ts";

const KERNEL = "compute-image-1700000000-vmlinuz-6.1.0";
const INITRD = "compute-image-1700000000-initramfs-6.1.0";
const ARCHIVE = "compute-image-1700000000.tar.bz2";
const OTHER_ARCHIVE = "other-image-1700000000.tar.zst";
const KERNEL_BYTES = Buffer.from(Array.from({ length: 1000 }, (_, index) => index % 251));
const MODIFIED = new Date("2026-01-02T03:04:05Z");

/** Writes the standard fixture files into the app's image file directory. */
function writeFixtures(t: TestApp): string {
  const directory = t.config.files.imageFiles;
  mkdirSync(directory, { recursive: true });
  writeFileSync(join(directory, KERNEL), KERNEL_BYTES);
  writeFileSync(join(directory, INITRD), "initrd");
  writeFileSync(join(directory, ARCHIVE), "archive of compute-image");
  writeFileSync(join(directory, `${ARCHIVE}.torrent`), "torrent of compute-image");
  writeFileSync(join(directory, OTHER_ARCHIVE), "archive of other-image");
  utimesSync(join(directory, KERNEL), MODIFIED, MODIFIED);
  return directory;
}

/** Sends a request without any token unless `headers` sets one. */
function anonymous(t: TestApp, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("x-access-tokens")) headers.set("x-access-tokens", "");
  return t.request(path, { ...init, headers });
}

describe("GET /files", () => {
  let t: TestApp;
  before(async () => (t = await createTestApp()));
  after(() => t.close());

  test("missing directory gets 503", async () => {
    const response = await anonymous(t, "/files");
    assert.equal(response.status, 503);
    assert.match((await response.json()).message, /Cannot read the image file directory/);
  });

  test("directory without image files gets 503", async () => {
    mkdirSync(t.config.files.imageFiles, { recursive: true });
    writeFileSync(join(t.config.files.imageFiles, "notes.txt"), "not an image file");
    const response = await anonymous(t, "/files");
    assert.equal(response.status, 503);
    assert.match((await response.json()).message, /No image archive, kernel or initrd is present/);
  });

  test("lists archives, kernels and initrds without a token", async () => {
    const directory = writeFixtures(t);
    writeFileSync(join(directory, `new-image.tar.bz2${TEMPORARY_SUFFIX}`), "being written");
    mkdirSync(join(directory, "folder-vmlinuz"));
    symlinkSync(join(directory, KERNEL), join(directory, "link-vmlinuz"));
    writeFileSync(join(directory, "systemrescue.iso"), "not listed");

    const response = await anonymous(t, "/files");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), [INITRD, KERNEL, ARCHIVE, `${ARCHIVE}.torrent`, OTHER_ARCHIVE]);
  });

  test("POST gets 405", async () => {
    const response = await t.request("/files", { method: "POST", json: {} });
    assert.equal(response.status, 405);
  });
});

describe("GET /files/{filename} content and validators", () => {
  let t: TestApp;
  let etag: string;
  before(async () => {
    t = await createTestApp();
    writeFixtures(t);
    etag = (await anonymous(t, `/files/${KERNEL}`)).headers.get("etag")!;
  });
  after(() => t.close());

  test("serves a kernel without a token", async () => {
    const response = await anonymous(t, `/files/${KERNEL}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-length"), String(KERNEL_BYTES.length));
    assert.equal(response.headers.get("content-type"), "application/octet-stream");
    assert.equal(response.headers.get("accept-ranges"), "bytes");
    assert.equal(response.headers.get("last-modified"), MODIFIED.toUTCString());
    assert.match(response.headers.get("etag")!, /^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$/);
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), KERNEL_BYTES);
  });

  test("serves an initrd without a token", async () => {
    const response = await anonymous(t, `/files/${INITRD}`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "initrd");
  });

  test("HEAD sends headers without a body", async () => {
    const response = await anonymous(t, `/files/${KERNEL}`, { method: "HEAD" });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-length"), String(KERNEL_BYTES.length));
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  });

  const rangeCases: { name: string; range: string; status: number; contentRange: string | null; first: number; end: number }[] = [
    { name: "closed range", range: "bytes=10-19", status: 206, contentRange: "bytes 10-19/1000", first: 10, end: 20 },
    { name: "open range", range: "bytes=990-", status: 206, contentRange: "bytes 990-999/1000", first: 990, end: 1000 },
    { name: "suffix range", range: "bytes=-5", status: 206, contentRange: "bytes 995-999/1000", first: 995, end: 1000 },
    { name: "suffix longer than file", range: "bytes=-5000", status: 206, contentRange: "bytes 0-999/1000", first: 0, end: 1000 },
    { name: "end past the file", range: "bytes=998-5000", status: 206, contentRange: "bytes 998-999/1000", first: 998, end: 1000 },
    { name: "reversed range is ignored", range: "bytes=20-10", status: 200, contentRange: null, first: 0, end: 1000 },
    { name: "several ranges get the whole file", range: "bytes=0-1,5-6", status: 200, contentRange: null, first: 0, end: 1000 },
    { name: "other unit is ignored", range: "items=0-1", status: 200, contentRange: null, first: 0, end: 1000 },
  ];
  for (const item of rangeCases) {
    test(`range: ${item.name}`, async () => {
      const response = await anonymous(t, `/files/${KERNEL}`, { headers: { range: item.range } });
      assert.equal(response.status, item.status);
      assert.equal(response.headers.get("content-range"), item.contentRange);
      assert.equal(response.headers.get("content-length"), String(item.end - item.first));
      assert.deepEqual(Buffer.from(await response.arrayBuffer()), KERNEL_BYTES.subarray(item.first, item.end));
    });
  }

  for (const range of ["bytes=1000-", "bytes=5000-6000", "bytes=-0"]) {
    test(`range: ${range} gets 416`, async () => {
      const response = await anonymous(t, `/files/${KERNEL}`, { headers: { range } });
      assert.equal(response.status, 416);
      assert.equal(response.headers.get("content-range"), "bytes */1000");
      assert.match((await response.json()).message, /outside file/);
    });
  }

  test("If-Range with the current ETag keeps the range", async () => {
    const response = await anonymous(t, `/files/${KERNEL}`, { headers: { range: "bytes=0-3", "if-range": etag } });
    assert.equal(response.status, 206);
    assert.equal((await response.arrayBuffer()).byteLength, 4);
  });

  test("If-Range with another ETag sends the whole file", async () => {
    const response = await anonymous(t, `/files/${KERNEL}`, { headers: { range: "bytes=0-3", "if-range": '"old"' } });
    assert.equal(response.status, 200);
    assert.equal((await response.arrayBuffer()).byteLength, 1000);
  });

  test("If-Range with the Last-Modified date keeps the range", async () => {
    const response = await anonymous(t, `/files/${KERNEL}`, { headers: { range: "bytes=0-3", "if-range": MODIFIED.toUTCString() } });
    assert.equal(response.status, 206);
    await response.body?.cancel();
  });

  const conditionalCases: { name: string; headers: Record<string, string>; status: number }[] = [
    { name: "If-None-Match with the ETag", headers: { "if-none-match": "ETAG" }, status: 304 },
    { name: "If-None-Match with the weak ETag in a list", headers: { "if-none-match": '"x", W/ETAG' }, status: 304 },
    { name: "If-None-Match *", headers: { "if-none-match": "*" }, status: 304 },
    { name: "If-None-Match with another ETag", headers: { "if-none-match": '"other"' }, status: 200 },
    { name: "If-Modified-Since the modification time", headers: { "if-modified-since": MODIFIED.toUTCString() }, status: 304 },
    { name: "If-Modified-Since a later time", headers: { "if-modified-since": "Sat, 01 Jan 2028 00:00:00 GMT" }, status: 304 },
    { name: "If-Modified-Since an earlier time", headers: { "if-modified-since": "Thu, 01 Jan 2026 00:00:00 GMT" }, status: 200 },
    { name: "If-Modified-Since garbage", headers: { "if-modified-since": "yesterday" }, status: 200 },
    {
      name: "If-None-Match wins over If-Modified-Since",
      headers: { "if-none-match": '"other"', "if-modified-since": "Sat, 01 Jan 2028 00:00:00 GMT" },
      status: 200,
    },
  ];
  for (const item of conditionalCases) {
    test(`conditional: ${item.name}`, async () => {
      const headers = Object.fromEntries(Object.entries(item.headers).map(([key, value]) => [key, value.replace("ETAG", etag)]));
      const response = await anonymous(t, `/files/${KERNEL}`, { headers });
      assert.equal(response.status, item.status);
      assert.equal(response.headers.get("etag"), etag);
      const body = await response.arrayBuffer();
      assert.equal(body.byteLength, item.status === 304 ? 0 : KERNEL_BYTES.length);
    });
  }

  test("replacing the file by rename changes the ETag", async () => {
    const directory = t.config.files.imageFiles;
    writeFileSync(join(directory, `${INITRD}${TEMPORARY_SUFFIX}`), "new initrd");
    const before = (await anonymous(t, `/files/${INITRD}`)).headers.get("etag");
    renameSync(join(directory, `${INITRD}${TEMPORARY_SUFFIX}`), join(directory, INITRD));
    const response = await anonymous(t, `/files/${INITRD}`, { headers: { "if-none-match": before! } });
    assert.equal(response.status, 200);
    assert.notEqual(response.headers.get("etag"), before);
    assert.equal(await response.text(), "new initrd");
  });
});

describe("GET /files/{filename} names and missing files", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    const directory = writeFixtures(t);
    writeFileSync(join(directory, `growing-vmlinuz${TEMPORARY_SUFFIX}`), "half");
    mkdirSync(join(directory, "folder-vmlinuz"));
    writeFileSync(join(t.directory, "outside-vmlinuz"), "outside");
    symlinkSync(join(t.directory, "outside-vmlinuz"), join(directory, "link-vmlinuz"));
  });
  after(() => t.close());

  const cases: { path: string; status: number; message: RegExp }[] = [
    { path: "/files/..%2Fluna.ini", status: 400, message: /file name "\.\.\/luna\.ini" must not/ },
    { path: "/files/a..b-vmlinuz", status: 400, message: /must not be empty or contain a path separator or "\.\."/ },
    { path: "/files/sub%5Cname", status: 400, message: /file name "sub\\name" must not/ },
    { path: "/files/missing-vmlinuz", status: 404, message: /File "missing-vmlinuz" is not present/ },
    { path: `/files/growing-vmlinuz${TEMPORARY_SUFFIX}`, status: 404, message: /is not present/ },
    { path: "/files/folder-vmlinuz", status: 404, message: /is not present/ },
    { path: "/files/link-vmlinuz", status: 404, message: /is not present/ },
  ];
  for (const item of cases) {
    test(`${decodeURIComponent(item.path)} gets ${item.status}`, async () => {
      const response = await anonymous(t, item.path);
      assert.equal(response.status, item.status);
      assert.match((await response.json()).message, item.message);
    });
  }

  test("POST gets 405", async () => {
    const response = await t.request(`/files/${KERNEL}`, { method: "POST", json: {} });
    assert.equal(response.status, 405);
  });
});

describe("GET /files/{filename} tokens for image archives", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    writeFixtures(t);
    await t.db.write(async (tx) => {
      await tx.update(osimage).set({ imagefile: ARCHIVE }).where(eq(osimage.name, "compute-image"));
      const [other] = await tx.insert(osimage).values({ name: "other-image", imagefile: OTHER_ARCHIVE }).returning();
      await tx.update(node).set({ osimage_id: other.id }).where(eq(node.name, "node002"));
      const [tag] = await tx.insert(osimageTag).values({ osimage_id: other.id, name: "v2", imagefile: "other-image-v2.tar.gz" }).returning();
      await tx.update(node).set({ osimage_id: other.id, osimagetag_id: tag.id }).where(eq(node.name, "node003"));
    });
    writeFileSync(join(t.config.files.imageFiles, "other-image-v2.tar.gz"), "tagged archive");
  });
  after(() => t.close());

  const token = async (kind: string): Promise<string> => {
    if (kind === "none") return "";
    if (kind === "garbage") return "garbage";
    if (kind === "admin") return t.token;
    return t.services.tokens.issueProvision(kind);
  };

  const cases: { file: string; token: string; status: number; message?: string }[] = [
    { file: ARCHIVE, token: "none", status: 401, message: "A valid token is missing" },
    { file: ARCHIVE, token: "garbage", status: 401, message: "Token is invalid" },
    { file: ARCHIVE, token: "admin", status: 200 },
    // node001 uses its group's image compute-image.
    { file: ARCHIVE, token: "node001", status: 200 },
    { file: `${ARCHIVE}.torrent`, token: "node001", status: 200 },
    { file: `${ARCHIVE}.torrent`, token: "none", status: 401, message: "A valid token is missing" },
    { file: OTHER_ARCHIVE, token: "node001", status: 403, message: `Token is not valid for file "${OTHER_ARCHIVE}": it is not the image of node node001` },
    // node002 overrides the group's image with other-image.
    { file: OTHER_ARCHIVE, token: "node002", status: 200 },
    { file: ARCHIVE, token: "node002", status: 403 },
    // node003 boots tag v2 of other-image, which has its own archive.
    { file: "other-image-v2.tar.gz", token: "node003", status: 200 },
    { file: OTHER_ARCHIVE, token: "node003", status: 200 },
    { file: "other-image-v2.tar.gz", token: "node002", status: 403 },
    // A provision token of a node that does not exist grants no archive.
    { file: ARCHIVE, token: "node999", status: 403 },
    { file: KERNEL, token: "node002", status: 200 },
    { file: KERNEL, token: "garbage", status: 200 },
    // A missing archive is checked after the token, so it does not reveal which files exist.
    { file: "missing.tar.gz", token: "none", status: 401 },
    { file: "missing.tar.gz", token: "admin", status: 404 },
  ];
  for (const item of cases) {
    test(`${item.file} with ${item.token} token gets ${item.status}`, async () => {
      const response = await t.request(`/files/${item.file}`, { headers: { "x-access-tokens": await token(item.token) } });
      assert.equal(response.status, item.status);
      if (item.message) assert.equal((await response.json()).message, item.message);
      else await response.body?.cancel();
    });
  }
});

describe("parseRange", () => {
  const cases: [string, number, ReturnType<typeof parseRange>][] = [
    ["bytes=0-0", 10, { start: 0, end: 1 }],
    ["bytes = 2 - 4", 10, { start: 2, end: 5 }],
    ["BYTES=9-", 10, { start: 9, end: 10 }],
    ["bytes=-10", 10, { start: 0, end: 10 }],
    ["bytes=-", 10, null],
    ["bytes=a-b", 10, null],
    ["bytes=10-", 10, "unsatisfiable"],
    ["bytes=-1", 0, "unsatisfiable"],
    ["bytes=0-", 0, "unsatisfiable"],
  ];
  for (const [header, size, expected] of cases) {
    test(`${header} of ${size} bytes`, () => assert.deepEqual(parseRange(header, size), expected));
  }
});

/** Lists the paths this process has open under `directory`, from /proc/self/fd (Linux only). */
function openFilesUnder(directory: string): string[] {
  const paths: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(directory)) paths.push(target);
    } catch {
      // The descriptor was closed between listing and reading it.
    }
  }
  return paths;
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}

describe("GET /files/{filename} over a real listener", () => {
  const LARGE = "large-vmlinuz";
  const largeBytes = Buffer.alloc(STREAM_CHUNK_BYTES * 3 + 12345);
  for (let index = 0; index + 4 <= largeBytes.length; index += 4) largeBytes.writeUInt32LE(index, index);
  let t: TestApp;
  let server: ReturnType<typeof serve>;
  let base: string;

  before(async () => {
    t = await createTestApp();
    const directory = writeFixtures(t);
    writeFileSync(join(directory, LARGE), largeBytes);
    await t.db.write((tx) => tx.update(osimage).set({ imagefile: ARCHIVE }).where(eq(osimage.name, "compute-image")));
    const port = await new Promise<number>((resolve) => {
      server = serve({ fetch: t.app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => resolve(info.port));
    });
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    const closed = new Promise((resolve) => server.close(resolve));
    // Idle keep-alive connections from fetch would hold close() open for seconds.
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    await closed;
    await t.close();
  });

  test("streams a file of several chunks intact", async () => {
    const response = await fetch(`${base}/files/${LARGE}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-length"), String(largeBytes.length));
    assert.equal(response.headers.get("transfer-encoding"), null);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(largeBytes), "the downloaded bytes differ from the file");
  });

  test("streams a range across chunk boundaries", async () => {
    const first = STREAM_CHUNK_BYTES - 7;
    const last = STREAM_CHUNK_BYTES * 2 + 9;
    const response = await fetch(`${base}/files/${LARGE}`, { headers: { range: `bytes=${first}-${last}` } });
    assert.equal(response.status, 206);
    assert.equal(response.headers.get("content-range"), `bytes ${first}-${last}/${largeBytes.length}`);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(largeBytes.subarray(first, last + 1)), "the range bytes differ");
  });

  test("HEAD sends Content-Length without a body", async () => {
    const response = await fetch(`${base}/files/${LARGE}`, { method: "HEAD" });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-length"), String(largeBytes.length));
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  });

  test("archive with the admin token streams", async () => {
    const response = await fetch(`${base}/files/${ARCHIVE}`, { headers: { "x-access-tokens": t.token } });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "archive of compute-image");
  });

  test("closes the file after complete, HEAD, 304 and aborted responses", async () => {
    const directory = t.config.files.imageFiles;
    const etag = (await fetch(`${base}/files/${LARGE}`, { method: "HEAD" })).headers.get("etag")!;
    const notModified = await fetch(`${base}/files/${LARGE}`, { headers: { "if-none-match": etag } });
    assert.equal(notModified.status, 304);
    await notModified.arrayBuffer();

    const controller = new AbortController();
    const aborted = await fetch(`${base}/files/${LARGE}`, { signal: controller.signal });
    const reader = aborted.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.closed.catch(() => undefined);

    assert.ok(await waitUntil(() => openFilesUnder(directory).length === 0, 5000), `files still open: ${openFilesUnder(directory).join(", ")}`);
  });
});
