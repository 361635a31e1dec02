import { fetchSession, fetchToken, postSignOut } from "./endpoints.js";
import { DEFAULT_TAB_CHANNEL, openTabChannel, type TabChannel } from "./tabs.js";
import { GatewayError, type GatewayAuthState, type GatewaySession } from "./types.js";

/**
 * How long a token is handed out again when Convex does not force a
 * refresh (a reconnect, React's double mount). Convex's client schedules
 * its next refresh `exp - iat - 10 s` after it receives a token, so a token
 * older than 10 s would be refreshed only after it expired.
 */
export const DEFAULT_TOKEN_REUSE_MS = 5_000;
const MAX_TOKEN_REUSE_MS = 9_000;

export interface GatewayAuthOptions {
  /**
   * How long (ms) a fetched token is reused when Convex does not force a
   * refresh. Default 5000; at most 9000 (see {@link DEFAULT_TOKEN_REUSE_MS}).
   */
  tokenReuseMs?: number;
  /** The name of the channel that tells other tabs of a sign-out. Default `convex-auth-gateway`. */
  tabChannel?: string;
}

export interface SignOutOptions {
  /** End every session of the user, on every device, not only this browser's. */
  all?: boolean;
  /** The channel to tell other tabs on. Default `convex-auth-gateway`. */
  tabChannel?: string;
}

const LOADING: GatewayAuthState = Object.freeze({
  isLoading: true,
  isAuthenticated: false,
  user: null,
  session: null,
  error: null,
});

const SIGNED_OUT: GatewayAuthState = Object.freeze({
  isLoading: false,
  isAuthenticated: false,
  user: null,
  session: null,
  error: null,
});

interface CachedToken {
  token: string;
  fetchedAt: number;
  sessionId: string | undefined;
}

// The clients started in this page, told at once of a sign-out made here.
const startedClients = new Set<GatewayAuthClient>();

/**
 * Ends the browser's session at the gateway (`POST /auth/signout`, same
 * origin), and tells this page's {@link GatewayAuthClient}s and the site's
 * other tabs. Throws a {@link GatewayError} when the gateway refuses (the
 * session is then unchanged).
 */
export async function signOut(options: SignOutOptions = {}): Promise<void> {
  await postSignOut(options.all === true);
  for (const client of startedClients) client.signedOutHere();
  const channel = openTabChannel(options.tabChannel ?? DEFAULT_TAB_CHANNEL, () => {});
  channel.post({ type: "signed-out" });
  channel.close();
}

/**
 * The browser's view of its gateway session, for Convex's client and the
 * page: who is signed in (`GET /auth/session`, checked again when the tab
 * gets focus or becomes visible, and when another tab signs out), and
 * tokens for Convex (`GET /auth/token`).
 *
 * React apps use it through {@link ConvexProviderWithGateway}; other
 * frameworks can subscribe to it directly.
 */
export class GatewayAuthClient {
  readonly #tokenReuseMs: number;
  readonly #tabChannel: string;
  #state: GatewayAuthState = LOADING;
  readonly #listeners = new Set<() => void>();
  #cached: CachedToken | null = null;
  #tokenInFlight: Promise<string | null> | null = null;
  // Bumped by every session check and by what settles the session (a 401,
  // a sign-out): only the newest check's answer is applied.
  #generation = 0;
  #starts = 0;
  #detach: (() => void) | null = null;

  constructor(options: GatewayAuthOptions = {}) {
    const reuse = options.tokenReuseMs ?? DEFAULT_TOKEN_REUSE_MS;
    if (!(reuse >= 0 && reuse <= MAX_TOKEN_REUSE_MS)) {
      throw new RangeError(`tokenReuseMs ${reuse} is out of range: use 0 to ${MAX_TOKEN_REUSE_MS} ms (Convex refreshes a token 10 s before it expires, counted from when it gets it)`);
    }
    this.#tokenReuseMs = reuse;
    this.#tabChannel = options.tabChannel ?? DEFAULT_TAB_CHANNEL;
  }

  /** The current state; a new object whenever it changes. */
  getState = (): GatewayAuthState => this.#state;

  /** The state during server rendering: loading. */
  getServerState = (): GatewayAuthState => LOADING;

