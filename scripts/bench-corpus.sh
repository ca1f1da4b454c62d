#!/usr/bin/env bash
# bench-corpus.sh — measures `hpbuild diff` on the real pairs of
# ../shared/corpus next to its floor (one bare x86asm decode pass over both
# files' code) and bsdiff on the same pair, all in one run, and prints a
# Markdown table (ratios against the floor and bsdiff of this run).
# Needs: the corpus (make corpus), bsdiff and GNU time (apt-get install
# bsdiff time). Usage: scripts/bench-corpus.sh [pair ...]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${CORPUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hpbuild-corpus}
pairs=("$@")
[ ${#pairs[@]} -gt 0 ] || pairs=(esbuild-x64 biome-x64)
for tool in bsdiff /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench-corpus: $tool not installed" >&2; exit 1; }
done
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/hpbuild" ./cmd/hpbuild
go test -c -o "$bin/pe.test" ./pe >/dev/null

# wall seconds and peak RSS (KB) of a command, best of 3 runs
measure() {
	local best_t="" best_m=""
	for _ in 1 2 3; do
		/usr/bin/time -f "%e %M" -o "$bin/t" "$@" >/dev/null 2>&1 || true
		read -r t m <"$bin/t"
		if [ -z "$best_t" ] || awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t best_m=$m; fi
	done
	echo "$best_t $best_m"
}

echo "| pair | size (old+new) | hpbuild diff | peak RSS | decode floor | diff / floor | bsdiff | diff / bsdiff | RSS / size |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for p in "${pairs[@]}"; do
	old=$(ls "$corpus/$p"/old.* 2>/dev/null | head -n1) || true
	new=$(ls "$corpus/$p"/new.* 2>/dev/null | head -n1) || true
	[ -n "$old" ] && [ -n "$new" ] || { echo "bench-corpus: pair $p not fetched (make corpus)" >&2; continue; }
	size=$(( $(stat -c %s "$old") + $(stat -c %s "$new") ))
	read -r dt dm < <(measure "$bin/hpbuild" diff --format json "$old" "$new")
	# The floor: one decode pass over each file's code, as the pe benchmark
	# runs it (ns/op for one file, old and new added up), best of 3 like
	# the diff, so that load on the machine moves both the same way.
	floor=0
	for f in "$old" "$new"; do
		best=""
		for _ in 1 2 3; do
			ns=$(HPBUILD_FLOOR_FILE="$f" "$bin/pe.test" -test.run '^$' -test.bench '^BenchmarkDecodeFloorFile$' -test.benchtime 1x 2>/dev/null |
				awk '/^BenchmarkDecodeFloorFile/ {print $3}')
			best=$(awk -v b="$best" -v n="${ns:-0}" 'BEGIN { print (b == "" || n < b) ? n : b }')
		done
		floor=$(awk "BEGIN{print $floor + ${best:-0}/1e9}")
	done
	read -r bt _ < <(measure bsdiff "$old" "$new" "$bin/patch")
	awk -v p="$p" -v s="$size" -v dt="$dt" -v dm="$dm" -v fl="$floor" -v bt="$bt" 'BEGIN {
		printf "| %s | %.1f MB | %.2f s | %.0f MB | %.2f s | %.2fx | %.2f s | %.2fx | %.1fx |\n",
			p, s/1e6, dt, dm/1024, fl, dt/fl, bt, dt/bt, dm*1024/s }'
done
