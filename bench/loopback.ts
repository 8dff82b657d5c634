// Preloaded (node --import) into the Portkey gateway, which binds every interface on a port it
// takes only from --port=; the bench must stay on loopback, so every TCP listen() here is pinned
// to 127.0.0.1 (the port asked for is kept, 0 included) and the port the kernel chose is reported
// on stderr for the parent to read.
import net from 'node:net';

// servers.ts reads this marker; it is not imported from here, since importing would patch the bench too.
const LISTENING_MARKER = 'BENCH_LISTENING';

type Listen = (this: net.Server, ...args: unknown[]) => net.Server;
const original = net.Server.prototype.listen as unknown as Listen;

function pinned(this: net.Server, ...args: unknown[]): net.Server {
  const first = args[0];
  const callback = args.findLast((a) => typeof a === 'function');
  const port = typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first)) ? Number(first) : undefined;
  const options = typeof first === 'object' && first !== null && 'port' in first && !('path' in first) ? (first as net.ListenOptions) : undefined;
  if (port === undefined && options === undefined) return original.apply(this, args);
  this.once('listening', () => {
    const address = this.address();
    if (address && typeof address === 'object') process.stderr.write(`${LISTENING_MARKER} ${address.port}\n`);
  });
  const pinnedOptions: net.ListenOptions = { ...(options ?? { port }), host: '127.0.0.1' };
  return callback ? original.call(this, pinnedOptions, callback) : original.call(this, pinnedOptions);
}

net.Server.prototype.listen = pinned as unknown as typeof net.Server.prototype.listen;