  /** Calls listener after each change of state; returns the unsubscribe function. */
  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  };

  /**
   * Checks the session now and keeps it checked: on focus, when the tab
   * becomes visible or is restored from the back-forward cache, and when
   * another tab signs out. Returns the function that stops it. Calls nest:
   * the last stop detaches.
   */
  start = (): (() => void) => {
    if (this.#starts++ === 0) this.#attach();
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      if (--this.#starts === 0) {
        this.#detach?.();
        this.#detach = null;
      }
    };
  };

  /** Asks the gateway who is signed in (`GET /auth/session`) and updates the state. */
  refresh = async (): Promise<GatewayAuthState> => {
    const generation = ++this.#generation;
    try {
      const session = await fetchSession();
      if (generation === this.#generation) this.#setSession(session);
    } catch (e) {
      if (generation === this.#generation) this.#setError(e);
    }
    return this.#state;
  };

  /**
   * A Convex token for the session, as `ConvexProviderWithAuth`'s
   * `fetchAccessToken`: a token fetched within `tokenReuseMs` is handed
   * out again unless `forceRefreshToken`; otherwise `GET /auth/token` mints
   * one. Null when nobody is signed in (the state then says signed out) or
   * the gateway cannot be reached (the state's `error` says why).
   */
  fetchAccessToken = async ({ forceRefreshToken }: { forceRefreshToken: boolean }): Promise<string | null> => {
    const cached = this.#cached;
    if (!forceRefreshToken && cached && cached.sessionId === this.#state.session?.id && Date.now() - cached.fetchedAt < this.#tokenReuseMs) {
      return cached.token;
    }
    // Concurrent callers share one mint.
    this.#tokenInFlight ??= this.#mint().finally(() => {
      this.#tokenInFlight = null;
    });
    return this.#tokenInFlight;
  };

  /** {@link signOut}, on this client's tab channel. */
  signOut = (options: Omit<SignOutOptions, "tabChannel"> = {}): Promise<void> =>
    signOut({ ...options, tabChannel: this.#tabChannel });

  /** @internal A sign-out made in this page succeeded. */
  signedOutHere(): void {
    this.#generation++;
    this.#setSession(null);
  }

  async #mint(): Promise<string | null> {
    const fetchedAt = Date.now();
    const sessionId = this.#state.session?.id;
    try {
      const token = await fetchToken();
      if (token === null) {
        // The session ended (signed out elsewhere, expired, revoked).
        this.#generation++;
        this.#setSession(null);
        return null;
      }
      this.#cached = { token: token.token, fetchedAt, sessionId };
      return token.token;
    } catch (e) {
      this.#setError(e);
      return null;
    }
  }

  #attach(): void {
    if (typeof window === "undefined") return;
    const recheck = () => void this.refresh();
    const onVisible = () => {
      if (document.visibilityState === "visible") recheck();
    };
    const onPageShow = (e: PageTransitionEvent) => {
      if (e.persisted) recheck();
    };
    window.addEventListener("focus", recheck);
    document.addEventListener("visibilitychange", onVisible);
    window.addEventListener("pageshow", onPageShow);
    const channel: TabChannel = openTabChannel(this.#tabChannel, recheck);
    startedClients.add(this);
    this.#detach = () => {
      window.removeEventListener("focus", recheck);
      document.removeEventListener("visibilitychange", onVisible);
      window.removeEventListener("pageshow", onPageShow);
      channel.close();
      startedClients.delete(this);
    };
    recheck();
  }

  #setSession(s: GatewaySession | null): void {
    if (s === null) {
      this.#cached = null;
      this.#emit(SIGNED_OUT);
      return;
    }
    const prev = this.#state;
    if (this.#cached && this.#cached.sessionId !== s.session.id) this.#cached = null;
    // Keep unchanged parts identical, so that components depending on
    // them do not render again.
    const user = prev.user && same(prev.user, s.user) ? prev.user : s.user;
    const session = prev.session && same(prev.session, s.session) ? prev.session : s.session;
    if (prev.isAuthenticated && !prev.error && user === prev.user && session === prev.session) return;
    this.#emit({ isLoading: false, isAuthenticated: true, user, session, error: null });
  }

  #setError(e: unknown): void {
    const error = e instanceof GatewayError ? e : new GatewayError(0, "network_error", e instanceof Error ? e.message : String(e));
    this.#emit({ ...this.#state, isLoading: false, error });
  }

  #emit(next: GatewayAuthState): void {
    if (next === this.#state) return;
    this.#state = next;
    for (const listener of [...this.#listeners]) listener();
  }
}

function same(a: object, b: object): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
