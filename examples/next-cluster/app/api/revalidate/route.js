import { revalidatePath, revalidateTag } from 'next/cache';

// POST /api/revalidate?tag=posts[&hard=1] or ?path=/posts: what an editor's webhook calls.
export async function POST(request) {
  const params = new URL(request.url).searchParams;
  const tag = params.get('tag');
  const path = params.get('path');
  // A profile is soft (stale while Next renders again); `expire: 0` removes at once.
  if (tag) revalidateTag(tag, params.get('hard') ? { expire: 0 } : 'max');
  if (path) revalidatePath(path);
  return Response.json({ revalidated: tag ?? path });
}
