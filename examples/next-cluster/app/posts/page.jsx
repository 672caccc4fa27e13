import { cacheLife, cacheTag } from 'next/cache';

// A 'use cache: remote' result tagged `posts`: its tag becomes the page's tag too.
async function latest() {
  'use cache: remote';
  cacheTag('posts');
  cacheLife({ stale: 60, revalidate: 3600, expire: 86400 });
  globalThis.__renders = (globalThis.__renders ?? 0) + 1;
  return `${process.env.NODE_NAME ?? 'build'} ${globalThis.__renders}`;
}

export default async function Posts() {
  return <h1>posts {await latest()}</h1>;
}
