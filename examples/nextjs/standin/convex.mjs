// STAND-IN FOR A CONVEX DEPLOYMENT, for the example's test, which has none.
// It speaks the HTTP API that ConvexHttpClient (convex/nextjs's fetchQuery)
// uses and the WebSocket sync protocol that ConvexReactClient (useQuery in
// the browser) uses, of the convex version in WIRE_FORMAT_VERSION; checks
// bearer tokens the way Convex checks an OIDC provider's token (oidc.mjs);
// runs the two queries the pages call over both (users.me, users.failing)
// by hand, and every other function, and the gateway's calls in the JSON
// form (the claims query), with the example's real functions under
// convex-test (functions.mjs). It records every call of the client
// library's form, so the test can say which token each helper sent.
//
// HTTP (convex 1.51.0, dist/esm/browser/http_client.js, queryInner):
//   POST <url>/api/query
//   Content-Type: application/json, Convex-Client: npm-<version>,
//   Authorization: Bearer <token> when a token was given
//   body {"path":"users:me","format":"convex_encoded_json","args":[{}]}
//   answer 200 {"status":"success","value":…,"logLines":[]}
//   or 560 {"status":"error","errorMessage":…,"logLines":[]} (the function threw)
//   any other status: the client throws Error(<body text>)
// Sync (dist/esm/browser/sync/: client.js, local_state.js, protocol.js,
// remote_query_set.js, authentication_manager.js):
//   WebSocket <url>/api/<version>/sync; JSON messages.
//   client: Connect; ModifyQuerySet {baseVersion, newVersion, modifications:
//   [{type:"Add", queryId, udfPath, args:[…]} | {type:"Remove", queryId}]};
//   Authenticate {baseVersion, tokenType:"User", value} or {tokenType:"None"}.
//   server: Transition {startVersion, endVersion, modifications:
//   [{type:"QueryUpdated", queryId, value, logLines, journal} |
//   {type:"QueryFailed", queryId, errorMessage, …} | {type:"QueryRemoved"}]},
//   a version being {querySet, identity, ts: base64 of a little-endian u64},
//   each Transition starting at the client's current version; the client
//   takes an identity version that grew as the server accepting its token
//   (useConvexAuth's isAuthenticated). AuthError {error, baseVersion,
//   authUpdateAttempted: true} refuses a token. Ping keeps the socket alive.
//   Mutations and actions are not served (the example's browser code runs
//   none): the stand-in closes the socket on one.
import { randomBytes } from "node:crypto";
import http from "node:http";
import { WebSocketServer } from "ws";
import { createFunctionsRunner } from "./functions.mjs";
import { bearerOf, identityOf as verifiedIdentityOf } from "./oidc.mjs";

/** The convex package version whose wire format this file speaks. */
export const WIRE_FORMAT_VERSION = "1.51.0";

const UDF_FAILED = 560;
const SYNC_PATH = `/api/${WIRE_FORMAT_VERSION}/sync`;
const PING_INTERVAL_MS = 15_000;

/**
 * startConvexStandIn serves on a free loopback port.
 * @param {{ providers: () => {domain: string, applicationID: string}[],
 *           getJSON: (url: string) => Promise<any> }} opts
 *   providers: auth.config.ts's providers, read on each call (the test adds
 *   one per gateway it starts); getJSON: GET with the test's name
 *   resolution and CA.
 */
