import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { GatewayAuthClient, signOut } from "../src/client.js";
import { GatewayError } from "../src/types.js";
import { ada, deferred, eventually, fakeGateway } from "./fakeGateway.js";

let stops: (() => void)[] = [];
function started(client = new GatewayAuthClient()) {
  stops.push(client.start());
  return client;
}

beforeEach(() => {
  // Only Date is faked: the clock the token reuse reads.
  vi.useFakeTimers({ toFake: ["Date"] });
});

afterEach(() => {
  for (const stop of stops) stop();
  stops = [];
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("the session", () => {
  test("starts loading, then exposes the typed /auth/session user", async () => {
    const gw = fakeGateway();
    gw.session = ada;
    const client = new GatewayAuthClient();
    expect(client.getState()).toMatchObject({ isLoading: true, isAuthenticated: false, user: null });
    started(client);
    await eventually(() => expect(client.getState().isLoading).toBe(false));
    expect(client.getState()).toEqual({ isLoading: false, isAuthenticated: true, user: ada.user, session: ada.session, error: null });
    const req = gw.requests[0]!;
    expect(req).toMatchObject({ method: "GET", path: "/auth/session", credentials: "same-origin" });
    expect(req.headers.accept).toBe("application/json");
  });

  test("a 401 from /auth/session is signed out", async () => {
    fakeGateway();
    const client = started();
    await eventually(() => expect(client.getState().isLoading).toBe(false));
    expect(client.getState()).toMatchObject({ isAuthenticated: false, user: null, session: null, error: null });
  });

  test("a gateway that cannot answer sets error and keeps the session as last seen", async () => {
    const gw = fakeGateway();
    gw.session = ada;
    const client = started();
    await eventually(() => expect(client.getState().isAuthenticated).toBe(true));
    gw.answerOnce("/auth/session", {
      status: 503,
      body: { error: "session_store_unavailable", message: "sessions cannot be checked right now: try again shortly" },
    });
    await client.refresh();
    const { error, ...rest } = client.getState();
    expect(rest).toMatchObject({ isAuthenticated: true, user: ada.user });
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 503, code: "session_store_unavailable" });
    await client.refresh();
    expect(client.getState().error).toBeNull();
  });

  test("a page not served through the gateway says so", async () => {
    const gw = fakeGateway();
    gw.answerOnce("/auth/session", { status: 404, body: "<!doctype html>Not Found" });
    const client = new GatewayAuthClient();
    await client.refresh();
    expect(client.getState().error?.message).toMatch(/\/auth\/session answered 404.*served through the gateway/);
  });

  test("rechecks on focus and when the tab becomes visible, not when it is hidden", async () => {
    const gw = fakeGateway();
    gw.session = ada;
    const client = started();
    await eventually(() => expect(client.getState().isAuthenticated).toBe(true));
    expect(gw.count("/auth/session")).toBe(1);

    // Signed out on a gateway page, which runs no script: noticed on focus.
    gw.session = null;
    window.dispatchEvent(new Event("focus"));
    await eventually(() => expect(client.getState().isAuthenticated).toBe(false));
    expect(gw.count("/auth/session")).toBe(2);

    gw.session = ada;
    const visibility = vi.spyOn(document, "visibilityState", "get");
    visibility.mockReturnValue("hidden");
    document.dispatchEvent(new Event("visibilitychange"));
    expect(gw.count("/auth/session")).toBe(2);
    visibility.mockReturnValue("visible");
    document.dispatchEvent(new Event("visibilitychange"));
    await eventually(() => expect(client.getState().isAuthenticated).toBe(true));
    expect(gw.count("/auth/session")).toBe(3);
  });

  test("stops listening after the last stop", async () => {
    const gw = fakeGateway();
    const client = new GatewayAuthClient();
    const stopA = client.start();
    const stopB = client.start();
    await eventually(() => expect(gw.count("/auth/session")).toBe(1));
    stopA();
    stopA();
    window.dispatchEvent(new Event("focus"));
    await eventually(() => expect(gw.count("/auth/session")).toBe(2));
    stopB();
    window.dispatchEvent(new Event("focus"));
    await new Promise((r) => setTimeout(r, 20));
    expect(gw.count("/auth/session")).toBe(2);
  });

  test("an older check answering last does not undo a newer one", async () => {
    const gw = fakeGateway();
    gw.session = ada;
    const client = new GatewayAuthClient();
    const slow = deferred<{ status: number; body?: unknown }>();
    gw.answerOnce("/auth/session", slow.promise);
    const first = client.refresh();
    gw.session = null;
    await client.refresh();
    expect(client.getState().isAuthenticated).toBe(false);
    slow.resolve({ status: 200, body: ada });
    await first;
    expect(client.getState().isAuthenticated).toBe(false);
  });

  test("an unchanged answer changes nothing", async () => {
    const gw = fakeGateway();
    gw.session = ada;
    const client = new GatewayAuthClient();
    await client.refresh();
    const before = client.getState();
    const listener = vi.fn();
    client.subscribe(listener);
    await client.refresh();
    expect(client.getState()).toBe(before);
    expect(listener).not.toHaveBeenCalled();
  });
});

