import { getAddressStatus } from "../../../../lib/network-views.ts";
import { handler, json } from "../../../../lib/route.ts";

export const GET = handler(
  {
    auth: "admin",
    summary: "Show whether an address of a network is free, taken, reserved, in the DHCP range or unavailable",
    responses: { 200: "status", 404: "unknown network, invalid address or address outside the network" },
  },
  async ({ services, params }) => {
    const { address, status } = await getAddressStatus(services.db.orm, params.name, params.ipaddr, services.clock.now());
    return json({ config: { network: { [address]: status } } });
  },
);
