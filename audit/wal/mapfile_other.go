//go:build !linux

package wal

import (
	"os"
)

// mapFile does not map files on this system: they are read.
func mapFile(*os.File, int64) (data []byte, unmap func(), ok bool) { return nil, nil, false }
