import { LiveIdentity } from "@/lib/LiveIdentity";

// The open home page; signed-out visitors of /loggedin are sent here.
export default function Home() {
  return (
    <main>
      <h1>Next.js behind convex_auth</h1>
      <form method="post" action="/demo/signin/ada">
        <button type="submit">Sign in as Ada</button> (demo, no password)
      </form>
      <p>
        Then visit <a href="/loggedin">/loggedin</a> (on the Better Auth and Convex Auth sites of the Caddyfile:{" "}
        <a href="/loggedin/better-auth">/loggedin/better-auth</a>,{" "}
        <a href="/loggedin/convex-auth">/loggedin/convex-auth</a>).
      </p>
      <form method="post" action="/auth/signout">
        <button type="submit">Sign out</button>
      </form>
      <LiveIdentity />
    </main>
  );
}
