// Incremental static regeneration: Next sends s-maxage=60 with a stale-while-revalidate window.
export const revalidate = 60;

export default function Isr() {
  return <h1>isr page</h1>;
}
