// The original installer and luna2-cli report and read node states here. /monitor/status/{node}
// is the same resource under the name the API specification uses.
export { GET, POST } from "../status/[node].ts";
