import type { Client, Transaction as ClientTransaction } from "@libsql/client";

/**
 * Wraps a libSQL client that has a single connection (an embedded replica or an in-memory
 * database). Such a client rejects every statement while a transaction uses its connection,
 * so here statements wait until the open transaction ends, and transactions run one at a time.
 */
export function gateSingleConnection(client: Client): Client {
  let idle: Promise<void> = Promise.resolve();

  const waitForIdle = async <T>(run: () => Promise<T>): Promise<T> => {
    await idle;
    return run();
  };

  return new Proxy(client, {
    get(target, property) {
      if (property === "execute" || property === "batch" || property === "executeMultiple" || property === "migrate") {
        const method = Reflect.get(target, property, target) as (...args: unknown[]) => Promise<unknown>;
        return (...args: unknown[]) => waitForIdle(() => method.apply(target, args));
      }
      if (property === "transaction") {
        return async (mode?: "write" | "read" | "deferred") => {
          const previous = idle;
          let release!: () => void;
          idle = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
          await previous;
          let transaction: ClientTransaction;
          try {
            transaction = await target.transaction(mode);
          } catch (error) {
            release();
            throw error;
          }
          return releaseOnEnd(transaction, release);
        };
      }
      // Getters and methods of the client read private fields, so they must see the client itself.
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function releaseOnEnd(transaction: ClientTransaction, release: () => void): ClientTransaction {
  let released = false;
  const releaseOnce = () => {
    if (!released) {
      released = true;
      release();
    }
  };
  return new Proxy(transaction, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property === "commit" || property === "rollback") {
        return async () => {
          try {
            return await (value as () => Promise<void>).call(target);
          } finally {
            releaseOnce();
          }
        };
      }
      if (property === "close") {
        return () => {
          try {
            (value as () => void).call(target);
          } finally {
            releaseOnce();
          }
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
