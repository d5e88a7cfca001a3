package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/walname"
)

// Magic numbers of the compression formats pg_basebackup writes (wire
// format, do not change).
var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicLZ4  = []byte{0x04, 0x22, 0x4d, 0x18}
)

// readTarFormat gathers a tar-format backup: base.tar[.*], pg_wal.tar[.*],
// <oid>.tar[.*] and backup_manifest.
func readTarFormat(ctx context.Context, b *Backup, bs *backupSrc, c *collected, entries []fs.DirEntry) {
	var bases, wals []string
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == "base.tar" || strings.HasPrefix(n, "base.tar."):
			bases = append(bases, n)
		case n == "pg_wal.tar" || strings.HasPrefix(n, "pg_wal.tar."):
			wals = append(wals, n)
		default:
			if oid, ok := tablespaceTarOID(n); ok {
				c.tablespaceTars[oid] = bs.display(n)
			}
		}
	}
	c.manifest = readSmall(b, bs, relManifest, maxManifestSize)

	for _, w := range wals {
		readTar(ctx, b, bs, c, w, tarPurposeWAL)
	}
	switch len(bases) {
	case 0:
		b.add(finding.Error, CodeIncomplete, b.Path, "tar-format backup without base.tar",
			"the main data directory archive is missing; this backup cannot be restored")
		c.baseBroken = true
	case 1:
		readTar(ctx, b, bs, c, bases[0], tarPurposeBase(len(wals) > 0))
	default:
		b.add(finding.Error, CodeUnknownFormat, b.Path,
			fmt.Sprintf("several base archives: %s", strings.Join(bases, ", ")),
			"keep one pg_basebackup output per directory")
		c.baseBroken = true
	}
}

// tarPurpose says what to take from a tar and when to stop reading.
type tarPurpose struct {
	base bool // base.tar: metadata files and pg_wal/ entries
	// stopEarly: stop once backup_label, PG_VERSION and global/pg_control
	// are read (set when WAL is in a separate pg_wal.tar).
	stopEarly bool
}

var tarPurposeWAL = tarPurpose{}

func tarPurposeBase(separateWAL bool) tarPurpose {
	return tarPurpose{base: true, stopEarly: separateWAL}
}

// readTar streams one tar file of the backup.
func readTar(ctx context.Context, b *Backup, bs *backupSrc, c *collected, name string, purpose tarPurpose) {
	p := bs.display(name)
	f, err := bs.fsys.Open(bs.name(name))
	if err != nil {
		b.add(finding.Error, CodeUnreadable, p, fmt.Sprintf("cannot open: %v", fixErr(err, p)), "")
		if purpose.base {
			c.baseBroken = true
		}
		return
	}
	defer f.Close()

	r, comp, closeFn, err := openArchive(ctx, f)
	if err != nil {
		b.add(finding.Error, CodeArchiveCorrupt, p, fmt.Sprintf("cannot start decompressing: %v", err), "")
		if purpose.base {
			c.baseBroken = true
		}
		return
	}
	defer closeFn()
	suffix := strings.TrimPrefix(name, strings.SplitN(name, ".tar", 2)[0]+".tar")
	want, known := tarCompressionSuffixes[suffix]
	switch {
	case !known && comp == walname.CompressNone:
		b.add(finding.Error, CodeUnknownFormat, p,
			fmt.Sprintf("unknown compression suffix %q and no gzip, lz4 or zstd header", suffix),
			"pg_basebackup writes .tar, .tar.gz, .tar.lz4 or .tar.zst")
		if purpose.base {
			c.baseBroken = true
		}
		return
	case known && want != comp:
		b.add(finding.Warning, CodeUnknownFormat, p,
			fmt.Sprintf("name promises %s but content is %s", compressionName(want), compressionName(comp)),
			"the file was renamed; it is read by its content")
	}
	if purpose.base {
		b.Compression = comp
	}

	tr := tar.NewReader(r)
	last := "(start of archive)"
	for {
		if err := ctx.Err(); err != nil {
			return
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.add(finding.Error, CodeArchiveCorrupt, p, fmt.Sprintf("cannot read tar entry after %s: %v", last, err),
				"the archive is truncated or damaged; this backup cannot be restored")
			if purpose.base {
				c.baseBroken = true
			}
			return
		}
		last = hdr.Name
		rel, ok := cleanTarName(hdr.Name)
		if !ok || (hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA) {
			continue
		}
		display := p + ":" + hdr.Name
		if !purpose.base {
			walRel := strings.TrimPrefix(rel, relWAL+"/")
			if walname.IsSegmentName(walRel) || walname.IsHistoryName(walRel) {
				c.wal[walRel] = walFile{size: hdr.Size, display: display}
			}
			continue
		}
		var dst *fileData
		var max int64
		switch rel {
		case relLabel:
			dst, max = &c.label, maxLabelSize
		case relMap:
			dst, max = &c.tsmap, maxMapSize
		case relVersion:
			dst, max = &c.version, maxVersionSize
		case relControl:
			dst, max = &c.control, maxControlSize
		default:
			if w, ok := strings.CutPrefix(rel, relWAL+"/"); ok && (walname.IsSegmentName(w) || walname.IsHistoryName(w)) {
				c.wal[w] = walFile{size: hdr.Size, display: display}
			}
			continue
		}
		*dst = fileData{display: display}
		if hdr.Size > max {
			b.add(finding.Error, CodeUnreadable, display, fmt.Sprintf("entry of %d bytes is larger than %d, not read", hdr.Size, max), "")
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			b.add(finding.Error, CodeArchiveCorrupt, display, fmt.Sprintf("cannot read entry: %v", err),
				"the archive is truncated or damaged; this backup cannot be restored")
			c.baseBroken = true
			return
		}
		dst.found, dst.data = true, data
		if purpose.stopEarly && c.label.found && c.version.found && c.control.found {
			return
		}
	}
}

