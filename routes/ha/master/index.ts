import { handler, json } from "../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Whether this controller holds the master lease", responses: { 200: "master", 404: "not master" } },
  ({ services }) => {
    const master = services.config.ha.enabled && services.ha.isMaster();
    return json({ message: master }, master ? 200 : 404);
  },
);
