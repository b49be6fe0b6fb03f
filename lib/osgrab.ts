import { mkdir, readdir } from "node:fs/promises";
import { decodeBase64Text } from "./base64-text.ts";
import { join } from "node:path";
import { asc, eq } from "drizzle-orm";
import { node, nodeGroup, osimage } from "./db/schema/index.ts";
import { notFound } from "./errors.ts";
import { CommandError, type CommandSpec } from "./hardware/index.ts";
import { createJob, type JobHandle, type JobReporter, runJob } from "./jobs.ts";
import { imageRoot, type OsimageRow, packImage } from "./pack.ts";
import type { Services } from "./services.ts";

/** Options of a grab or push request, as luna2-cli sends them. */
export interface SyncOptions {
  /** Image to use instead of the node's own or its group's. */
  osimage?: string;
  /** Copy for real; without it rsync only reports what it would copy. */
  nodry?: boolean;
  /** After a real grab, skip packing the image. */
  bare?: boolean;
}

/** Decodes a value luna2-cli sent base64-encoded; plain text comes back unchanged. */
export function decodeMaybeBase64(value: string | null): string {
  if (!value) return "";
  const decoded = decodeBase64Text(value);
  return decoded !== null && decoded.includes("/") ? decoded : value;
}

/** Splits a list separated by commas, spaces or newlines. */
export function splitList(value: string): string[] {
  return value.split(/[\s,]+/).filter((item) => item !== "");
}

/** Builds the ssh command rsync runs, with options from [SSH]. rsync splits it on spaces itself, without a shell. */
export function sshCommand(services: Services): string {
  const { ssh } = services.config;
  const parts = ["ssh", "-o", "BatchMode=yes", "-o", `ConnectTimeout=${ssh.connectTimeoutSeconds}`, "-l", ssh.user];
  if (ssh.configFile) parts.push("-F", ssh.configFile);
  if (ssh.identityFile) parts.push("-i", ssh.identityFile);
  return parts.join(" ");
}

/**
 * Builds one rsync run between a node and an image tree. `filesystem` is a path such as `/` or
 * `/boot`; `-R` with a `/./` anchor keeps it at the same place on the other side.
 */
export function rsyncCommand(
  services: Services,
  options: { direction: "grab" | "push"; host: string; root: string; filesystem: string; excludes: string[]; dryRun: boolean },
): CommandSpec {
  const anchored = "/." + (options.filesystem.endsWith("/") ? options.filesystem : options.filesystem + "/");
  const args = ["-aHvR", "--numeric-ids", "--one-file-system", "-e", sshCommand(services)];
  if (options.direction === "grab") args.push("--delete-after");
  if (options.dryRun) args.push("--dry-run");
  for (const exclude of options.excludes) args.push(`--exclude=${exclude}`);
  if (options.direction === "grab") args.push(`${options.host}:${anchored}`, options.root + "/");
  else args.push(options.root + anchored, `${options.host}:/`);
  return { program: "rsync", args, timeoutMs: services.config.ssh.timeoutSeconds * 1000 };
}

async function loadImage(services: Services, name: string): Promise<OsimageRow> {
  const [row] = await services.db.orm.select().from(osimage).where(eq(osimage.name, name));
  if (!row) throw notFound(`OS image "${name}" does not exist`);
  return row;
}

/** Resolves the image of a node: the requested one, else the node's own, else its group's. */
async function imageForNode(services: Services, nodeName: string, requested: string | undefined): Promise<OsimageRow> {
  const [row] = await services.db.orm
    .select({ own: node.osimage_id, group: nodeGroup.osimage_id })
    .from(node)
    .innerJoin(nodeGroup, eq(nodeGroup.id, node.group_id))
    .where(eq(node.name, nodeName));
  if (!row) throw notFound(`Node "${nodeName}" does not exist`);
  if (requested) return loadImage(services, requested);
  const id = row.own ?? row.group;
  if (id === null) throw notFound(`Node "${nodeName}" has no OS image, and none was requested`);
  const [image] = await services.db.orm.select().from(osimage).where(eq(osimage.id, id));
  return image;
}

