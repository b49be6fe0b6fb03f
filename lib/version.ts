/** Daemon release, reported by GET /version. */
export const DAEMON_VERSION = "0.1.0";

/** API generation luna2-cli expects from GET /version. */
export const API_VERSION = 1;
