import { eq } from "drizzle-orm";
import { osimage } from "./db/schema/index.ts";
import { notFound } from "./errors.ts";
import type { JobHandle } from "./jobs.ts";
import { startPack } from "./pack.ts";
import type { Services } from "./services.ts";

/**
 * Sets an image's kernel version and marks it changed. Unless `bare`, starts a pack job for
 * the new kernel and returns it; with `bare` returns null.
 */
export async function setKernelVersion(services: Services, imageName: string, kernelVersion: string, bare: boolean): Promise<JobHandle | null> {
  const updated = await services.db.write((tx) =>
    tx.update(osimage).set({ kernelversion: kernelVersion, changed: true }).where(eq(osimage.name, imageName)).returning({ id: osimage.id }));
  if (updated.length === 0) throw notFound(`OS image "${imageName}" does not exist`);
  if (bare) return null;
  return startPack(services, imageName);
}