/** Runs rsync once per file system of the image, reporting each run. */
async function syncFilesystems(services: Services, reporter: JobReporter, image: OsimageRow, host: string, direction: "grab" | "push", dryRun: boolean): Promise<void> {
  const root = imageRoot(services, image);
  await mkdir(root, { recursive: true });
  const filesystems = splitList(decodeMaybeBase64(image.grab_filesystems));
  const excludes = splitList(decodeMaybeBase64(image.grab_exclude));
  for (const filesystem of filesystems.length > 0 ? filesystems : ["/"]) {
    const result = await services.hardware.run(rsyncCommand(services, { direction, host, root, filesystem, excludes, dryRun }));
    const changed = result.stdout.split("\n").filter((line) => line && !/^(sending|receiving|sent |total size|$)/.test(line)).length;
    await reporter.info(`${direction === "grab" ? "grabbed" : "pushed"} ${filesystem} ${direction === "grab" ? "from" : "to"} ${host}${dryRun ? " (dry run)" : ""}: ${changed} entries`);
  }
}

/** Returns the newest kernel version under the image's /lib/modules, or null. */
export async function newestKernelVersion(root: string): Promise<string | null> {
  const versions = await readdir(join(root, "lib", "modules")).catch(() => [] as string[]);
  versions.sort((left, right) => left.localeCompare(right, "en", { numeric: true }));
  return versions.at(-1) ?? null;
}

/** Starts a job that copies a node's live file systems into its image (dry run unless `nodry`). */
export async function startGrab(services: Services, nodeName: string, options: SyncOptions): Promise<{ handle: JobHandle; image: string }> {
  const image = await imageForNode(services, nodeName, options.osimage);
  const handle = await createJob(services.db, services.clock, { kind: "grab", object: nodeName, params: options });
  if (!handle.existing) {
    void runJob(services.db, services.clock, handle.requestId, async (reporter) => {
      const dryRun = options.nodry !== true;
      await syncFilesystems(services, reporter, image, nodeName, "grab", dryRun);
      if (dryRun) return;

      const kernelVersion = await newestKernelVersion(imageRoot(services, image));
      await services.db.write((tx) =>
        tx.update(osimage).set({ changed: true, ...(kernelVersion ? { kernelversion: kernelVersion } : {}) }).where(eq(osimage.id, image.id)));
      if (!options.bare) await packImage(services, image.name, reporter);
    });
  }
  return { handle, image: image.name };
}

/** Starts a job that copies an image onto a node's live file systems (dry run unless `nodry`). */
export async function startPush(services: Services, nodeName: string, options: SyncOptions): Promise<{ handle: JobHandle; image: string }> {
  const image = await imageForNode(services, nodeName, options.osimage);
  const handle = await createJob(services.db, services.clock, { kind: "push", object: nodeName, params: options });
  if (!handle.existing) {
    void runJob(services.db, services.clock, handle.requestId, (reporter) =>
      syncFilesystems(services, reporter, image, nodeName, "push", options.nodry !== true));
  }
  return { handle, image: image.name };
}

/**
 * Starts a job that pushes an image to every member of a group, [SSH] PARALLEL nodes at a
 * time. Every node yields one line: `<node>: success` or `<node>: failed: <reason>`.
 */
export async function startGroupPush(services: Services, groupName: string, options: SyncOptions): Promise<{ handle: JobHandle; image: string }> {
  const [group] = await services.db.orm.select().from(nodeGroup).where(eq(nodeGroup.name, groupName));
  if (!group) throw notFound(`Group "${groupName}" does not exist`);
  const imageId = group.osimage_id;
  const image = options.osimage ? await loadImage(services, options.osimage) : imageId === null ? null : (await services.db.orm.select().from(osimage).where(eq(osimage.id, imageId)))[0];
  if (!image) throw notFound(`Group "${groupName}" has no OS image, and none was requested`);
  const members = await services.db.orm.select({ name: node.name }).from(node).where(eq(node.group_id, group.id)).orderBy(asc(node.name));

  const handle = await createJob(services.db, services.clock, { kind: "push", object: `group:${groupName}`, params: options });
  if (!handle.existing) {
    void runJob(services.db, services.clock, handle.requestId, async (reporter) => {
      const queue = members.map((member) => member.name);
      const quiet: JobReporter = { ...reporter, info: () => Promise.resolve() };
      const worker = async () => {
        for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
          try {
            await syncFilesystems(services, quiet, image, name, "push", options.nodry !== true);
            await reporter.info(`${name}: success`);
          } catch (error) {
            const reason = error instanceof CommandError ? `rsync exited with ${error.exitCode ?? error.signal}: ${error.stderrTail}` : String(error);
            await reporter.error(`${name}: failed: ${reason}`);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(services.config.ssh.parallel, queue.length) }, worker));
      await reporter.info(`finished pushing osimage ${image.name} to group ${groupName}`);
    });
  }
  return { handle, image: image.name };
}
