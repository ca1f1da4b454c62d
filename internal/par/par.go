// Package par runs independent pieces of work on all cores.
package par

import (
	"runtime"
	"sync"
)

// ForEach calls fn(i) for every i in [0, n), spread over GOMAXPROCS
// goroutines in chunks of the given size; it runs inline when n is below
// minParallel or only one core is available. fn must write its results to
// slots indexed by i, so that the outcome does not depend on scheduling.
func ForEach(n, chunk, minParallel int, fn func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < minParallel || workers == 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next += chunk
				mu.Unlock()
				if i >= n {
					return
				}
				for j := i; j < i+chunk && j < n; j++ {
					fn(j)
				}
			}
		}()
	}
	wg.Wait()
}
