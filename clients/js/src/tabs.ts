// Tells the site's other tabs that this one signed out, so that they ask
// the gateway again at once instead of at their next focus. Same origin
// only: a BroadcastChannel, or where there is none, a localStorage key
// whose change fires a `storage` event in the other tabs.

/** The channel's default name, the same in every tab of the site. */
export const DEFAULT_TAB_CHANNEL = "convex-auth-gateway";

export interface TabMessage {
  type: "signed-out";
}

export interface TabChannel {
  post(message: TabMessage): void;
  close(): void;
}

function isTabMessage(data: unknown): data is TabMessage {
  return typeof data === "object" && data !== null && (data as { type?: unknown }).type === "signed-out";
}

/**
 * Opens the channel `name`; onMessage gets what other tabs post (never what
 * this channel posts itself).
 */
export function openTabChannel(name: string, onMessage: (message: TabMessage) => void): TabChannel {
  if (typeof BroadcastChannel === "function") {
    const channel = new BroadcastChannel(name);
    channel.onmessage = (e: MessageEvent) => {
      if (isTabMessage(e.data)) onMessage(e.data);
    };
    return { post: (m) => channel.postMessage(m), close: () => channel.close() };
  }
  return openStorageChannel(name, onMessage);
}

/** The fallback for browsers without BroadcastChannel. Exported for its test. */
export function openStorageChannel(name: string, onMessage: (message: TabMessage) => void): TabChannel {
  if (typeof window === "undefined") return { post() {}, close() {} };
  const key = `${name}:message`;
  const listener = (e: StorageEvent) => {
    if (e.key !== key || !e.newValue) return;
    try {
      const data: unknown = JSON.parse(e.newValue);
      if (isTabMessage(data)) onMessage({ type: data.type });
    } catch {
      // another writer's value: not ours
    }
  };
  window.addEventListener("storage", listener);
  return {
    post(m) {
      try {
        // A new value every time (the event fires only on a change), then
        // removed so nothing stays behind.
        localStorage.setItem(key, JSON.stringify({ type: m.type, at: Date.now(), nonce: Math.random() }));
        localStorage.removeItem(key);
      } catch {
        // storage disabled: the other tabs notice on their next focus
      }
    },
    close: () => window.removeEventListener("storage", listener),
  };
}
