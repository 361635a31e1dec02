/** The signed-in user, as the gateway's `GET /auth/session` returns it. */
export interface GatewayUser {
  /** The user ID: the `sub` of the user's Convex tokens. */
  id: string;
  email?: string;
  emailVerified: boolean;
  name?: string;
  /** A picture URL. */
  picture?: string;
}

/** The browser's session, as `GET /auth/session` returns it. Times are Unix milliseconds. */
export interface GatewaySessionInfo {
  id: string;
  /** How the user signed in: a provider name such as `github`, or `password`, `email`, `anonymous`. */
  provider?: string;
  createdAt: number;
  /** When the session ends unless used again (the earlier of its absolute and idle expiry). */
  expiresAt: number;
}

/** The body of `GET /auth/session`. */
export interface GatewaySession {
  user: GatewayUser;
  session: GatewaySessionInfo;
}

/** What the gateway says about the browser's session. */
export interface GatewayAuthState {
  /** True until the first `/auth/session` answer (or failure). */
  isLoading: boolean;
  isAuthenticated: boolean;
  user: GatewayUser | null;
  session: GatewaySessionInfo | null;
  /**
   * The last failure to reach the gateway (a 5xx answer, a network error),
   * cleared by the next answer. It does not sign the browser out: the
   * session is kept as last seen.
   */
  error: GatewayError | null;
}

/** An answer from the gateway other than the one expected, or a failed request. */
export class GatewayError extends Error {
  /** The HTTP status, 0 when no answer came. */
  readonly status: number;
  /** The gateway's error code (`{"error": …}`), e.g. `cross_site`, `session_store_unavailable`. */
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "GatewayError";
    this.status = status;
    this.code = code;
  }
}
