// Verifies Standard Webhooks requests with the npm standardwebhooks package
// (written by others than the gateway's author), the way a Convex HTTP
// action would. Reads {"secret", "requests": [{"headers", "body"}]} on
// stdin; prints {"verified": n, "failures": [...], "tamperedRejected": n}.
// A tampered copy of each request (body changed) must be rejected.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, requests } = JSON.parse(input);
const wh = new Webhook(secret);
const out = { verified: 0, failures: [], tamperedRejected: 0, types: [] };
for (const r of requests) {
  try {
    const payload = wh.verify(r.body, r.headers);
    out.verified++;
    out.types.push(payload.type);
  } catch (e) {
    out.failures.push(`${r.headers["webhook-id"]}: ${e.message}`);
  }
  try {
    wh.verify(r.body + " ", r.headers);
  } catch {
    out.tamperedRejected++;
  }
}
console.log(JSON.stringify(out));
