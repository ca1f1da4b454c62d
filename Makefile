# hpbuild — developer entry points. `make test` is the one test command
# (README, CI); everything here works without a C compiler or network except
# `testdata` (mingw-w64) and `corpus` (npm registry).

GO       ?= go
FUZZTIME ?= 5s
# Where `make corpus` puts the real-world PE pairs and `make corpus-test` reads
# them (the same default as fetch.sh).
CORPUS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hpbuild-corpus

.PHONY: all build test fuzz bench testdata lint corpus corpus-test clean bench-go bench-corpus bench-packages bench-bundle

all: build

build:
	$(GO) build ./...
	$(GO) build -o bin/hpbuild ./cmd/hpbuild

test:
	$(GO) vet ./...
	$(GO) test ./...

# Every Fuzz target of every package, FUZZTIME each (go test -fuzz takes one
# target in one package at a time).
fuzz:
	@set -e; \
	list=$$($(GO) test -list '^Fuzz' ./...); \
	targets=$$(printf '%s\n' "$$list" | awk '/^Fuzz/ { t[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2 ":" t[i] } { n = 0 }'); \
	if [ -z "$$targets" ]; then echo "no fuzz targets"; exit 0; fi; \
	for t in $$targets; do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "== fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZTIME) $$pkg; \
	done

bench: bench-go bench-corpus bench-packages bench-bundle

bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

testdata:
	$(MAKE) -C testdata

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=windows GOARCH=386 $(GO) vet ./...

corpus:
	CORPUS_CACHE=$(CORPUS_CACHE) ../shared/corpus/fetch.sh

corpus-test:
	HPBUILD_CORPUS=$(CORPUS_CACHE) $(GO) test ./... -run Corpus

clean:
	rm -rf bin

# Whole-command timings on the real pairs (needs make corpus, bsdiff, GNU time).
bench-corpus:
	scripts/bench-corpus.sh

bench-packages:
	scripts/bench-packages.sh

# hpbuild bundle over all the real pairs as one tree (needs make corpus, GNU time).
bench-bundle:
	scripts/bench-bundle.sh
