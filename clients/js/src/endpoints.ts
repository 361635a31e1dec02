import { GatewayError, type GatewaySession } from "./types.js";

// The gateway's endpoints. They are same-origin: the page is served
// through the gateway, whose cookie the browser sends with each call.
const SESSION_PATH = "/auth/session";
const TOKEN_PATH = "/auth/token";
const SIGN_OUT_PATH = "/auth/signout";
const SIGN_IN_PATH = "/auth/signin";

/** A Convex token minted by `GET /auth/token`; `expiresAt` in Unix milliseconds. */
export interface GatewayToken {
  token: string;
  expiresAt: number;
}

// The gateway answers JSON when the request does not look like a page
// navigation or a form post (those get redirects).
const JSON_REQUEST: RequestInit = {
  credentials: "same-origin",
  cache: "no-store",
  headers: { accept: "application/json" },
};

async function call(path: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(path, { ...JSON_REQUEST, ...init, headers: { ...JSON_REQUEST.headers, ...init.headers } });
  } catch (e) {
    throw new GatewayError(0, "network_error", `${path} could not be reached: ${e instanceof Error ? e.message : String(e)}`);
  }
}

// errorOf reads the gateway's {"error", "message"} body, or says what came.
async function errorOf(path: string, res: Response): Promise<GatewayError> {
  let text = "";
  try {
    text = await res.text();
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === "string") {
      return new GatewayError(res.status, body.error, typeof body.message === "string" ? body.message : body.error);
    }
  } catch {
    // not the gateway's JSON: described below
  }
  return new GatewayError(
    res.status,
    "unexpected_answer",
    `${path} answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}; is the page served through the gateway?`,
  );
}

async function jsonOf<T>(path: string, res: Response): Promise<T> {
  try {
    return (await res.json()) as T;
  } catch {
    throw new GatewayError(res.status, "unexpected_answer", `${path} answered ${res.status} without JSON; is the page served through the gateway?`);
  }
}

/**
 * Who is signed in: `GET /auth/session`. Null when nobody is (401); throws
 * a {@link GatewayError} for any other failure.
 */
export async function fetchSession(): Promise<GatewaySession | null> {
  const res = await call(SESSION_PATH);
  if (res.status === 401) return null;
  if (!res.ok) throw await errorOf(SESSION_PATH, res);
  return jsonOf<GatewaySession>(SESSION_PATH, res);
}

/**
 * A freshly minted Convex token for the session: `GET /auth/token`. Null
 * when nobody is signed in (401); throws a {@link GatewayError} for any
 * other failure.
 */
export async function fetchToken(): Promise<GatewayToken | null> {
  const res = await call(TOKEN_PATH);
  if (res.status === 401) return null;
  if (!res.ok) throw await errorOf(TOKEN_PATH, res);
  const body = await jsonOf<GatewayToken>(TOKEN_PATH, res);
  if (typeof body.token !== "string") {
    throw new GatewayError(res.status, "unexpected_answer", `${TOKEN_PATH} answered without a token`);
  }
  return body;
}

/** Ends the session (with `all`, every session of its user): `POST /auth/signout`. */
export async function postSignOut(all: boolean): Promise<void> {
  const res = await call(SIGN_OUT_PATH, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: all ? "all=1" : "",
    // A gateway answers a fetch with 204; never follow a redirect to a page.
    redirect: "manual",
  });
  if (!res.ok) throw await errorOf(SIGN_OUT_PATH, res);
}

/**
 * The URL of the gateway's sign-in: its page (`/auth/signin`), or with a
 * provider the start of that provider's sign-in (`/auth/signin/<provider>`,
 * for OAuth and OIDC providers). `redirectTo` is where the browser lands
 * after signing in: a path on this site (the default: the current page), or
 * a URL on an origin the gateway allows.
 */
export function signInUrl(provider?: string, redirectTo?: string): string {
  const path = provider ? `${SIGN_IN_PATH}/${encodeURIComponent(provider)}` : SIGN_IN_PATH;
  const target = redirectTo ?? currentPath();
  return target ? `${path}?redirectTo=${encodeURIComponent(target)}` : path;
}

function currentPath(): string | undefined {
  if (typeof location === "undefined") return undefined;
  return location.pathname + location.search + location.hash;
}

/** Sends the browser to the gateway's sign-in (see {@link signInUrl}). */
export function signIn(provider?: string, redirectTo?: string): void {
  window.location.assign(signInUrl(provider, redirectTo));
}
