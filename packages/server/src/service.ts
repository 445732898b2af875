// A Waxseal service (CA, TSA, log, IdP, TUF) is a set of routes plus a close(). The same service
// runs alone on its own port or mounted with others in the all-in-one dev server.
import { Router, requestListener, listen, type RunningServer, type ServeOptions } from './http.ts';

export interface Service {
  /** Short name for logs ("ca", "tsa", ...). */
  readonly name: string;
  /** Registers the service's routes on `router`, under `prefix` ('' means the root). */
  mount(router: Router, prefix?: string): void;
  close(): Promise<void>;
}

/** Serves the given services on one port; closing the result closes the services too. */
export async function serveServices(
  services: Service[],
  opts: { port?: number; host?: string } & Omit<ServeOptions, 'router'> = {},
): Promise<RunningServer> {
  const router = new Router();
  for (const s of services) s.mount(router);
  const running = await listen(requestListener({ ...opts, router }), opts.port ?? 0, opts.host ?? '127.0.0.1');
  return {
    ...running,
    async close() {
      await running.close();
      for (const s of services) await s.close();
    },
  };
}

/** A running server that owns `service`: closing it stops the server first, then the service. */
export function withService<S extends { close(): Promise<void> }>(running: RunningServer, service: S): RunningServer & { service: S } {
  return {
    ...running,
    service,
    async close() {
      await running.close();
      await service.close();
    },
  };
}
