//go:build !windows

package apply

// OpenProcess is available on Windows only.
func OpenProcess(pid int) (Process, error) { return nil, ErrNeedsWindows }

// Close releases a process opened with OpenProcess.
func Close(Process) {}
