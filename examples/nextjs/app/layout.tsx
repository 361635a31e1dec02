import { connection } from "next/server";
import type { ReactNode } from "react";
import { ConvexClientProvider } from "./ConvexClientProvider";

export const metadata = { title: "Next.js behind convex_auth" };

export default async function RootLayout({ children }: { children: ReactNode }) {
  // The deployment's URL is read when a request comes, not inlined by
  // next build, so one build runs against any deployment.
  await connection();
  const convexUrl = process.env.NEXT_PUBLIC_CONVEX_URL;
  if (!convexUrl) throw new Error("NEXT_PUBLIC_CONVEX_URL is not set: set it to your deployment's URL (https://<deployment>.convex.cloud)");
  return (
    <html lang="en">
      <body>
        <ConvexClientProvider convexUrl={convexUrl}>{children}</ConvexClientProvider>
      </body>
    </html>
  );
}
