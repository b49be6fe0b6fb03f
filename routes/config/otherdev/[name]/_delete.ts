import { deleteOtherDevice } from "../../../../lib/other-devices.ts";
import { handler, noContent } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Delete another device and its address", responses: { 204: "deleted", 404: "unknown device" } },
  async ({ services, params }) => {
    await deleteOtherDevice(services.db, params.name);
    return noContent();
  },
);
