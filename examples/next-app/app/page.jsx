// A static page: prerendered at build time, served by Next with Cache-Control: s-maxage=31536000.
export default function Home() {
  return <h1>static home</h1>;
}
