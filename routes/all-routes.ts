import { listRoutes } from "../lib/api-description.ts";
import { handler, json } from "../lib/route.ts";

export const GET = handler({ auth: "none", summary: "Every route with its methods" }, () => json(listRoutes()));