// cleanTarName turns an untrusted entry name into a clean relative path.
// ok is false for absolute names and names that climb out with "..".
func cleanTarName(name string) (string, bool) {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return "", false
	}
	n := path.Clean(name)
	if n == "." || n == ".." || strings.HasPrefix(n, "../") {
		return "", false
	}
	return n, true
}

// openArchive detects gzip, zstd and lz4 by their magic numbers and returns
// a decompressing reader. An uncompressed tar is returned as the file
// itself when it implements io.Seeker, so that archive/tar can skip entry
// bodies by seeking; otherwise it is read through (a buffered reader that
// stops once ctx is done).
func openArchive(ctx context.Context, f io.Reader) (io.Reader, walname.Compression, func(), error) {
	nop := func() {}
	var head [4]byte
	var m []byte
	var src *bufio.Reader
	seeker, seekable := f.(io.Seeker)
	switch ra, ok := f.(io.ReaderAt); {
	case ok && seekable:
		n, err := ra.ReadAt(head[:], 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, "", nop, err
		}
		m = head[:n]
		src = bufio.NewReaderSize(ctxReader{ctx, f}, 256<<10)
	case seekable:
		n, err := io.ReadFull(f, head[:])
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, "", nop, err
		}
		if _, err := seeker.Seek(0, io.SeekStart); err != nil {
			return nil, "", nop, err
		}
		m = head[:n]
		src = bufio.NewReaderSize(ctxReader{ctx, f}, 256<<10)
	default:
		src = bufio.NewReaderSize(ctxReader{ctx, f}, 256<<10)
		p, err := src.Peek(len(head))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, "", nop, err
		}
		m = p
	}
	switch {
	case bytes.HasPrefix(m, magicGzip):
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, "", nop, fmt.Errorf("gzip: %w", err)
		}
		return zr, walname.CompressGzip, func() { zr.Close() }, nil
	case bytes.Equal(m, magicZstd):
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, "", nop, fmt.Errorf("zstd: %w", err)
		}
		return zr, walname.CompressZstd, zr.Close, nil
	case bytes.Equal(m, magicLZ4):
		return lz4.NewReader(src), walname.CompressLZ4, nop, nil
	}
	if seekable {
		return f, walname.CompressNone, nop, nil
	}
	return src, walname.CompressNone, nop, nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func compressionName(c walname.Compression) string {
	if c == walname.CompressNone {
		return "uncompressed"
	}
	return string(c)
}
