// Runs the built Caddy (CONVEX_AUTH_CADDY_BIN) for the conformance tests:
// a gateway in front of a Caddy-served app that signs a fixed user in with
// the Convex-Auth-Sign-In response header, everything on free loopback ports
// with its own storage and home directory.
import { spawn, execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

export const SIGNED_IN_USER = {
  sub: "user_conformance",
  email: "ada@example.com",
  email_verified: true,
  name: "Ada Lovelace",
};

// Bounds only: a starved machine starts Caddy slowly.
const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 10_000;

// caddyBin is the binary under test; a run without it skips locally and
// fails in CI, as the Go e2e tests do.
export function caddyBin(t) {
  const bin = process.env.CONVEX_AUTH_CADDY_BIN;
  if (!bin) {
    if (process.env.CI) {
      throw new Error("CONVEX_AUTH_CADDY_BIN is not set; CI must run these tests: run make test");
    }
    t.skip("CONVEX_AUTH_CADDY_BIN is not set: run make test (or make caddy and set it)");
    return undefined;
  }
  return bin;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A private HOME/XDG for one gateway, so nothing of the machine's is touched
// and `convex-config` run with the same env sees the same storage.
async function isolatedEnv(dir) {
  return {
    ...process.env,
    HOME: dir,
    XDG_DATA_HOME: path.join(dir, "data"),
    XDG_CONFIG_HOME: path.join(dir, "config"),
  };
}

// startGateway writes a Caddyfile and runs it. options.issuerPath is appended
// to the origin to make the issuer; options.extra goes inside convex_auth.
export async function startGateway(t, bin, options = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "convex-auth-conformance-"));
  const [gatewayPort, appPort] = [await freePort(), await freePort()];
  const origin = `http://127.0.0.1:${gatewayPort}`;
  const issuer = origin + (options.issuerPath ?? "");
  const caddyfile = `{
	admin off
	storage file_system ${path.join(dir, "storage")}
}

${origin} {
	convex_auth {
		issuer ${issuer}
		application_id ${options.applicationID ?? "convex"}
		protect /loggedin*
		trust_upstream_sign_in
		${options.extra ?? ""}
	}
	reverse_proxy 127.0.0.1:${appPort}
}

http://127.0.0.1:${appPort} {
	bind 127.0.0.1
	route /signin {
		header Convex-Auth-Sign-In \`${JSON.stringify(SIGNED_IN_USER)}\`
		respond "signed in"
	}
	# Echoes the token the gateway injected.
	respond "{http.request.header.X-Convex-Token}"
}
`;
  const configPath = path.join(dir, "Caddyfile");
  await writeFile(configPath, caddyfile);
  const env = await isolatedEnv(dir);

  const proc = spawn(bin, ["run", "--config", configPath, "--adapter", "caddyfile"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  proc.stdout.on("data", (b) => (log += b));
  proc.stderr.on("data", (b) => (log += b));
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  let done = false;
  exited.then(() => (done = true));

  const stop = async () => {
    if (!done) {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  t.after(stop);

  const jwksURL = `${issuer.replace(/\/$/, "")}/.well-known/jwks.json`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (done) throw new Error(`caddy exited before it was ready:\n${log}`);
    try {
      const res = await fetch(jwksURL);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`caddy not ready at ${jwksURL} after ${READY_TIMEOUT_MS} ms:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    origin,
    issuer,
    configPath,
    env,
    dir,
    log: () => log,
    // convexConfig runs `caddy convex-auth convex-config` on this gateway's
    // Caddyfile with its environment, so it sees the same storage.
    async convexConfig(...flags) {
      try {
        const { stdout, stderr } = await execFileP(bin, ["convex-auth", "convex-config", "--config", configPath, ...flags], { env });
        return { ok: true, stdout, stderr };
      } catch (err) {
        return { ok: false, stdout: err.stdout ?? "", stderr: err.stderr ?? String(err) };
      }
    },
  };
}

// runCaddy runs the binary with args and returns its stdout.
export async function runCaddy(bin, args, env = process.env) {
  const { stdout } = await execFileP(bin, args, { env });
  return stdout;
}

// signIn asks the app to sign the fixed user in and returns the session
// cookie ("name=value") the gateway set.
export async function signIn(gateway) {
  const res = await fetch(`${gateway.origin}/signin`, { method: "POST", redirect: "manual" });
  if (res.status !== 200) throw new Error(`sign-in answered ${res.status}`);
  for (const line of res.headers.getSetCookie()) {
    const pair = line.split(";", 1)[0];
    if (/convex_session(_[\w-]+)?=./.test(pair)) return pair;
  }
  throw new Error(`sign-in set no session cookie: ${res.headers.getSetCookie()}`);
}

// loadAuthConfig evaluates a printed convex/auth.config.ts as Convex's
// bundler would: the type-only import and `satisfies` removed, the rest run.
export async function loadAuthConfig(ts) {
  const js = ts
    .replace(/^import type .*$/m, "")
    .replace(/\}\s*satisfies AuthConfig;/, "};");
  const mod = await import("data:text/javascript;charset=utf-8," + encodeURIComponent(js));
  return mod.default;
}
