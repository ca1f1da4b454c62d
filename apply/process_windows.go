//go:build windows

package apply

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	kernel32                  = windows.NewLazySystemDLL("kernel32.dll")
	procVirtualAllocEx        = kernel32.NewProc("VirtualAllocEx")
	procVirtualFreeEx         = kernel32.NewProc("VirtualFreeEx")
	procSuspendThread         = kernel32.NewProc("SuspendThread")
	procGetThreadContext      = kernel32.NewProc("GetThreadContext")
	procFlushInstructionCache = kernel32.NewProc("FlushInstructionCache")
	procCreateRemoteThread    = kernel32.NewProc("CreateRemoteThread")
	procGetExitCodeThread     = kernel32.NewProc("GetExitCodeThread")
)

// winProcess is a process opened for patching.
type winProcess struct {
	h   windows.Handle
	pid uint32
}

// OpenProcess opens process pid for live patching. The process must be of
// this hpbuild's own width: the 64-bit hpbuild patches 64-bit processes,
// the 32-bit one (GOARCH=386) 32-bit processes.
func OpenProcess(pid int) (Process, error) {
	const access = windows.PROCESS_VM_OPERATION | windows.PROCESS_VM_READ | windows.PROCESS_VM_WRITE |
		windows.PROCESS_QUERY_INFORMATION | windows.PROCESS_CREATE_THREAD
	h, err := windows.OpenProcess(access, false, uint32(pid))
	if err != nil {
		return nil, fmt.Errorf("opening process %d: %w", pid, err)
	}
	var wow, self bool
	err1 := windows.IsWow64Process(h, &wow)
	err2 := windows.IsWow64Process(windows.CurrentProcess(), &self)
	if err := errors.Join(err1, err2); err != nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	// A 64-bit hpbuild patches native 64-bit processes (not WOW64); a
	// 32-bit one, itself under WOW64 on 64-bit Windows, patches processes
	// that are 32-bit like it.
	target32 := wow || (!is64 && !self)
	if target32 == is64 {
		windows.CloseHandle(h)
		want := "64-bit hpbuild"
		if target32 {
			want = "32-bit hpbuild (windows/386)"
		}
		return nil, fmt.Errorf("process %d is a %s process: patch it with the %s", pid, map[bool]string{true: "32-bit", false: "64-bit"}[target32], want)
	}
	return &winProcess{h: h, pid: uint32(pid)}, nil
}

// Close releases the process handle.
func Close(p Process) {
	if w, ok := p.(*winProcess); ok {
		windows.CloseHandle(w.h)
	}
}

func (p *winProcess) Is64() bool { return is64 }

func (p *winProcess) Read(addr uint64, n int) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	b := make([]byte, n)
	var got uintptr
	if err := windows.ReadProcessMemory(p.h, uintptr(addr), &b[0], uintptr(n), &got); err != nil || int(got) != n {
		return nil, fmt.Errorf("reading %d bytes at %#x: %v", n, addr, err)
	}
	return b, nil
}

func (p *winProcess) Write(addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	// Code pages are read-only: open them for the write, then restore.
	var old uint32
	if err := windows.VirtualProtectEx(p.h, uintptr(addr), uintptr(len(b)), windows.PAGE_EXECUTE_READWRITE, &old); err != nil {
		return fmt.Errorf("unprotecting %d bytes at %#x: %w", len(b), addr, err)
	}
	var put uintptr
	err := windows.WriteProcessMemory(p.h, uintptr(addr), &b[0], uintptr(len(b)), &put)
	var tmp uint32
	perr := windows.VirtualProtectEx(p.h, uintptr(addr), uintptr(len(b)), old, &tmp)
	if err != nil || int(put) != len(b) {
		return fmt.Errorf("writing %d bytes at %#x: %v", len(b), addr, err)
	}
	if perr != nil {
		return fmt.Errorf("restoring the protection at %#x: %w", addr, perr)
	}
	return nil
}

const (
	allocGranularity = 0x10000
	twoGiB           = 0x7ff00000
	memFree          = 0x10000
	memPrivate       = 0x20000
)

func (p *winProcess) allocAt(addr uint64, size uint32, prot uint32) uint64 {
	r, _, _ := procVirtualAllocEx.Call(uintptr(p.h), uintptr(addr), uintptr(size), windows.MEM_RESERVE|windows.MEM_COMMIT, uintptr(prot))
	return uint64(r)
}

