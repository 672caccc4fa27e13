// A route handler: the cache stores what its own Cache-Control allows.
let calls = 0;
export async function GET() {
  calls++;
  return Response.json({ calls }, { headers: { 'cache-control': 'public, max-age=60' } });
}
export const dynamic = 'force-dynamic';
