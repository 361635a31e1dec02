// STAND-IN FOR A CONVEX DEPLOYMENT THAT RUNS THIS EXAMPLE'S FUNCTIONS:
// the real convex/*.ts, under convex-test in this process (loaded through
// Vite, as vitest loads them), behind Convex's HTTP API in the form the
// gateway's claims query uses (docs/authorization.md):
//
//   POST /api/query | /api/mutation | /api/action
//   body {"path":"auth:claims","args":{…},"format":"json"}
//   Authorization: Bearer <token>   checked as Convex checks an OIDC
//                                   provider's token (oidc.mjs); public
//                                   functions only, as that user
//   Authorization: Convex <key>     the deployment's admin key: any
//                                   function, internal ones too, with no
//                                   user (as `npx convex run`)
//   answer 200 {"status":"success","value":…,"logLines":[]}
//   or 200 {"status":"error","errorMessage":…,"logLines":[]} (the function
//   threw; current backends answer 200, older ones 560)
//   401 {"code","message"} for a token Convex refuses, 404 for no such
//   public function, 400 for a body of another form.
//
// Scheduled functions run as convex-test runs them (a setTimeout), so a
// mutation that schedules auth:refreshClaims makes that action's real
// fetch to the gateway. Environment variables the functions read come
// from this process's environment.
//
// GET /_standin/calls lists the calls so far ({fn, kind, refused?,
// threw?}), for tests that count them.
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createServer as createVite } from "vite";
import { identityOf } from "./oidc.mjs";

const exampleDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const KINDS = { "/api/query": "query", "/api/mutation": "mutation", "/api/action": "action" };

/**
 * createFunctionsRunner loads the example's functions and answers the
 * HTTP API's calls in process: call(req, kind, bodyText) returns the
 * answer ({status, body}); run(kind, path, args) runs a function with the
 * admin key's rights. calls lists what was called.
 * @param {{ providers: () => {domain: string, applicationID: string}[],
 *           getJSON?: (url: string) => Promise<any>, adminKey: string }} opts
 */
export async function createFunctionsRunner({ providers, getJSON = fetchJSON, adminKey }) {
  const vite = await createVite({
    root: exampleDir,
    configFile: false,
    logLevel: "error",
    appType: "custom",
    server: { middlewareMode: true, hmr: false, watch: null },
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  const { convexTest } = await vite.ssrLoadModule("convex-test");
  const { modules } = await vite.ssrLoadModule("/convex/test.setup.ts");
  const schema = (await vite.ssrLoadModule("/convex/schema.ts")).default;
  const { makeFunctionReference } = await import("convex/server");
  const t = convexTest(schema, modules);
  const calls = [];

  // registered returns the function registered at path ("module:export"),
  // or undefined.
  async function registered(fnPath) {
    const [file, name = "default"] = fnPath.split(":");
    const load = modules[`./${file}.ts`];
    if (!load || file.startsWith("_generated")) return undefined;
    return (await load())[name];
  }

  async function call(req, kind, body) {
    let parsed;
    try {
      parsed = JSON.parse(body);
    } catch {
      return reply(400, { code: "BadJsonBody", message: "the body is not JSON" });
    }
    const { path: fnPath, args, format, ...rest } = parsed ?? {};
    if (typeof fnPath !== "string" || format !== "json" || args === null || typeof args !== "object" || Array.isArray(args) || Object.keys(rest).length) {
      return reply(400, { code: "BadJsonBody", message: `unexpected body ${body}` });
    }
    const record = { fn: fnPath, kind };
    calls.push(record);
    const fn = await registered(fnPath);
    const authorization = req.headers.authorization ?? "";
    const admin = authorization === `Convex ${adminKey}`;
    const isKind = fn && (kind === "query" ? fn.isQuery : kind === "mutation" ? fn.isMutation : fn.isAction);
    if (!isKind || (!admin && !fn.isPublic)) {
      return reply(404, { code: "NotFound", message: `Could not find public function for '${fnPath}'` });
    }
    let runner = t;
    if (!admin) {
      let identity;
      try {
        identity = await identityOf(authorization, providers(), getJSON);
      } catch (e) {
        if (!e.convexCode) throw e;
        record.refused = e.convexCode;
        return reply(401, { code: e.convexCode, message: e.message });
      }
      record.subject = identity?.subject ?? null;
      if (identity) runner = t.withIdentity(identity);
    }
    try {
      const value = await runner[kind](makeFunctionReference(fnPath), args);
      return reply(200, { status: "success", value: value ?? null, logLines: [] });
    } catch (e) {
      record.threw = e.message;
      return reply(200, { status: "error", errorMessage: `[Request ID: standin${calls.length}] Server Error\nUncaught Error: ${e.message}`, logLines: [] });
    }
  }

  return {
    call,
    calls,
    run: (kind, fnPath, args) => t[kind](makeFunctionReference(fnPath), args),
    close: () => vite.close(),
  };
}

/**
 * startFunctionsStandIn serves the runner on a free loopback port.
 * @param {Parameters<typeof createFunctionsRunner>[0]} opts
 */
export async function startFunctionsStandIn(opts) {
  const runner = await createFunctionsRunner(opts);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      let answer;
      try {
        const kind = KINDS[req.url];
        if (req.method === "POST" && kind) {
          answer = await runner.call(req, kind, Buffer.concat(chunks).toString("utf8"));
        } else if (req.method === "GET" && req.url === "/_standin/calls") {
          answer = reply(200, runner.calls);
        } else {
          answer = reply(404, { code: "NotFound", message: "No matching routes found" });
        }
      } catch (e) {
        answer = reply(500, { code: "StandInError", message: e.stack });
      }
      res.writeHead(answer.status, { "content-type": "application/json" });
      res.end(answer.body);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls: runner.calls,
    run: runner.run,
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      await runner.close();
    },
  };
}

function reply(status, value) {
  return { status, body: JSON.stringify(value) };
}

async function fetchJSON(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return res.json();
}

// Run as a program: node standin/functions.mjs. The providers come from
// STANDIN_PROVIDERS (JSON), the admin key from STANDIN_ADMIN_KEY; it
// prints {"url":…} on one line once it listens, and stops on SIGTERM or
// when stdin closes.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const providers = JSON.parse(process.env.STANDIN_PROVIDERS ?? "[]");
  const adminKey = process.env.STANDIN_ADMIN_KEY;
  if (!adminKey) {
    console.error("STANDIN_ADMIN_KEY must be set");
    process.exit(2);
  }
  const standIn = await startFunctionsStandIn({ providers: () => providers, adminKey });
  console.log(JSON.stringify({ url: standIn.url }));
  const stop = async () => {
    await standIn.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.stdin.on("end", stop);
  process.stdin.resume();
}
