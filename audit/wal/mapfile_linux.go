package wal

import (
	"os"
	"syscall"
)

// mapFile maps the first size bytes of f read-only; unmap releases them.
// MAP_POPULATE sets up the whole mapping at once: a scan reads every page,
// and one call is cheaper than a fault per page.
func mapFile(f *os.File, size int64) (data []byte, unmap func(), ok bool) {
	if size <= 0 {
		return nil, nil, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, nil, false
	}
	var merr error
	if err := rc.Control(func(fd uintptr) {
		data, merr = syscall.Mmap(int(fd), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	}); err != nil || merr != nil {
		return nil, nil, false
	}
	return data, func() { _ = syscall.Munmap(data) }, true
}
