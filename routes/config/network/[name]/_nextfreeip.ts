import { reserveNextFreeAddress } from "../../../../lib/networks.ts";
import { handler, json } from "../../../../lib/route.ts";

export const GET = handler(
  { auth: "admin", summary: "Reserve and return the lowest free address of a network", responses: { 200: "address", 404: "unknown or full network" } },
  async ({ services, params }) => {
    const seconds = services.config.network.reservationSeconds;
    const address = await reserveNextFreeAddress(services.db, params.name, services.clock.now(), seconds);
    return json({ config: { network: { [params.name]: { nextip: address } } } });
  },
);
