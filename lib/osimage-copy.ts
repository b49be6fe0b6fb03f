import { mkdir, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { eq } from "drizzle-orm";
import { osimage } from "./db/schema/index.ts";
import { notFound } from "./errors.ts";
import { createJob, type JobHandle, runJob } from "./jobs.ts";
import { imageRoot, packImage } from "./pack.ts";
import type { Services } from "./services.ts";

/**
 * Starts the job that fills a cloned image: copies the source image's directory tree to the
 * clone's, then packs the clone unless `bare`. When the copy fails, the half-copied tree and the
 * clone's record are removed, so a failed clone leaves nothing behind.
 */
export async function startImageCopy(services: Services, sourceName: string, targetName: string, bare: boolean): Promise<JobHandle> {
  const [source] = await services.db.orm.select().from(osimage).where(eq(osimage.name, sourceName));
  const [target] = await services.db.orm.select().from(osimage).where(eq(osimage.name, targetName));
  if (!source) throw notFound(`OS image "${sourceName}" does not exist`);
  if (!target) throw notFound(`OS image "${targetName}" does not exist`);

  const handle = await createJob(services.db, services.clock, { kind: "clone", object: targetName, params: { source: sourceName, bare } });
  if (handle.existing) return handle;
  void runJob(services.db, services.clock, handle.requestId, async (reporter) => {
    const from = imageRoot(services, source);
    const to = imageRoot(services, target);
    try {
      if (await stat(to).then(() => true, () => false)) throw new Error(`image directory ${to} already exists`);
      if (!(await stat(from).then((entry) => entry.isDirectory(), () => false))) throw new Error(`image directory ${from} does not exist`);
      await reporter.info(`copying osimage ${sourceName} to ${targetName}`);
      await mkdir(dirname(to), { recursive: true });
      await services.hardware.run({
        program: "cp",
        args: ["-a", "--reflink=auto", "--no-target-directory", from, to],
        timeoutMs: services.config.files.maxPackagingTimeSeconds * 1000,
      });
      await reporter.info(`finished copying osimage ${sourceName} to ${targetName}`);
    } catch (error) {
      await rm(to, { recursive: true, force: true });
      await services.db.write((tx) => tx.delete(osimage).where(eq(osimage.name, targetName)));
      throw error;
    }
    if (!bare && target.kernelversion) await packImage(services, targetName, reporter);
  });
  return handle;
}
