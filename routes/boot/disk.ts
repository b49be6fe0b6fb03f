import { bootRequestOf } from "../../lib/boot.ts";
import { serveBootDisk } from "../../lib/boot-view.ts";
import { handler } from "../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "iPXE script that boots the local disk: exit on UEFI, sanboot drive 0x80 on BIOS",
    responses: { 200: "iPXE script", 503: "iPXE script naming the unavailable backend" },
  },
  ({ c, services }) => serveBootDisk(services, bootRequestOf(c)),
);
