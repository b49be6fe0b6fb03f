import { wrapObjects } from "../../../lib/config-object.ts";
import { listOtherDevices } from "../../../lib/other-devices.ts";
import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List other devices with their addresses", responses: { 200: "other devices", 404: "no other device exists" } },
  async ({ services }) => json(wrapObjects("otherdev", await listOtherDevices(services.db.orm))),
);