export async function startConvexStandIn({ providers, getJSON }) {
  const calls = [];

  // functions runs the example's real functions; run(kind, path, args)
  // runs one with the deployment admin's rights (e.g. auth:setRole).
  const functions = await createFunctionsRunner({ providers, getJSON, adminKey: randomBytes(16).toString("hex") });

  // identityOf returns what ctx.auth.getUserIdentity() returns for the
  // bearer token, or throws what Convex answers for a token it refuses.
  const identityOf = (authorization) => verifiedIdentityOf(authorization, providers(), getJSON);

  // The example's queries, as convex/users.ts defines them.
  const byHand = {
    "users:me": (identity) => identity,
    "users:failing": (identity) => {
      throw new Error(identity === null ? "not signed in" : "the report is not ready yet");
    },
  };

  async function query(req, body) {
    // The gateway's claims query (format json, no Convex-Client header)
    // goes to the real functions, unrecorded: the calls are the app's.
    if (req.headers["convex-client"] === undefined && /"format"\s*:\s*"json"/.test(body)) {
      return functions.call(req, "query", body);
    }
    const call = { method: "POST", path: "/api/query", bearer: bearerOf(req) };
    calls.push(call);
    if (req.headers["content-type"] !== "application/json") return reply(400, "Content-Type must be application/json");
    if (req.headers["convex-client"] !== `npm-${WIRE_FORMAT_VERSION}`) {
      return reply(400, `Convex-Client ${req.headers["convex-client"]} is not npm-${WIRE_FORMAT_VERSION}: update the stand-in's wire format`);
    }
    let parsed;
    try {
      parsed = JSON.parse(body);
    } catch {
      return reply(400, "the body is not JSON");
    }
    const { path, format, args, ...rest } = parsed;
    if (format !== "convex_encoded_json" || !Array.isArray(args) || args.length !== 1 || Object.keys(rest).length) {
      return reply(400, `unexpected query body ${body}`);
    }
    call.fn = path;
    const fn = byHand[path];
    if (!fn) {
      // The example's other functions, run for real (their values are
      // plain JSON, the same in both formats).
      return functions.call(req, "query", JSON.stringify({ path, args: args[0], format: "json" }));
    }
    let identity;
    try {
      identity = await identityOf(req.headers.authorization);
    } catch (e) {
      if (!e.convexCode) throw e;
      call.refused = e.convexCode;
      return reply(401, JSON.stringify({ code: e.convexCode, message: e.message }));
    }
    call.identity = identity;
    try {
      return reply(200, JSON.stringify({ status: "success", value: fn(identity), logLines: [] }));
    } catch (e) {
      // A dev deployment's message for an uncaught error.
      call.threw = e.message;
      const errorMessage = `[Request ID: standin${calls.length}] Server Error\nUncaught Error: ${e.message}`;
      return reply(UDF_FAILED, JSON.stringify({ status: "error", errorMessage, logLines: [] }));
    }
  }

  // runForSync runs one of the functions as identity (recorded as a call)
  // for a QueryUpdated or QueryFailed modification, as the sync protocol
  // carries results.
  function runForSync(queryId, udfPath, identity) {
    calls.push({ method: "WS", path: SYNC_PATH, fn: udfPath, identity });
    const fn = byHand[udfPath];
    if (!fn) return { type: "QueryFailed", queryId, errorMessage: `Could not find public function for '${udfPath}'`, logLines: [], journal: null };
    try {
      return { type: "QueryUpdated", queryId, value: fn(identity), logLines: [], journal: null };
    } catch (e) {
      return { type: "QueryFailed", queryId, errorMessage: `Uncaught Error: ${e.message}`, logLines: [], journal: null };
    }
  }

  // One WebSocket client's sync session: its query set, its identity and
  // the versions both sides count. Messages are handled one at a time, in
  // order, since checking a token waits on the issuer's JWKS.
  function syncSession(ws) {
    const queries = new Map(); // queryId -> udfPath
    let querySet = 0;
    let identityVersion = 0;
    let ts = 0n;
    let identity = null;
    const version = () => ({ querySet, identity: identityVersion, ts: encodeTs(ts) });
    const send = (m) => ws.send(JSON.stringify(m));
    const transition = (start, modifications) => {
      ts += 1n;
      send({ type: "Transition", startVersion: start, endVersion: version(), modifications });
    };

    const handle = async (msg) => {
      switch (msg.type) {
        case "Connect":
        case "Event":
          return;
        case "ModifyQuerySet": {
          if (msg.baseVersion !== querySet) throw new Error(`ModifyQuerySet from version ${msg.baseVersion}, the query set is at ${querySet}`);
          const start = version();
          const modifications = [];
          for (const mod of msg.modifications) {
            if (mod.type === "Add") {
              if (mod.args.length !== 1) throw new Error(`query ${mod.udfPath} with ${mod.args.length} arguments`);
              queries.set(mod.queryId, mod.udfPath);
              modifications.push(runForSync(mod.queryId, mod.udfPath, identity));
            } else if (mod.type === "Remove") {
              queries.delete(mod.queryId);
              modifications.push({ type: "QueryRemoved", queryId: mod.queryId });
            } else {
              throw new Error(`unexpected query set modification ${mod.type}`);
            }
          }
          querySet = msg.newVersion;
          return transition(start, modifications);
        }
        case "Authenticate": {
          if (msg.baseVersion !== identityVersion) throw new Error(`Authenticate from version ${msg.baseVersion}, the identity is at ${identityVersion}`);
          const call = { method: "WS", path: SYNC_PATH, authenticate: msg.tokenType, bearer: msg.tokenType === "User" ? msg.value : null };
          calls.push(call);
          let next = null;
          if (msg.tokenType === "User") {
            try {
              next = await identityOf(`Bearer ${msg.value}`);
            } catch (e) {
              if (!e.convexCode) throw e;
              call.refused = e.convexCode;
              return send({ type: "AuthError", error: e.message, baseVersion: msg.baseVersion, authUpdateAttempted: true });
            }
          } else if (msg.tokenType !== "None") {
            throw new Error(`unexpected token type ${msg.tokenType}`);
          }
          call.identity = next;
          const start = version();
          identity = next;
          identityVersion = msg.baseVersion + 1;
          // Every query runs again as the new identity.
          return transition(start, [...queries].map(([queryId, udfPath]) => runForSync(queryId, udfPath, identity)));
        }
        default:
          throw new Error(`the stand-in does not serve ${msg.type}`);
      }
    };

    let queue = Promise.resolve();
    ws.on("message", (data) => {
      queue = queue
        .then(() => handle(JSON.parse(String(data))))
        .catch((e) => {
          calls.push({ method: "WS", path: SYNC_PATH, error: e.message });
          ws.close(1011, `stand-in error: ${e.message}`.slice(0, 120));
        });
    });
    const ping = setInterval(() => send({ type: "Ping" }), PING_INTERVAL_MS);
    ws.on("close", () => clearInterval(ping));
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      let answer;
      try {
        if (req.method === "POST" && req.url === "/api/query") {
          answer = await query(req, Buffer.concat(chunks).toString("utf8"));
        } else {
          // Everything else, e.g. a helper's GET /api/auth/convex/token: a
          // deployment without such an HTTP route answers 404.
          calls.push({ method: req.method, path: req.url, bearer: bearerOf(req), cookieNames: cookieNames(req) });
          answer = reply(404, "No matching routes found");
        }
      } catch (e) {
        answer = reply(500, `stand-in error: ${e.stack}`);
      }
      res.writeHead(answer.status, { "content-type": answer.body.startsWith("{") ? "application/json" : "text/plain" });
      res.end(answer.body);
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  wss.on("connection", syncSession);
  server.on("upgrade", (req, socket, head) => {
    if (req.url !== SYNC_PATH) {
      calls.push({ method: "WS", path: req.url, refused: "unknown path" });
      socket.end("HTTP/1.1 404 Not Found\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
  });

  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls,
    functions,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await new Promise((resolve) => server.close(resolve));
      await functions.close();
    },
  };
}

// A sync protocol timestamp: a u64, little-endian, in base64.
function encodeTs(ts) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(ts);
  return b.toString("base64");
}

function reply(status, body) {
  return { status, body };
}

function cookieNames(req) {
  return (req.headers.cookie ?? "")
    .split(";")
    .map((p) => p.split("=", 1)[0].trim())
    .filter(Boolean);
}
