import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Eta } from "eta/core";

/** Folder of the templates that ship with the daemon. */
export const BUILTIN_TEMPLATES = fileURLToPath(new URL("../templates", import.meta.url));

const EXTENSION = ".eta";

/**
 * All Eta templates, compiled once at start. A file of the same name in the site directory
 * replaces the built-in one. A template that does not compile stops the daemon at start.
 */
export class Templates {
  readonly #eta = new Eta({ autoEscape: false, autoTrim: false, useWith: false });
  readonly #names = new Set<string>();
  /** File each template was loaded from, by name. */
  readonly sources = new Map<string, string>();

  constructor(siteDirectory: string | null) {
    for (const directory of [BUILTIN_TEMPLATES, siteDirectory]) {
      if (directory === null || !existsSync(directory)) continue;
      for (const file of readdirSync(directory).filter((name) => name.endsWith(EXTENSION)).sort()) {
        const name = file.slice(0, -EXTENSION.length);
        const path = join(directory, file);
        try {
          this.#eta.loadTemplate(`@${name}`, this.#eta.compile(readFileSync(path, "utf8")));
        } catch (error) {
          throw new Error(`Template ${path} does not compile: ${(error as Error).message}`);
        }
        this.#names.add(name);
        this.sources.set(name, path);
      }
    }
  }

  /** Renders template `name` (file name without `.eta`) with the view-model `data` as `it`. */
  render(name: string, data: object): string {
    if (!this.#names.has(name)) throw new Error(`Template "${name}" does not exist`);
    return this.#eta.render(`@${name}`, data);
  }

  /** Renders with HTML escaping of every `<%= %>` value, for pages shown in a browser. */
  renderHtml(name: string, data: object): string {
    return this.render(name, { ...data, escape: escapeHtml });
  }
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
