// Package membudget bounds a command's Go heap by the size of its inputs.
//
// The Go collector lets the heap grow to twice what was live at the last
// collection before it collects again (GOGC=100). For hpbuild's biggest
// inputs that doubling is most of the peak: comparing two 33 MB images
// keeps about 130 MB live at the end, and the heap then grows to 260 MB
// before the next collection would run. A soft memory limit proportional
// to the inputs makes the collector run earlier near the end instead, at
// the cost of a few more collections.
//
// The limit is soft in the runtime's sense, and the budget keeps it so:
// after every collection it checks the live heap, and when the limit
// leaves less than a quarter of it as room to grow (MinHeadroom), it
// raises the limit to that. An input that needs more than the budget costs
// memory and some collections (at worst as many as GOGC=25 would run),
// never a collector that runs without end.
package membudget

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// PerInputByte is the Go memory (heap, stacks, runtime) the budget allows
// for each byte of input. Where pe maps the inputs (Unix) they are not in
// it; where it reads them into the heap (Windows) they are, which leaves
// less room, and the limit is raised sooner (see afterGC).
const PerInputByte = 2.7

// MinHeadroom is the least room to grow the budget leaves above the live
// heap, as a fraction of it, plus Slack for the runtime's own memory.
const (
	MinHeadroom = 0.25
	Slack       = 8 << 20
)

// Min is the smallest budget: small inputs never make the collector work
// harder than it would by default.
const Min = 64 << 20

// Budget is an installed memory budget; Release restores what was there
// before.
type Budget struct {
	mu       sync.Mutex
	prev     int64
	limit    int64
	released bool
	raised   int
}

// active is the budget in force, if any: budgets do not nest.
var (
	activeMu sync.Mutex
	active   *Budget
)

// Set installs a budget for inputs of inputBytes bytes, unless GOMEMLIMIT
// is set in the environment (the user's choice stands; "off" included) or
// another budget is in force (the limit is one per process: the first
// stays). The returned budget's Release must be called when the work is
// done.
func Set(inputBytes int64) *Budget {
	b := &Budget{prev: -1}
	activeMu.Lock()
	defer activeMu.Unlock()
	if os.Getenv("GOMEMLIMIT") != "" || inputBytes <= 0 || active != nil {
		b.released = true
		return b
	}
	active = b
	limit := max(int64(Min), int64(math.Min(float64(inputBytes)*PerInputByte, math.MaxInt64/2)))
	b.limit = limit
	b.prev = debug.SetMemoryLimit(limit)
	b.arm()
	return b
}

// Limit returns the limit in force (0 when the budget is not installed).
func (b *Budget) Limit() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return 0
	}
	return b.limit
}

// Raised returns how many times the budget was raised for a live heap that
// needed more.
func (b *Budget) Raised() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.raised
}

// Release restores the memory limit in force before Set.
func (b *Budget) Release() {
	activeMu.Lock()
	defer activeMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return
	}
	b.released = true
	debug.SetMemoryLimit(b.prev)
	if active == b {
		active = nil
	}
}

// sentinel is garbage as soon as it is made; its finalizer runs after the
// next collection and arms a new one. (It holds a pointer, so it is never
// one of the runtime's tiny allocations, which are finalized late.)
type sentinel struct{ b *Budget }

func (b *Budget) arm() {
	runtime.SetFinalizer(&sentinel{b: b}, func(s *sentinel) { s.b.afterGC() })
}

// afterGC raises the limit when it leaves the live heap less than
// MinHeadroom to grow.
func (b *Budget) afterGC() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return
	}
	live := liveHeap()
	if need := live + int64(float64(live)*MinHeadroom) + Slack; live > 0 && need > b.limit {
		b.limit = need
		b.raised++
		debug.SetMemoryLimit(b.limit)
	}
	b.arm()
}

// liveHeap returns the heap the last collection found live, in bytes.
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}
