import { IncomingMessage } from "node:http";
import { Socket } from "node:net";
import { afterEach, expect, test, vi } from "vitest";
import { signIn, signInUrl } from "../src/endpoints.js";
import { tokenFromRequest } from "../src/server.js";

const headersOf = vi.hoisted(() => ({ current: new Headers() }));
vi.mock("next/headers.js", () => ({ headers: async () => headersOf.current }));

afterEach(() => {
  vi.restoreAllMocks();
});

test("signInUrl: the page or a provider's start, back to the current page by default", () => {
  // The test page is http://localhost:3000/orders?tab=open (vitest.config.mts).
  expect(signInUrl()).toBe("/auth/signin?redirectTo=%2Forders%3Ftab%3Dopen");
  expect(signInUrl("github")).toBe("/auth/signin/github?redirectTo=%2Forders%3Ftab%3Dopen");
  expect(signInUrl("github", "/loggedin")).toBe("/auth/signin/github?redirectTo=%2Floggedin");
  expect(signInUrl("a/b?c", "/x")).toBe("/auth/signin/a%2Fb%3Fc?redirectTo=%2Fx");
  expect(signInUrl(undefined, "")).toBe("/auth/signin");
});

test("signIn navigates to the sign-in URL", () => {
  const assign = vi.spyOn(window.location, "assign").mockImplementation(() => {});
  signIn("google", "/dashboard");
  expect(assign).toHaveBeenCalledWith("/auth/signin/google?redirectTo=%2Fdashboard");
});

test("tokenFromRequest reads the injected header from a Request, Headers or a Node request", () => {
  const token = "eyJhbGciOiJFZERTQSJ9.e30.c2ln";
  expect(tokenFromRequest(new Request("http://app.test/", { headers: { "X-Convex-Token": token } }))).toBe(token);
  expect(tokenFromRequest(new Headers({ "x-convex-token": token }))).toBe(token);
  expect(tokenFromRequest({ headers: new Headers({ "x-convex-token": token }) })).toBe(token);

  const node = new IncomingMessage(new Socket());
  node.headers = { "x-convex-token": token, host: "app.test" };
  expect(tokenFromRequest(node)).toBe(token);

  // Another header name (`inject header` in the gateway's config).
  expect(tokenFromRequest(new Headers({ "x-app-token": token }), { header: "X-App-Token" })).toBe(token);
  expect(tokenFromRequest({ headers: { "x-app-token": token } }, { header: "X-App-Token" })).toBe(token);

  // None, empty, or repeated (not the gateway's): undefined.
  expect(tokenFromRequest(new Request("http://app.test/"))).toBeUndefined();
  expect(tokenFromRequest(new Headers({ "x-convex-token": "" }))).toBeUndefined();
  expect(tokenFromRequest({ headers: { "x-convex-token": [token, token] } })).toBeUndefined();
  expect(tokenFromRequest({ headers: {} })).toBeUndefined();
});

test("getGatewayToken reads the header through next/headers", async () => {
  const { getGatewayToken } = await import("../src/next.js");
  headersOf.current = new Headers({ "x-convex-token": "tok", "x-other": "other" });
  expect(await getGatewayToken()).toBe("tok");
  expect(await getGatewayToken({ header: "x-other" })).toBe("other");
  headersOf.current = new Headers();
  expect(await getGatewayToken()).toBeUndefined();
});
