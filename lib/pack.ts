import { copyFile, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { eq } from "drizzle-orm";
import type { Compression } from "./config.ts";
import { osimage, osimageTag } from "./db/schema/index.ts";
import { invalid, notFound } from "./errors.ts";
import type { CommandSpec } from "./hardware/index.ts";
import { createJob, type JobHandle, type JobReporter, runJob } from "./jobs.ts";
import { TEMPORARY_SUFFIX } from "./files.ts";
import { announceFiles } from "./journal.ts";
import { logger } from "./log.ts";
import type { Services } from "./services.ts";

const log = logger("pack");

/** Suffix of files still being written in the files directory; /files never serves them. */
export const PARTIAL_SUFFIX = TEMPORARY_SUFFIX;

/** Archive file ending for each compression. */
const ARCHIVE_EXTENSION: Record<Compression, string> = { zstd: ".tar.zst", gzip: ".tar.gz", pigz: ".tar.gz" };

/** Paths that never go into an image archive: kernel file systems and scratch space. */
const EXCLUDED_PATHS = ["./proc/*", "./sys/*", "./dev/*", "./run/*", "./tmp/*"];

/** Initrd names distributions use for a kernel version, tried in order. */
const INITRD_CANDIDATES = (version: string) => [`initramfs-${version}.img`, `initrd.img-${version}`, `initrd-${version}`, `initramfs-${version}`];

export type OsimageRow = typeof osimage.$inferSelect;

/** Returns the directory tree of an image: its `path`, relative paths under IMAGE_DIRECTORY, or `<IMAGE_DIRECTORY>/<name>`. */
export function imageRoot(services: Services, row: Pick<OsimageRow, "name" | "path">): string {
  if (!row.path) return join(services.config.files.imageDirectory, row.name);
  return isAbsolute(row.path) ? row.path : join(services.config.files.imageDirectory, row.path);
}

/** Names of the files one pack produces; the epoch keeps every set distinct from the previous one. */
export function packedFileNames(imageName: string, kernelVersion: string, epochSeconds: number, compression: Compression) {
  const prefix = `${imageName}-${epochSeconds}`;
  return {
    kernel: `${prefix}-vmlinuz-${kernelVersion}`,
    initrd: `${prefix}-initramfs-${kernelVersion}`,
    archive: `${prefix}${ARCHIVE_EXTENSION[compression]}`,
  };
}

/** Builds the tar command that writes the archive of `root` to `output`, compressing with `compression`. */
export function tarCommand(root: string, output: string, compression: Compression, timeoutMs: number): CommandSpec {
  const program = compression === "zstd" ? "zstd" : compression;
  return {
    program: "tar",
    args: [
      "-C", root,
      "--one-file-system", "--xattrs", "--acls", "--numeric-owner", "--sparse",
      ...EXCLUDED_PATHS.map((path) => `--exclude=${path}`),
      `--use-compress-program=${program}`,
      "-cf", output, ".",
    ],
    // zstd reads its thread count from the environment: 0 means one thread per core.
    env: compression === "zstd" ? { ZSTD_NBTHREADS: "0", ZSTD_CLEVEL: "3" } : undefined,
    timeoutMs,
  };
}

/** Starts a pack job for an image, or joins the one already queued or running. */
export async function startPack(services: Services, imageName: string, username?: string): Promise<JobHandle> {
  const [row] = await services.db.orm.select().from(osimage).where(eq(osimage.name, imageName));
  if (!row) throw notFound(`OS image "${imageName}" does not exist`);
  if (!row.kernelversion) throw invalid(`Invalid request: OS image "${imageName}" has no kernelversion: set it before packing`);

  const handle = await createJob(services.db, services.clock, { kind: "pack", object: imageName, username });
  if (!handle.existing) {
    void runJob(services.db, services.clock, handle.requestId, (reporter) => packImage(services, imageName, reporter));
  }
  return handle;
}

/**
 * Packs an image: copies the kernel and initrd of its kernel version from the image's /boot and
 * writes the tree as a compressed tar archive, all under temporary names. Only when the whole
 * new set exists are the files renamed into place and the image record pointed at them, so a
 * download that started before keeps reading the complete previous file.
 */
export async function packImage(services: Services, imageName: string, reporter: JobReporter): Promise<void> {
  const [row] = await services.db.orm.select().from(osimage).where(eq(osimage.name, imageName));
  if (!row) throw new Error(`OS image "${imageName}" was removed before packing started`);
  if (!row.kernelversion) throw new Error(`OS image "${imageName}" has no kernelversion`);

  const root = imageRoot(services, row);
  const filesDirectory = services.config.files.imageFiles;
  const compression = services.config.files.compression;
  const names = packedFileNames(row.name, row.kernelversion, Math.floor(services.clock.now() / 1000), compression);
  const rootStat = await stat(root).catch(() => null);
  if (!rootStat?.isDirectory()) throw new Error(`image directory ${root} does not exist`);
  await mkdir(filesDirectory, { recursive: true });

  const partial = (name: string) => join(filesDirectory, name + PARTIAL_SUFFIX);
  const written: string[] = [];
  try {
    await reporter.info(`copying kernel and initrd ${row.kernelversion} of osimage ${imageName}`);
    await copyFile(join(root, "boot", `vmlinuz-${row.kernelversion}`), partial(names.kernel)).catch(() => {
      throw new Error(`kernel ${join(root, "boot", `vmlinuz-${row.kernelversion}`)} does not exist`);
    });
    written.push(names.kernel);
    const initrd = await findInitrd(join(root, "boot"), row.kernelversion);
    await copyFile(initrd, partial(names.initrd));
    written.push(names.initrd);

    await reporter.info(`packing osimage ${imageName} with ${compression}`);
    const timeoutMs = services.config.files.maxPackagingTimeSeconds * 1000;
    written.push(names.archive);
    await services.hardware.run(tarCommand(root, partial(names.archive), compression, timeoutMs));

    for (const name of written) await rename(partial(name), join(filesDirectory, name));
  } catch (error) {
    await Promise.all(written.map((name) => rm(partial(name), { force: true })));
    throw error;
  }

  const previous = { kernelfile: row.kernelfile, initrdfile: row.initrdfile, imagefile: row.imagefile };
  await services.db.write((tx) =>
    tx.update(osimage)
      .set({ kernelfile: names.kernel, initrdfile: names.initrd, imagefile: names.archive, changed: false })
      .where(eq(osimage.id, row.id)));
  await reporter.info(`finished packing osimage ${imageName}: ${names.archive}`);
  log.info("Packed osimage {image} into {archive}", { image: imageName, archive: names.archive });

  await announceFiles(services, imageName, Object.values(names));
  await removeSupersededFiles(services, imageName, new Set([...Object.values(names), ...Object.values(previous)]));
}

async function findInitrd(bootDirectory: string, version: string): Promise<string> {
  for (const name of INITRD_CANDIDATES(version)) {
    const candidate = join(bootDirectory, name);
    if (await stat(candidate).then((entry) => entry.isFile(), () => false)) return candidate;
  }
  throw new Error(`no initrd for kernel ${version} in ${bootDirectory}: tried ${INITRD_CANDIDATES(version).join(", ")}`);
}

/**
 * Deletes this image's packed files other than the current and the previous set, unless an
 * image or tag still refers to them. Keeping the previous set lets nodes that started a
 * download before the pack finish it.
 */
async function removeSupersededFiles(services: Services, imageName: string, keep: Set<string | null>): Promise<void> {
  const directory = services.config.files.imageFiles;
  const referenced = new Set<string>();
  const images = await services.db.orm.select({ kernel: osimage.kernelfile, initrd: osimage.initrdfile, image: osimage.imagefile }).from(osimage);
  const tags = await services.db.orm.select({ kernel: osimageTag.kernelfile, initrd: osimageTag.initrdfile, image: osimageTag.imagefile }).from(osimageTag);
  for (const item of [...images, ...tags]) {
    for (const name of [item.kernel, item.initrd, item.image]) if (name) referenced.add(name);
  }

  const pattern = new RegExp(`^${imageName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-\\d+(-vmlinuz-|-initramfs-|\\.tar\\.)`);
  for (const name of await readdir(directory)) {
    if (!pattern.test(name) || keep.has(name) || referenced.has(name) || name.endsWith(PARTIAL_SUFFIX)) continue;
    await rm(join(directory, name), { force: true });
    log.info("Removed superseded file {file} of osimage {image}", { file: name, image: imageName });
  }
}