// Alloc searches the free regions within ±2 GiB of near, above it first
// (RVA-based jump tables need the area above the module).
func (p *winProcess) Alloc(near uint64, size uint32) (uint64, error) {
	lo := uint64(allocGranularity)
	if near > twoGiB+lo {
		lo = near - twoGiB
	}
	hi := min(near+twoGiB, maxAddr)
	var below []uint64
	for a := lo; a < hi; {
		var mbi windows.MemoryBasicInformation
		if err := windows.VirtualQueryEx(p.h, uintptr(a), &mbi, unsafe.Sizeof(mbi)); err != nil {
			break
		}
		start := (uint64(mbi.BaseAddress) + allocGranularity - 1) &^ (allocGranularity - 1)
		end := uint64(mbi.BaseAddress) + uint64(mbi.RegionSize)
		if mbi.State == memFree && start+uint64(size) <= end && start+uint64(size) <= hi && start >= lo {
			if start > near {
				if got := p.allocAt(start, size, windows.PAGE_READWRITE); got != 0 {
					return got, nil
				}
			} else {
				// Keep the free region closest to the module.
				below = append(below, (end-uint64(size))&^(allocGranularity-1))
			}
		}
		if end <= a {
			break
		}
		a = end
	}
	for i := len(below) - 1; i >= 0; i-- {
		if below[i] >= lo {
			if got := p.allocAt(below[i], size, windows.PAGE_READWRITE); got != 0 {
				return got, nil
			}
		}
	}
	return 0, fmt.Errorf("no free %d bytes within ±2 GiB of %#x", size, near)
}

func (p *winProcess) Protect(addr uint64, size uint32, pr Prot) error {
	prot := map[Prot]uint32{ProtRead: windows.PAGE_READONLY, ProtReadExec: windows.PAGE_EXECUTE_READ, ProtReadWrite: windows.PAGE_READWRITE}[pr]
	var old uint32
	if err := windows.VirtualProtectEx(p.h, uintptr(addr), uintptr(size), prot, &old); err != nil {
		return fmt.Errorf("protecting %d bytes at %#x: %w", size, addr, err)
	}
	return nil
}

func (p *winProcess) Free(addr uint64) error {
	r, _, err := procVirtualFreeEx.Call(uintptr(p.h), uintptr(addr), 0, windows.MEM_RELEASE)
	if r == 0 {
		return fmt.Errorf("releasing %#x: %w", addr, err)
	}
	return nil
}

func (p *winProcess) FlushCode(addr uint64, size uint32) error {
	r, _, err := procFlushInstructionCache.Call(uintptr(p.h), uintptr(addr), uintptr(size))
	if r == 0 {
		return fmt.Errorf("flushing the instruction cache: %w", err)
	}
	return nil
}

func (p *winProcess) Modules() ([]ModuleInfo, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPMODULE, p.pid)
	if err != nil {
		return nil, err
	}
	defer windows.CloseHandle(snap)
	var out []ModuleInfo
	e := windows.ModuleEntry32{Size: uint32(unsafe.Sizeof(windows.ModuleEntry32{}))}
	for err = windows.Module32First(snap, &e); err == nil; err = windows.Module32Next(snap, &e) {
		out = append(out, ModuleInfo{Name: windows.UTF16ToString(e.Module[:]), Path: windows.UTF16ToString(e.ExePath[:]),
			Base: uint64(e.ModBaseAddr), Size: e.ModBaseSize})
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return nil, err
	}
	return out, nil
}

func (p *winProcess) Regions() ([]uint64, error) {
	var out []uint64
	for a := uint64(allocGranularity); a < maxAddr; {
		var mbi windows.MemoryBasicInformation
		if err := windows.VirtualQueryEx(p.h, uintptr(a), &mbi, unsafe.Sizeof(mbi)); err != nil {
			break
		}
		if mbi.State == windows.MEM_COMMIT && mbi.Type == memPrivate && mbi.BaseAddress == mbi.AllocationBase &&
			mbi.Protect == windows.PAGE_READONLY {
			out = append(out, uint64(mbi.BaseAddress))
		}
		next := uint64(mbi.BaseAddress) + uint64(mbi.RegionSize)
		if next <= a {
			break
		}
		a = next
	}
	return out, nil
}

// winSuspended is the process with its threads suspended.
type winSuspended struct {
	p       *winProcess
	threads []windows.Handle
	ips     []uint64
	sps     []uint64
}

func (s *winSuspended) IPs() []uint64 { return s.ips }

// maxStackScan bounds how much of one thread's stack is read.
const maxStackScan = 8 << 20

