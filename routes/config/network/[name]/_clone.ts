import { configEnvelope, unwrapEnvelope } from "../../../../lib/envelope.ts";
import { NetworkFields, toNetworkInput } from "../../../../lib/network-fields.ts";
import { cloneNetwork } from "../../../../lib/networks.ts";
import { handler, message } from "../../../../lib/route.ts";

const NetworkBody = configEnvelope("network", NetworkFields);

export const POST = handler(
  {
    auth: "admin",
    summary: "Copy a network's settings to a new network named by newnetname at the address given as network",
    body: NetworkBody,
    responses: { 201: "cloned", 400: "invalid value", 404: "unknown network", 409: "name exists or networks overlap" },
  },
  async ({ services, params, body }) => {
    const input = toNetworkInput(unwrapEnvelope(body, "network", params.name));
    const newName = await cloneNetwork(services.db, params.name, input, services.clock.now());
    return message(`Network ${params.name} cloned as ${newName} successfully`, 201);
  },
);
