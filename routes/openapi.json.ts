import { openApiDocument } from "../lib/api-description.ts";
import { handler, json } from "../lib/route.ts";

export const GET = handler({ auth: "none", summary: "OpenAPI description of this API" }, () => json(openApiDocument()));