describe("fetchAccessToken", () => {
  async function signedIn() {
    const gw = fakeGateway();
    gw.session = ada;
    const client = new GatewayAuthClient();
    await client.refresh();
    return { gw, client };
  }

  test("reuses a token younger than 5 s unless Convex forces a refresh", async () => {
    const { gw, client } = await signedIn();
    expect(await client.fetchAccessToken({ forceRefreshToken: false })).toBe("token-1");
    vi.advanceTimersByTime(4_999);
    expect(await client.fetchAccessToken({ forceRefreshToken: false })).toBe("token-1");
    expect(await client.fetchAccessToken({ forceRefreshToken: true })).toBe("token-2");
    vi.advanceTimersByTime(5_000);
    expect(await client.fetchAccessToken({ forceRefreshToken: false })).toBe("token-3");
    expect(gw.count("/auth/token")).toBe(3);
    expect(gw.requests.find((r) => r.path === "/auth/token")).toMatchObject({ method: "GET", credentials: "same-origin" });
  });

  test("concurrent calls share one mint", async () => {
    const { gw, client } = await signedIn();
    const tokens = await Promise.all([
      client.fetchAccessToken({ forceRefreshToken: true }),
      client.fetchAccessToken({ forceRefreshToken: false }),
      client.fetchAccessToken({ forceRefreshToken: true }),
    ]);
    expect(tokens).toEqual(["token-1", "token-1", "token-1"]);
    expect(gw.count("/auth/token")).toBe(1);
  });

  test("a 401 from /auth/token reports signed out", async () => {
    const { gw, client } = await signedIn();
    expect(await client.fetchAccessToken({ forceRefreshToken: false })).toBe("token-1");
    gw.session = null;
    expect(await client.fetchAccessToken({ forceRefreshToken: true })).toBeNull();
    expect(client.getState()).toMatchObject({ isLoading: false, isAuthenticated: false, user: null, session: null });
    // The cached token went with the session.
    gw.session = ada;
    await client.refresh();
    expect(await client.fetchAccessToken({ forceRefreshToken: false })).toBe("token-2");
  });

  test("a token of another session is not reused", async () => {
    const { gw, client } = await signedIn();
    expect(await client.fetchAccessToken({ forceRefreshToken: false })).toBe("token-1");
    gw.session = { user: { ...ada.user, id: "user_grace", name: "Grace Hopper" }, session: { ...ada.session, id: "sess_2" } };
    await client.refresh();
    expect(await client.fetchAccessToken({ forceRefreshToken: false })).toBe("token-2");
  });

  test("a gateway error is null with the error in the state, the session kept", async () => {
    const { gw, client } = await signedIn();
    gw.answerOnce("/auth/token", { status: 500, body: { error: "token_unavailable", message: "a token could not be issued: see the gateway's log" } });
    expect(await client.fetchAccessToken({ forceRefreshToken: true })).toBeNull();
    expect(client.getState()).toMatchObject({ isAuthenticated: true, error: { status: 500, code: "token_unavailable" } });
  });

  test("a network failure is null with a network_error", async () => {
    const { client } = await signedIn();
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    expect(await client.fetchAccessToken({ forceRefreshToken: true })).toBeNull();
    expect(client.getState().error).toMatchObject({ status: 0, code: "network_error" });
  });

  test("tokenReuseMs is bounded by Convex's refresh leeway", () => {
    expect(() => new GatewayAuthClient({ tokenReuseMs: 10_000 })).toThrow(/tokenReuseMs 10000 is out of range: use 0 to 9000 ms/);
    expect(() => new GatewayAuthClient({ tokenReuseMs: -1 })).toThrow(RangeError);
    expect(() => new GatewayAuthClient({ tokenReuseMs: 0 })).not.toThrow();
  });
});

describe("signOut", () => {
  test("posts a same-origin form fetch that expects JSON, never following a redirect", async () => {
    const gw = fakeGateway();
    gw.session = ada;
    const client = started();
    await eventually(() => expect(client.getState().isAuthenticated).toBe(true));
    await client.signOut();
    expect(client.getState()).toMatchObject({ isAuthenticated: false, user: null });
    const post = gw.requests.find((r) => r.path === "/auth/signout")!;
    expect(post).toMatchObject({ method: "POST", body: "", redirect: "manual", credentials: "same-origin" });
    expect(post.headers).toMatchObject({ accept: "application/json", "content-type": "application/x-www-form-urlencoded" });

    await signOut({ all: true });
    expect(gw.requests.filter((r) => r.path === "/auth/signout").map((r) => r.body)).toEqual(["", "all=1"]);
  });

  test("a refused sign-out throws the gateway's error and changes nothing", async () => {
    const gw = fakeGateway();
    gw.session = ada;
    const client = started();
    await eventually(() => expect(client.getState().isAuthenticated).toBe(true));
    gw.answerOnce("/auth/signout", { status: 403, body: { error: "cross_site", message: "sign-out must come from this site's own pages" } });
    const err = await client.signOut().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ status: 403, code: "cross_site", message: "sign-out must come from this site's own pages" });
    expect(client.getState().isAuthenticated).toBe(true);
  });

  test("an in-flight check that answers after the sign-out does not sign the page back in", async () => {
    const gw = fakeGateway();
    gw.session = ada;
    const client = started();
    await eventually(() => expect(client.getState().isAuthenticated).toBe(true));
    const slow = deferred<{ status: number; body?: unknown }>();
    gw.answerOnce("/auth/session", slow.promise);
    const check = client.refresh();
    await client.signOut();
    slow.resolve({ status: 200, body: ada });
    await check;
    expect(client.getState().isAuthenticated).toBe(false);
  });
});
