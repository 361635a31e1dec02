// The open home page; signed-out visitors of /loggedin are sent here.
export default function Home() {
  return (
    <main>
      <h1>Next.js behind convex_auth</h1>
      <p>
        <a href="/demo/signin/ada">Sign in as Ada</a> (demo, no password), then visit{" "}
        <a href="/loggedin">/loggedin</a>.
      </p>
      <form method="post" action="/auth/signout">
        <button type="submit">Sign out</button>
      </form>
    </main>
  );
}
