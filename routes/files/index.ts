import { listImageFiles } from "../../lib/files.ts";
import { handler, json } from "../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "List the image archives, kernels and initrds that /files/{filename} serves",
    responses: { 200: "JSON array of file names", 503: "directory unreadable or without such files" },
  },
  async ({ services }) => json(await listImageFiles(services.config.files.imageFiles)),
);
