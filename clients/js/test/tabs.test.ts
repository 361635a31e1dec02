import { afterEach, expect, test, vi } from "vitest";
import { GatewayAuthClient, signOut } from "../src/client.js";
import { openStorageChannel } from "../src/tabs.js";
import { ada, eventually, fakeGateway } from "./fakeGateway.js";

afterEach(() => {
  vi.unstubAllGlobals();
  localStorage.clear();
});

test("a sign-out through signOut() reaches the other tabs' clients over BroadcastChannel", async () => {
  expect(typeof BroadcastChannel).toBe("function");
  const gw = fakeGateway();
  gw.session = ada;
  // Another tab: a client on the same channel, reached only through it.
  const otherTab = new GatewayAuthClient({ tabChannel: "test-broadcast" });
  const stop = otherTab.start();
  try {
    await eventually(() => expect(otherTab.getState().isAuthenticated).toBe(true));
    const checks = gw.count("/auth/session");
    // Posted from a fresh channel of the same name, as another tab's page would.
    const sender = new BroadcastChannel("test-broadcast");
    gw.session = null;
    sender.postMessage({ type: "signed-out" });
    sender.close();
    await eventually(() => expect(otherTab.getState().isAuthenticated).toBe(false));
    expect(gw.count("/auth/session")).toBe(checks + 1);

    // Anything else on the channel is ignored.
    const noise = new BroadcastChannel("test-broadcast");
    noise.postMessage({ type: "hello" });
    noise.postMessage("signed-out");
    noise.close();
    await new Promise((r) => setTimeout(r, 30));
    expect(gw.count("/auth/session")).toBe(checks + 1);
  } finally {
    stop();
  }
});

test("signOut() tells the page's own started clients at once", async () => {
  const gw = fakeGateway();
  gw.session = ada;
  const client = new GatewayAuthClient({ tabChannel: "test-own" });
  const stop = client.start();
  try {
    await eventually(() => expect(client.getState().isAuthenticated).toBe(true));
    await signOut({ tabChannel: "test-own" });
    expect(client.getState().isAuthenticated).toBe(false);
  } finally {
    stop();
  }
});

test("without BroadcastChannel, a localStorage key's storage event carries the sign-out", async () => {
  vi.stubGlobal("BroadcastChannel", undefined);
  const gw = fakeGateway();
  gw.session = ada;
  const otherTab = new GatewayAuthClient({ tabChannel: "test-storage" });
  const stop = otherTab.start();
  try {
    await eventually(() => expect(otherTab.getState().isAuthenticated).toBe(true));

    // The sending tab writes the key, then removes it.
    const setItem = vi.spyOn(Storage.prototype, "setItem");
    const removeItem = vi.spyOn(Storage.prototype, "removeItem");
    await signOut({ tabChannel: "test-storage" });
    expect(setItem).toHaveBeenCalledTimes(1);
    const [key, value] = setItem.mock.calls[0]!;
    expect(key).toBe("test-storage:message");
    expect(JSON.parse(value)).toMatchObject({ type: "signed-out" });
    expect(removeItem).toHaveBeenCalledWith("test-storage:message");
    expect(localStorage.getItem("test-storage:message")).toBeNull();

    // A browser fires storage events in the other tabs only: deliver the
    // write to this one as the other tab's browser would.
    const checks = gw.count("/auth/session");
    window.dispatchEvent(new StorageEvent("storage", { key: "test-storage:message", newValue: value, oldValue: null }));
    await eventually(() => expect(gw.count("/auth/session")).toBe(checks + 1));
    expect(otherTab.getState().isAuthenticated).toBe(false);

    // Its removal, other keys and foreign values are ignored.
    window.dispatchEvent(new StorageEvent("storage", { key: "test-storage:message", newValue: null }));
    window.dispatchEvent(new StorageEvent("storage", { key: "other", newValue: value }));
    window.dispatchEvent(new StorageEvent("storage", { key: "test-storage:message", newValue: "not json" }));
    await new Promise((r) => setTimeout(r, 30));
    expect(gw.count("/auth/session")).toBe(checks + 1);
  } finally {
    stop();
  }
});

test("the storage fallback survives storage that throws", () => {
  const onMessage = vi.fn();
  const channel = openStorageChannel("test-throws", onMessage);
  vi.spyOn(Storage.prototype, "setItem").mockImplementation(() => {
    throw new DOMException("quota", "QuotaExceededError");
  });
  expect(() => channel.post({ type: "signed-out" })).not.toThrow();
  channel.close();
});
