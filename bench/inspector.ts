// A minimal Chrome DevTools Protocol client over the inspector's WebSocket, for the bench tools
// that look inside a running sidecar (alloc.ts, memory.ts).

export interface Inspector {
  call<T>(method: string, params?: object): Promise<T>;
  close(): void;
}

/** Connects to the first target of a process started with --inspect=127.0.0.1:PORT. */
export async function connectInspector(port: number): Promise<Inspector> {
  const [page] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const ws = new WebSocket(page!.webSocketDebuggerUrl);
  await new Promise((r) => ws.addEventListener('open', r, { once: true }));
  let next = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
  });
  return {
    call: <T>(method: string, params: object = {}) =>
      new Promise<T>((resolve) => {
        const id = ++next;
        waiting.set(id, resolve as (v: unknown) => void);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}
