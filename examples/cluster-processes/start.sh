#!/bin/sh
# Three stratacache processes, one per config file, in front of the upstream the files name
# (http://127.0.0.1:8080). Each lists the others as peers; they share the secret below.
# Each file sets "key": { "host": "www.example.com" }: pages are keyed by Host, and a node reached
# on its own port (127.0.0.1:3101, :3102, :3103) sees its own Host, so without it no node finds
# the others' pages. Put your site's public name there (docs/cluster.md: What Host does to keys).
# Then: curl -i http://127.0.0.1:3101/ (MISS), curl -i http://127.0.0.1:3102/ (PEER), and
# stratacache flush / --url http://127.0.0.1:3101 invalidates / on all three (the admin routes are
# on the site port only with adminOnMain / --admin-on-main; otherwise point --url at --admin).
# From an install: sh start.sh. From a clone: STRATACACHE="npx tsx src/cli.ts" sh examples/cluster-processes/start.sh
# Stop them with Ctrl-C (each one drains its in-flight requests, then exits).
set -e
dir=$(dirname "$0")
export STRATACACHE_PEER_SECRET="${STRATACACHE_PEER_SECRET:-change-me-to-a-long-random-secret}"
bin="${STRATACACHE:-npx stratacache}"
trap 'kill $pids 2>/dev/null' INT TERM
pids=""
for n in 1 2 3; do
  $bin serve --config "$dir/node$n.json" &
  pids="$pids $!"
done
wait
