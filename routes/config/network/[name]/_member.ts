import { listNetworkMembers } from "../../../../lib/network-views.ts";
import { handler, json } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "List the addresses in use in a network and who holds them", responses: { 200: "addresses", 404: "unknown network" } },
  async ({ services, params }) => {
    const taken = await listNetworkMembers(services.db.orm, params.name);
    return json({ config: { network: { [params.name]: { taken } } } });
  },
);