func (s *winSuspended) Stacks() ([][]byte, error) {
	var out [][]byte
	for _, sp := range s.sps {
		var mbi windows.MemoryBasicInformation
		if err := windows.VirtualQueryEx(s.p.h, uintptr(sp), &mbi, unsafe.Sizeof(mbi)); err != nil {
			return nil, fmt.Errorf("stack at %#x: %w", sp, err)
		}
		end := uint64(mbi.BaseAddress) + uint64(mbi.RegionSize)
		if end <= sp {
			continue
		}
		b, err := s.p.Read(sp, int(min(end-sp, maxStackScan)))
		if err != nil {
			return nil, fmt.Errorf("reading a stack: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}

func (s *winSuspended) Resume() error {
	var errs []error
	for _, t := range s.threads {
		if _, err := windows.ResumeThread(t); err != nil {
			errs = append(errs, err)
		}
		windows.CloseHandle(t)
	}
	s.threads = nil
	return errors.Join(errs...)
}

func (p *winProcess) Suspend() (Suspended, error) {
	s := &winSuspended{p: p}
	seen := map[uint32]bool{}
	// Threads may start while we suspend: take snapshots until one shows
	// no thread we have not stopped.
	for round := 0; round < 10; round++ {
		snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPTHREAD, 0)
		if err != nil {
			s.Resume()
			return nil, err
		}
		fresh := 0
		e := windows.ThreadEntry32{Size: uint32(unsafe.Sizeof(windows.ThreadEntry32{}))}
		for err = windows.Thread32First(snap, &e); err == nil; err = windows.Thread32Next(snap, &e) {
			if e.OwnerProcessID != p.pid || seen[e.ThreadID] {
				continue
			}
			seen[e.ThreadID] = true
			fresh++
			t, err := windows.OpenThread(windows.THREAD_SUSPEND_RESUME|windows.THREAD_GET_CONTEXT|windows.THREAD_QUERY_INFORMATION, false, e.ThreadID)
			if errors.Is(err, windows.ERROR_INVALID_PARAMETER) {
				continue // exited meanwhile
			}
			if err != nil {
				windows.CloseHandle(snap)
				s.Resume()
				return nil, fmt.Errorf("opening thread %d: %w", e.ThreadID, err)
			}
			if r, _, err := procSuspendThread.Call(uintptr(t)); r == 0xffffffff {
				windows.CloseHandle(t)
				windows.CloseHandle(snap)
				s.Resume()
				return nil, fmt.Errorf("suspending thread %d: %w", e.ThreadID, err)
			}
			s.threads = append(s.threads, t)
			buf := make([]byte, contextSize+16)
			off := (16 - uintptr(unsafe.Pointer(&buf[0]))%16) % 16
			ctx := buf[off : off+contextSize]
			binary.LittleEndian.PutUint32(ctx[contextFlagsAt:], contextControl)
			if r, _, err := procGetThreadContext.Call(uintptr(t), uintptr(unsafe.Pointer(&ctx[0]))); r == 0 {
				windows.CloseHandle(snap)
				s.Resume()
				return nil, fmt.Errorf("reading thread %d's context: %w", e.ThreadID, err)
			}
			s.ips = append(s.ips, instructionPointer(ctx))
			s.sps = append(s.sps, stackPointer(ctx))
		}
		windows.CloseHandle(snap)
		if fresh == 0 {
			return s, nil
		}
	}
	s.Resume()
	return nil, errors.New("threads keep starting; could not stop the process")
}

// Call runs fn with up to four integer arguments on a new thread of the
// process through a small stub, and returns its exit code (the low 32 bits
// of fn's result).
func (p *winProcess) Call(fn uint64, args ...uint64) (uint64, error) {
	if !is64 {
		return 0, errors.New("calls into 32-bit processes are not implemented (x86 packages need none)")
	}
	if len(args) > 4 {
		return 0, errors.New("at most four arguments")
	}
	var a [4]uint64
	copy(a[:], args)
	stub := []byte{0x48, 0x83, 0xec, 0x28}                                                // sub rsp, 0x28
	for i, op := range [][]byte{{0x48, 0xb9}, {0x48, 0xba}, {0x49, 0xb8}, {0x49, 0xb9}} { // rcx rdx r8 r9
		stub = binary.LittleEndian.AppendUint64(append(stub, op...), a[i])
	}
	stub = binary.LittleEndian.AppendUint64(append(stub, 0x48, 0xb8), fn) // mov rax, fn
	stub = append(stub, 0xff, 0xd0, 0x48, 0x83, 0xc4, 0x28, 0xc3)         // call rax; add rsp, 0x28; ret
	at := p.allocAt(0, PageSize, windows.PAGE_EXECUTE_READWRITE)
	if at == 0 {
		return 0, errors.New("allocating a call stub failed")
	}
	var put uintptr
	if err := windows.WriteProcessMemory(p.h, uintptr(at), &stub[0], uintptr(len(stub)), &put); err != nil {
		p.Free(at)
		return 0, fmt.Errorf("writing a call stub: %w", err)
	}
	th, _, err := procCreateRemoteThread.Call(uintptr(p.h), 0, 0, uintptr(at), 0, 0, 0)
	if th == 0 {
		p.Free(at)
		return 0, fmt.Errorf("starting a thread in the process: %w", err)
	}
	defer windows.CloseHandle(windows.Handle(th))
	if ev, err := windows.WaitForSingleObject(windows.Handle(th), 10000); ev != windows.WAIT_OBJECT_0 {
		// The thread may still run the stub: it stays allocated (one page).
		return 0, fmt.Errorf("the call in the process did not finish: %v", err)
	}
	defer p.Free(at)
	var code uint32
	if r, _, err := procGetExitCodeThread.Call(th, uintptr(unsafe.Pointer(&code))); r == 0 {
		return 0, err
	}
	return uint64(code), nil
}
