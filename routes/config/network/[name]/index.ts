import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { NetworkFields, toNetworkInput } from "../../../../lib/network-fields.ts";
import { getNetworkView } from "../../../../lib/network-views.ts";
import { saveNetwork } from "../../../../lib/networks.ts";
import { handler, json, message, noContent } from "../../../../lib/route.ts";

const NetworkBody = configEnvelope("network", NetworkFields);

export const GET = handler({ auth: "admin", summary: "Show a network", responses: { 200: "network", 404: "unknown network" } }, async ({ services, params }) =>
  json(await getNetworkView(services.db.orm, params.name)));

export const POST = handler(
  {
    auth: "admin",
    summary: "Create or update a network; a new address or prefix moves every address in it",
    body: NetworkBody,
    responses: { 201: "created", 204: "updated", 400: "invalid value", 409: "overlapping network, name or address in use" },
  },
  async ({ services, params, body }) => {
    const input = toNetworkInput(unwrapEnvelope(body, "network", params.name));
    const outcome = await saveNetwork(services.db, params.name, input, services.clock.now());
    return outcome === "created" ? message(`Network ${params.name} created successfully`, 201) : noContent();
  },
);
