import { useConvexAuth } from "convex/react";
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { ConvexProviderWithGateway, type GatewayAuth, useGatewayAuth } from "../src/react.js";
import { ada, fakeGateway } from "./fakeGateway.js";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

type FetchToken = (args: { forceRefreshToken: boolean }) => Promise<string | null>;

/** What ConvexProviderWithAuth calls on a ConvexReactClient, recorded. */
function fakeConvexClient() {
  return {
    setAuth: vi.fn<(fetchToken: FetchToken, onChange: (isAuthenticated: boolean) => void) => void>(),
    clearAuth: vi.fn(),
  };
}

let root: Root;
let container: HTMLElement;
beforeEach(() => {
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
});
afterEach(async () => {
  await act(async () => root.unmount());
  container.remove();
  vi.unstubAllGlobals();
});

// Let fetches answer and React render.
const settle = () => act(async () => new Promise((r) => setTimeout(r, 10)));

async function render(convex: ReturnType<typeof fakeConvexClient>) {
  const seen: { gateway?: GatewayAuth; convex?: ReturnType<typeof useConvexAuth> } = {};
  function Probe() {
    seen.gateway = useGatewayAuth();
    seen.convex = useConvexAuth();
    return <p id="who">{seen.gateway.user?.name ?? "nobody"}</p>;
  }
  await act(async () => {
    root.render(
      <ConvexProviderWithGateway client={convex as never}>
        <Probe />
      </ConvexProviderWithGateway>,
    );
  });
  return seen;
}

test("Convex gets the gateway's tokens once the gateway says who is signed in", async () => {
  const gw = fakeGateway();
  gw.session = ada;
  const convex = fakeConvexClient();
  const seen = await render(convex);
  await settle();
  expect(seen.gateway).toMatchObject({ isLoading: false, isAuthenticated: true, user: ada.user, session: ada.session });
  expect(container.querySelector("#who")?.textContent).toBe("Ada Lovelace");

  // ConvexProviderWithAuth handed Convex the package's fetchAccessToken.
  expect(convex.setAuth).toHaveBeenCalledTimes(1);
  const [fetchToken, onChange] = convex.setAuth.mock.calls[0]!;
  expect(await fetchToken({ forceRefreshToken: false })).toBe("token-1");
  expect(await fetchToken({ forceRefreshToken: false })).toBe("token-1");
  expect(await fetchToken({ forceRefreshToken: true })).toBe("token-2");
  // Convex's own state waits for its backend to accept the token.
  expect(seen.convex).toMatchObject({ isLoading: true, isAuthenticated: false });
  await act(async () => onChange(true));
  expect(seen.convex).toMatchObject({ isLoading: false, isAuthenticated: true });

  // A recheck that finds the same session does not make Convex authenticate again.
  await act(async () => void window.dispatchEvent(new Event("focus")));
  await settle();
  expect(gw.count("/auth/session")).toBe(2);
  expect(convex.setAuth).toHaveBeenCalledTimes(1);

  // Another session (another user signed in in another tab): Convex
  // authenticates again with a token of that session.
  gw.session = { user: { ...ada.user, id: "user_grace", name: "Grace Hopper" }, session: { ...ada.session, id: "sess_2" } };
  await act(async () => void window.dispatchEvent(new Event("focus")));
  await settle();
  expect(container.querySelector("#who")?.textContent).toBe("Grace Hopper");
  expect(convex.setAuth).toHaveBeenCalledTimes(2);
  expect(await convex.setAuth.mock.calls[1]![0]({ forceRefreshToken: false })).toBe("token-3");
});

test("signing out through the hook clears Convex's auth", async () => {
  const gw = fakeGateway();
  gw.session = ada;
  const convex = fakeConvexClient();
  const seen = await render(convex);
  await settle();
  expect(seen.gateway?.isAuthenticated).toBe(true);
  await act(async () => seen.gateway!.signOut());
  expect(seen.gateway).toMatchObject({ isAuthenticated: false, user: null });
  expect(convex.clearAuth).toHaveBeenCalled();
  expect(seen.convex).toMatchObject({ isLoading: false, isAuthenticated: false });
  expect(container.querySelector("#who")?.textContent).toBe("nobody");
});

test("signed out from the start: Convex is never asked for a token", async () => {
  fakeGateway();
  const convex = fakeConvexClient();
  const seen = await render(convex);
  await settle();
  expect(seen.gateway).toMatchObject({ isLoading: false, isAuthenticated: false });
  expect(seen.convex).toMatchObject({ isLoading: false, isAuthenticated: false });
  expect(convex.setAuth).not.toHaveBeenCalled();
});

test("useGatewayAuth outside the provider says where it belongs", async () => {
  function Lost() {
    useGatewayAuth();
    return null;
  }
  vi.spyOn(console, "error").mockImplementation(() => {});
  await expect(act(async () => root.render(<Lost />))).rejects.toThrow("useGatewayAuth must be called inside <ConvexProviderWithGateway>");
});
