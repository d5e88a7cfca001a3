package wal

import (
	"errors"
	"fmt"
	"io"

	"github.com/walaudit/walaudit/walname"
)

// chunkSize is how much of a segment is read at once. Every valid WAL page
// size (1 to 64 KiB, powers of two) divides it and it divides every valid
// segment size, so a page never straddles two chunks.
const chunkSize = 64 << 10

// errShortFile is returned by segFile.page when the file ends before the
// requested page does; the caller turns it into ErrTruncated with a position.
var errShortFile = errors.New("short segment file")

// segFile reads one segment file front to back in chunks. Pages are
// returned as slices of the chunk buffer, valid until the next chunk is
// read. It never seeks, so any io.Reader works (files, decompressors,
// object-store bodies).
type segFile struct {
	r      io.Reader
	name   string        // as the source named it, for messages
	segno  walname.SegNo // the segment the file should hold
	buf    []byte        // chunk buffer, shared between the segments of a read
	bufOff int64         // file offset of buf[0]
	bufLen int           // valid bytes in buf
	read   int64         // bytes consumed from r
	eof    bool
	// data, when not nil, is the whole file in memory: chunks are slices
	// of it instead of copies, read in the same steps as from r so that
	// sizes and errors come out the same.
	data []byte
}

func newSegFile(r io.Reader, name string, segno walname.SegNo, buf []byte) *segFile {
	return &segFile{r: r, name: name, segno: segno, buf: buf}
}

// page returns n bytes at file offset off. Offsets must not go back before
// the current chunk.
func (f *segFile) page(off int64, n int) ([]byte, error) {
	for {
		if off >= f.bufOff && off+int64(n) <= f.bufOff+int64(f.bufLen) {
			i := off - f.bufOff
			return f.buf[i : i+int64(n) : i+int64(n)], nil
		}
		if off < f.bufOff {
			return nil, fmt.Errorf("internal error: read of %s went back from offset %d to %d", f.name, f.bufOff, off)
		}
		if f.eof {
			return nil, errShortFile
		}
		if err := f.fill(); err != nil {
			return nil, err
		}
	}
}

func (f *segFile) fill() error {
	if f.data != nil {
		n := min(chunkSize, len(f.data)-int(f.read))
		f.buf = f.data[f.read : f.read+int64(n) : f.read+int64(n)]
		f.bufOff, f.bufLen = f.read, n
		f.read += int64(n)
		f.eof = n < chunkSize // as io.ReadFull into a chunk reports it
		return nil
	}
	n, err := io.ReadFull(f.r, f.buf)
	f.bufOff, f.bufLen = f.read, n
	f.read += int64(n)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		f.eof = true
	case err != nil:
		return fmt.Errorf("read %s at offset %d: %w", f.name, f.bufOff+int64(n), err)
	}
	return nil
}

// finish reads the rest of the file to learn its size and compares it with
// the segment size: PostgreSQL refuses a restored segment of the wrong size.
// It reuses the chunk buffer, so earlier pages become invalid.
func (f *segFile) finish(segSize uint64) error {
	for !f.eof && uint64(f.read) <= segSize {
		if err := f.fill(); err != nil {
			return err
		}
	}
	start := walname.LSN(uint64(f.segno) * segSize)
	switch {
	case uint64(f.read) < segSize:
		return &ContentError{File: f.name, Offset: f.read, LSN: start + walname.LSN(f.read),
			Err: errorf(ErrTruncated, "segment file is truncated: %d bytes, want %d", f.read, segSize)}
	case uint64(f.read) > segSize:
		return &ContentError{File: f.name, Offset: int64(segSize), LSN: start + walname.LSN(segSize),
			Err: errorf(ErrTrailingData, "segment file has more than %d bytes", segSize)}
	}
	return nil
}

// truncated is the error for a page that the file does not hold entirely.
func (f *segFile) truncated(segSize uint64) error {
	start := walname.LSN(uint64(f.segno) * segSize)
	return &ContentError{File: f.name, Offset: f.read, LSN: start + walname.LSN(f.read),
		Err: errorf(ErrTruncated, "segment file is truncated: %d bytes, want %d", f.read, segSize)}
}
