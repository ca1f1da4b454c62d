#!/usr/bin/env bash
# bench-bundle.sh — `hpbuild bundle` over all the real pairs of
# ../shared/corpus as one release tree (each pair's old and new file under
# its pair name), with GNU time: wall time, CPU time (user+sys; CPU/wall
# near 2 means both cores busy), peak RSS, next to the sum of the
# single-pair `hpbuild diff` wall times of the same run. Prints a Markdown
# table (BENCHMARKS.md). Needs make corpus and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${CORPUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hpbuild-corpus}
[ -x /usr/bin/time ] || { echo "bench-bundle: GNU time not installed (apt-get install time)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/hpbuild" ./cmd/hpbuild
"$tmp/hpbuild" keygen -o "$tmp/k" >/dev/null
mkdir -p "$tmp/old" "$tmp/new"
pairs=0 bytes=0 diffs=0
for d in "$corpus"/*/; do
	p=$(basename "$d")
	[ "$p" = tgz ] && continue
	old=$(ls "$d"/old.* 2>/dev/null | head -n1) || true
	new=$(ls "$d"/new.* 2>/dev/null | head -n1) || true
	[ -n "$old" ] && [ -n "$new" ] || continue
	cp "$old" "$tmp/old/$p.${old##*.}"
	cp "$new" "$tmp/new/$p.${new##*.}"
	pairs=$((pairs + 1))
	bytes=$((bytes + $(stat -c %s "$old") + $(stat -c %s "$new")))
	s=$(date +%s.%N)
	"$tmp/hpbuild" diff --format json "$old" "$new" >/dev/null 2>&1 || true
	diffs=$(awk -v a="$diffs" -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { print a + e - s }')
done
[ "$pairs" -gt 0 ] || { echo "bench-bundle: no corpus pairs (make corpus)" >&2; exit 1; }
/usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$tmp/hpbuild" bundle --quiet --key "$tmp/k.key" -o "$tmp/out" "$tmp/old" "$tmp/new" >/dev/null
read -r wall user sys rss < "$tmp/time"
echo "| pairs | old+new | bundle wall | CPU (user+sys) | CPU / wall | peak RSS | RSS / size | sum of single diffs | bundle / diffs |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
awk -v n="$pairs" -v b="$bytes" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v d="$diffs" \
	'BEGIN { printf "| %d | %.1f MB | %.2f s | %.2f s | %.2f | %.0f MB | %.1fx | %.2f s | %.2fx |\n", n, b / 1e6, w, u + s, (u + s) / w, r / 1024, r * 1024 / b, d, w / d }'
