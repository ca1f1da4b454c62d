package membudget

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestSetAndRelease(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	b := Set(100 << 20)
	if got, want := debug.SetMemoryLimit(-1), int64(100<<20*PerInputByte); got != want || b.Limit() != want {
		t.Errorf("limit for 100 MiB of input = %d (budget says %d), want %d", got, b.Limit(), want)
	}
	b.Release()
	b.Release() // twice is harmless
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("after Release the limit is %d, want the %d from before", got, before)
	}
	if b.Limit() != 0 {
		t.Errorf("released budget reports limit %d", b.Limit())
	}
}

func TestSmallInputsGetMin(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	b := Set(1 << 10)
	defer b.Release()
	if b.Limit() != Min {
		t.Errorf("limit for 1 KiB of input = %d, want Min %d", b.Limit(), Min)
	}
}

// TestEnvironmentWins: a GOMEMLIMIT the user set stands.
func TestEnvironmentWins(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	before := debug.SetMemoryLimit(-1)
	b := Set(100 << 20)
	defer b.Release()
	if got := debug.SetMemoryLimit(-1); got != before || b.Limit() != 0 {
		t.Errorf("with GOMEMLIMIT set, the limit became %d (budget %d), want it left at %d", got, b.Limit(), before)
	}
}

var keep [][]byte

// TestRaisedForALiveHeapThatNeedsMore: when more is live than the budget
// leaves room for, the limit follows the live heap instead of making the
// collector run without end.
func TestRaisedForALiveHeapThatNeedsMore(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	b := Set(1 << 10) // Min: 64 MiB
	defer b.Release()
	for range 96 {
		keep = append(keep, make([]byte, 1<<20))
	}
	defer func() { keep = nil }()
	for i := 0; i < 50 && b.Raised() == 0; i++ {
		runtime.GC() // the check runs in a finalizer after a collection
		runtime.Gosched()
	}
	if b.Raised() == 0 {
		t.Fatalf("96 MiB live under a %d-byte budget: never raised", b.Limit())
	}
	live := liveHeap()
	if got, want := b.Limit(), live+int64(float64(live)*MinHeadroom); got < want {
		t.Errorf("limit %d leaves less than %v of the live %d bytes as room", got, MinHeadroom, live)
	}
	if got := debug.SetMemoryLimit(-1); got != b.Limit() {
		t.Errorf("runtime limit %d, budget says %d", got, b.Limit())
	}
}

// TestOneAtATime: a second budget while one is in force changes nothing,
// and releasing it leaves the first in force.
func TestOneAtATime(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	first := Set(100 << 20)
	defer first.Release()
	second := Set(400 << 20)
	if second.Limit() != 0 {
		t.Errorf("second budget installed with limit %d", second.Limit())
	}
	second.Release()
	if got := debug.SetMemoryLimit(-1); got != first.Limit() {
		t.Errorf("after the second budget's Release the limit is %d, want the first's %d", got, first.Limit())
	}
}
