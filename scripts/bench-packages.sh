#!/usr/bin/env bash
# bench-packages.sh — package sizes next to bsdiff and zstd --patch-from,
# all measured in one run, as a Markdown table (BENCHMARKS.md):
#   - every hot-patchable fixture (x64): the whole package, its hot-patch
#     part (manifest, code, data, unwind) and its forward file delta;
#   - the real pairs of ../shared/corpus (none is hot-patchable, so only the
#     forward file delta, made by scripts/deltasize, the same code as build).
# Needs: bsdiff, zstd, jq (apt-get install bsdiff zstd jq), the corpus for the
# real pairs (make corpus). Usage: scripts/bench-packages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${CORPUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hpbuild-corpus}
for tool in bsdiff zstd jq; do
	command -v "$tool" >/dev/null || { echo "bench-packages: $tool not installed" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/hpbuild" ./cmd/hpbuild
go build -o "$tmp/deltasize" ./scripts/deltasize
"$tmp/hpbuild" keygen -o "$tmp/k" >/dev/null

size() { stat -c %s "$1"; }
baselines() { # old new -> "bsdiff zstd"
	bsdiff "$1" "$2" "$tmp/p.bsdiff"
	zstd -q -19 --long=27 --patch-from="$1" "$2" -o "$tmp/p.zst" -f 2>/dev/null
	echo "$(size "$tmp/p.bsdiff") $(size "$tmp/p.zst")"
}

echo "| pair | old+new | package | hot-patch part | forward delta | bsdiff | zstd -19 --patch-from | delta / zstd |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for dir in testdata/*/x64; do
	c=$(basename "$(dirname "$dir")")
	old=$dir/old.dll new=$dir/new.dll
	"$tmp/hpbuild" build --key "$tmp/k.key" -o "$tmp/p.hpkg" "$old" "$new" >/dev/null 2>&1 || continue
	read -r pkg hot fwd < <("$tmp/hpbuild" inspect --format json "$tmp/p.hpkg" | jq -r '.sizes | "\(.package) \(.hotpatch) \(.forward)"')
	read -r bs zs < <(baselines "$old" "$new")
	awk -v c="$c" -v s=$(( $(size "$old") + $(size "$new") )) -v p="$pkg" -v h="$hot" -v f="$fwd" -v b="$bs" -v z="$zs" \
		'BEGIN { printf "| %s (x64 fixture) | %d B | %d B | %d B | %d B | %d B | %d B | %.2fx |\n", c, s, p, h, f, b, z, f / z }'
done
for p in esbuild-x64 rollup-x64-gnu utf8validate-x86 bufferutil-x64 biome-x64; do
	old=$(ls "$corpus/$p"/old.* 2>/dev/null | head -n1) || true
	new=$(ls "$corpus/$p"/new.* 2>/dev/null | head -n1) || true
	[ -n "$old" ] && [ -n "$new" ] || { echo "bench-packages: pair $p not fetched (make corpus)" >&2; continue; }
	read -r fwd _ < <("$tmp/deltasize" "$old" "$new")
	read -r bs zs < <(baselines "$old" "$new")
	awk -v c="$p" -v s=$(( $(size "$old") + $(size "$new") )) -v f="$fwd" -v b="$bs" -v z="$zs" \
		'BEGIN { printf "| %s | %.1f MB | — | — | %d B | %d B | %d B | %.2fx |\n", c, s / 1e6, f, b, z, f / z }'
done
