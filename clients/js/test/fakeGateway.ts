import { vi } from "vitest";
import type { GatewaySession } from "../src/types.js";

/** A request the page made, as the fake gateway saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  redirect: RequestRedirect | undefined;
  credentials: RequestCredentials | undefined;
}

type Answer = { status: number; body?: unknown } | Promise<{ status: number; body?: unknown }>;

export const ada: GatewaySession = {
  user: { id: "user_ada", email: "ada@example.com", emailVerified: true, name: "Ada Lovelace" },
  session: { id: "sess_1", provider: "github", createdAt: 1_700_000_000_000, expiresAt: 1_800_000_000_000 },
};

/**
 * A gateway behind fetch: /auth/session, /auth/token and /auth/signout
 * answer as edge/endpoints.go does for the session it holds. Tests change
 * `session`, or `next` to answer one request their own way.
 */
export function fakeGateway() {
  const gw = {
    session: null as GatewaySession | null,
    minted: 0,
    requests: [] as SeenRequest[],
    /** Overrides for the next request to a path, first in first out. */
    next: new Map<string, Answer[]>(),
    answerOnce(path: string, answer: Answer) {
      const list = gw.next.get(path) ?? [];
      list.push(answer);
      gw.next.set(path, list);
    },
    count: (path: string) => gw.requests.filter((r) => r.path === path).length,
  };

  const standard = (req: SeenRequest): Answer => {
    const unauthenticated = { status: 401, body: { error: "unauthenticated", message: "no signed-in session" } };
    switch (req.path) {
      case "/auth/session":
        return gw.session ? { status: 200, body: gw.session } : unauthenticated;
      case "/auth/token":
        if (!gw.session) return unauthenticated;
        gw.minted++;
        return { status: 200, body: { token: `token-${gw.minted}`, expiresAt: Date.now() + 300_000 } };
      case "/auth/signout":
        if (req.method !== "POST") return { status: 405, body: { error: "method_not_allowed", message: "sign out with POST" } };
        gw.session = null;
        return { status: 204 };
      default:
        return { status: 404, body: "not found" };
    }
  };

  const fetchMock = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), location.href);
    const req: SeenRequest = {
      method: init.method ?? "GET",
      path: url.pathname,
      headers: Object.fromEntries(new Headers(init.headers).entries()),
      body: typeof init.body === "string" ? init.body : "",
      redirect: init.redirect,
      credentials: init.credentials,
    };
    gw.requests.push(req);
    const answer = await (gw.next.get(url.pathname)?.shift() ?? standard(req));
    const body = answer.body === undefined ? null : typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
    return new Response(body, {
      status: answer.status,
      headers: typeof answer.body === "object" ? { "content-type": "application/json" } : {},
    });
  });
  vi.stubGlobal("fetch", fetchMock);
  return gw;
}

/** A promise and the functions that settle it. */
export function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Waits until check passes (a few event-loop turns at most in these tests).
 * The bound is generous: a starved machine runs those turns late, and a
 * passing test does not wait for it.
 */
export async function eventually(check: () => void, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
