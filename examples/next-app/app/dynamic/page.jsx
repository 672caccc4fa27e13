import { connection } from 'next/server';

// Rendered per request: Next sends Cache-Control: private, no-cache, no-store.
export default async function Dynamic() {
  await connection();
  return <h1>dynamic {globalThis.__renders = (globalThis.__renders ?? 0) + 1}</h1>;
}
