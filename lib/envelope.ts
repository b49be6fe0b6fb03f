import * as v from "valibot";
import { invalid } from "./errors.ts";

/**
 * Schema of the luna2 request envelope `{"config": {"<type>": {"<name>": fields}}}`. The name
 * level is a record because it is the URL's name; `unwrapEnvelope` checks that it matches.
 */
export function configEnvelope<Fields extends v.GenericSchema>(type: string, fields: Fields) {
  return v.strictObject({ config: v.strictObject({ [type]: v.record(v.string(), fields) }) });
}

/** Returns the fields sent for `name`, rejecting a body that names no object or another one. */
export function unwrapEnvelope<Fields>(body: { config: Record<string, Record<string, Fields>> }, type: string, name: string): Fields {
  const objects = body.config[type];
  const names = Object.keys(objects);
  if (!(name in objects) || names.length !== 1) {
    throw invalid(`Invalid request: body must contain exactly config.${type}.${name}, not ${names.map((key) => `"${key}"`).join(", ") || "nothing"}`);
  }
  return objects[name];
}
