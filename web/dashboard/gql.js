// GraphQL over HTTP and over WebSocket (the graphql-transport-ws protocol), authenticated with
// the API key the person signed in with. The key lives in sessionStorage: it is gone when the tab
// closes and is never written to a cookie, a URL or the page.

const KEY = "vigil-api-key";

export const session = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key),
  signOut: () => {
    sessionStorage.removeItem(KEY);
    // Anything an older GraphiQL kept (its history held request headers).
    for (const k of Object.keys(localStorage)) {
      if (k.startsWith("graphiql:")) localStorage.removeItem(k);
    }
  },
};

/** An error the API returned: its message, and its `code` extension when there is one. */
export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/** Runs a query or mutation; resolves to `data`, rejects with the first error. */
export async function gql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
      authorization: `Bearer ${session.key()}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the API answered ${response.status} without a JSON body`, "HTTP");
  }
  if (body.errors && body.errors.length > 0) {
    const first = body.errors[0];
    throw new ApiError(first.message, first.extensions && first.extensions.code);
  }
  if (!response.ok) {
    throw new ApiError(body.detail || body.title || `HTTP ${response.status}`, "HTTP");
  }
  return body.data;
}

/**
 * One WebSocket for every live subscription of the page. `subscribe` returns a function that
 * ends the subscription; the socket reconnects with backoff and resubscribes after a drop.
 */
export class Live {
  constructor(onStatus = () => {}) {
    this.subs = new Map();
    this.next = 1;
    this.onStatus = onStatus;
    this.backoff = 500;
    this.closed = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/graphql/ws`, "graphql-transport-ws");
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      ws.send(JSON.stringify({
        type: "connection_init",
        payload: { authorization: `Bearer ${session.key()}` },
      }));
    };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      switch (msg.type) {
        case "connection_ack":
          this.ready = true;
          this.backoff = 500;
          this.onStatus("live");
          for (const [id, sub] of this.subs) this.start(id, sub);
          break;
        case "ping":
          ws.send(JSON.stringify({ type: "pong" }));
          break;
        case "next": {
          const sub = this.subs.get(msg.id);
          if (sub && msg.payload && msg.payload.data) sub.onData(msg.payload.data);
          break;
        }
        case "error": {
          const sub = this.subs.get(msg.id);
          if (sub && sub.onError) sub.onError(msg.payload);
          break;
        }
        default:
          break;
      }
    };
    ws.onclose = (event) => {
      this.ready = false;
      if (this.closed) return;
      if (event.code === 4401 || event.code === 4403) {
        // The key was refused (revoked or expired): back to sign-in, no retries.
        this.closed = true;
        this.onStatus("signed out");
        session.signOut();
        window.dispatchEvent(new HashChangeEvent("hashchange"));
        return;
      }
      this.onStatus("reconnecting");
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 15000);
    };
  }

  start(id, sub) {
    this.ws.send(JSON.stringify({
      id,
      type: "subscribe",
      payload: { query: sub.query, variables: sub.variables },
    }));
  }

  subscribe(query, variables, onData, onError) {
    const id = String(this.next++);
    const sub = { query, variables, onData, onError };
    this.subs.set(id, sub);
    if (this.ready) this.start(id, sub);
    return () => {
      this.subs.delete(id);
      if (this.ready) this.ws.send(JSON.stringify({ id, type: "complete" }));
    };
  }

  close() {
    this.closed = true;
    this.subs.clear();
    this.ws.close();
  }
}
