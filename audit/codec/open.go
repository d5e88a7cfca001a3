package codec

import (
	"bufio"
	"compress/bzip2"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/walaudit/walaudit/walname"
)

// Resource limits for hostile headers (see the package doc).
const (
	// MaxDictSize bounds the dictionary an lzma header or the first xz
	// block may ask for: 64 MiB, the largest of xz's presets (-9).
	MaxDictSize = 64 << 20
	// MaxZstdWindow bounds the Zstandard window: 128 MiB (zstd --long).
	MaxZstdWindow = 128 << 20
)

// bufSize is the read buffer between the source and the decompressor.
const bufSize = 64 << 10

// Open returns the decompressed content of r, a file whose name carried
// the compression suffix suffix ([walname.CompressNone] for none), and the
// codec used.
//
// With a suffix, the content must be that format: when the format has
// magic bytes and the content starts otherwise, the error wraps
// [ErrMismatch] if the content is recognisably another format (or
// uncompressed WAL) and [ErrCorrupt] if not; for brotli and lzma, which
// have no magic, content recognisable as another format is an
// [ErrMismatch]. Both kinds of error name the promised and the found
// format. A suffix this package does not know wraps [ErrUnsupported].
//
// Without a suffix (Barman keeps compressed WAL under the plain segment
// name), the format is sniffed from the magic bytes ([Sniff]); content
// that is uncompressed WAL, or that nothing recognises (a history file's
// text, or brotli/lzma that only a suffix can announce), is returned
// unchanged with codec [None].
//
// Decompression streams: memory stays bounded by the format's block or
// window whatever the file size. Damaged data makes Read return an error
// wrapping [ErrCorrupt] with the codec name and positions; an error of r
// itself is returned wrapped as is. Wrap the result in [LimitReader] to
// bound the output. Closing the result releases the decompressor; it does
// not close r.
func Open(r io.Reader, suffix walname.Compression) (io.ReadCloser, Codec, error) {
	want, known := ForSuffix(suffix)
	if !known {
		return nil, None, fmt.Errorf("%w: unknown compression suffix %q", ErrUnsupported, suffix)
	}
	rec := &errRecorder{r: r}
	br := bufio.NewReaderSize(rec, bufSize)
	head, err := br.Peek(sniffLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, None, fmt.Errorf("reading start of file: %w", err)
	}
	sniffed, recognised := Sniff(head)

	c := want
	switch {
	case want == None && recognised:
		c = sniffed
	case want == None:
		// Unknown content passes through unchanged.
	case hasMagic(want, head) || (want.info().alt != nil && want.info().alt(head)):
		// Confirmed.
	case recognised:
		return nil, None, fmt.Errorf("%w: suffix .%s promises %s but the content is %s", ErrMismatch, suffix, want.Name(), describe(head))
	case want.info().magic != nil:
		return nil, None, fmt.Errorf("%w: suffix .%s promises %s (magic %s) but the content is %s",
			ErrCorrupt, suffix, want.Name(), hex.EncodeToString(want.info().magic), describe(head))
	}
	rc, err := newReader(c, rec, br)
	if err != nil {
		return nil, None, err
	}
	return rc, c, nil
}

// NewReader returns a reader of the decompressed content of r, which must
// be in format c (nothing is sniffed or confirmed; [None] returns r's bytes
// unchanged). Errors are reported as by [Open].
func NewReader(c Codec, r io.Reader) (io.ReadCloser, error) {
	if c.id >= numCodecs {
		return nil, fmt.Errorf("%w: invalid codec", ErrUnsupported)
	}
	rec := &errRecorder{r: r}
	return newReader(c, rec, bufio.NewReaderSize(rec, bufSize))
}

// errRecorder remembers the first error of the source other than io.EOF,
// so that I/O errors are not mistaken for corrupt data.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}

// counter counts the compressed bytes handed to the decompressor and, if
// asked (xz), tracks how the data read so far ends.
type counter struct {
	br *bufio.Reader
	n  int64

	trackEnd bool
	last     byte    // last byte read
	before   [2]byte // the two bytes before the final run of zero bytes
	zeros    int64   // length of the final run of zero bytes
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.br.Read(p)
	c.n += int64(n)
	if c.trackEnd && n > 0 {
		c.track(p[:n])
	}
	return n, err
}

// ReadByte lets flate and lzma read byte-wise from the buffer without a
// second one.
func (c *counter) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.n++
		if c.trackEnd {
			c.track([]byte{b})
		}
	}
	return b, err
}

func (c *counter) track(p []byte) {
	i := len(p) - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	switch {
	case i < 0:
		c.zeros += int64(len(p))
	case i == 0:
		c.before, c.zeros = [2]byte{c.last, p[0]}, int64(len(p)-1)
	default:
		c.before, c.zeros = [2]byte{p[i-1], p[i]}, int64(len(p)-1-i)
	}
	c.last = p[len(p)-1]
}

// xzEndsWell reports whether the data read ends like an xz stream: the
// footer magic "YZ" followed by stream padding (a multiple of 4 zero
// bytes). github.com/ulikunitz/xz takes the end of input where a block
// header should be for the end of the data, so a file truncated at a block
// boundary would otherwise pass.
func (c *counter) xzEndsWell() bool {
	return c.before == [2]byte{'Y', 'Z'} && c.zeros%4 == 0
}

// reader is the decompressing io.ReadCloser returned by Open and NewReader.
type reader struct {
	c       Codec
	rec     *errRecorder
	src     *counter
	dec     io.Reader
	closeFn func()
	out     int64
	err     error // sticky: io.EOF or the wrapped error
}

func newReader(c Codec, rec *errRecorder, br *bufio.Reader) (rc io.ReadCloser, err error) {
	r := &reader{c: c, rec: rec, src: &counter{br: br}}
	if c == None {
		r.dec = r.src
		return r, nil
	}
	defer func() {
		if p := recover(); p != nil {
			rc, err = nil, r.wrap(fmt.Errorf("%w: %v", errPanic, p))
		}
	}()
	if err := r.open(); err != nil {
		return nil, r.wrap(err)
	}
	return r, nil
}

// open starts the decompressor; formats with a header read it now.
func (r *reader) open() error {
	src := r.src
	switch r.c {
	case Gzip:
		zr, err := gzip.NewReader(src)
		if err != nil {
			return err
		}
		r.dec, r.closeFn = zr, func() { zr.Close() }
	case LZ4:
		r.dec = lz4.NewReader(src)
	case Zstd:
		zr, err := getZstd(src)
		if err != nil {
			return err
		}
		r.dec = zr
		r.closeFn = func() {
			// Reuse a decoder (and its window buffer) only after a clean end.
			if r.err == io.EOF && zr.Reset(nil) == nil {
				zstdPool.Put(zr)
				return
			}
			zr.Close()
		}
	case Brotli:
		r.dec = brotli.NewReader(src)
	case Bzip2:
		r.dec = bzip2.NewReader(src)
	case XZ:
		src.trackEnd = true
		if err := checkXZDict(src.br); err != nil {
			return err
		}
		zr, err := xz.NewReader(src)
		if err != nil {
			return err
		}
		r.dec = zr
	case LZMA:
		zr, err := lzma.ReaderConfig{DictCap: MaxDictSize}.NewReader(src)
		if err != nil {
			return err
		}
		r.dec = zr
	case LZO:
		zr, err := newLzopReader(src)
		if err != nil {
			return err
		}
		r.dec = zr
	case Snappy:
		r.dec = snappy.NewReader(src)
	default:
		return fmt.Errorf("%w: codec %d", ErrUnsupported, r.c.id)
	}
	return nil
}

// zstdPool keeps idle zstd decoders: a new one allocates its window
// buffer (8 MiB for the usual writers) for every file.
var zstdPool sync.Pool

func getZstd(src io.Reader) (*zstd.Decoder, error) {
	if zr, ok := zstdPool.Get().(*zstd.Decoder); ok {
		if err := zr.Reset(src); err == nil {
			return zr, nil
		}
		zr.Close()
	}
	return zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxZstdWindow))
}

// Read implements io.Reader.
func (r *reader) Read(p []byte) (n int, err error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err = r.safeRead(p)
	r.out += int64(n)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF) && r.c != None:
		if terr := r.trailing(); terr != nil {
			r.err = terr
			return n, terr
		}
		r.err = io.EOF
	case errors.Is(err, io.EOF):
		r.err = io.EOF
	case r.c == None:
		r.err = fmt.Errorf("reading file after %d bytes: %w", r.out, err)
	default:
		r.err = r.wrap(err)
	}
	return n, r.err
}

func (r *reader) safeRead(p []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			n, err = 0, fmt.Errorf("%w: %v", errPanic, v)
		}
	}()
	return r.dec.Read(p)
}

// trailing checks that nothing follows the end of the compressed stream.
func (r *reader) trailing() error {
	var b [1]byte
	n, err := io.ReadFull(r.src, b[:])
	switch {
	case n > 0:
		return fmt.Errorf("%w: %s stream: data after the end of the stream at compressed byte %d", ErrCorrupt, r.c.Name(), r.src.n-1)
	case err != nil && !errors.Is(err, io.EOF):
		return r.wrap(err)
	case r.c == XZ && !r.src.xzEndsWell():
		return r.wrap(fmt.Errorf("xz: no stream footer at the end of the data: %w", io.ErrUnexpectedEOF))
	}
	return nil
}

// wrap classifies an error of the decompressor.
func (r *reader) wrap(err error) error {
	name := r.c.Name()
	if r.rec.err != nil {
		return fmt.Errorf("%s: reading compressed data after %d bytes: %w", name, r.src.n, r.rec.err)
	}
	var dictErr *lzma.ErrDictSize
	if errors.Is(err, ErrUnsupported) || errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.As(err, &dictErr) {
		return fmt.Errorf("%w: %s stream: %w", ErrUnsupported, name, err)
	}
	what := "corrupt"
	if errors.Is(err, io.ErrUnexpectedEOF) {
		what = "truncated"
	}
	return fmt.Errorf("%w: %s stream %s at decompressed byte %d (%d compressed bytes consumed): %w",
		ErrCorrupt, name, what, r.out, r.src.n, err)
}

// Close releases the decompressor. It does not close the source.
func (r *reader) Close() error {
	if r.closeFn != nil {
		r.closeFn()
		r.closeFn = nil
	}
	if r.err == nil {
		r.err = errors.New("codec: read after close")
	}
	return nil
}

// checkXZDict refuses an xz stream whose first block's LZMA2 dictionary
// exceeds MaxDictSize, before the library allocates it. Later blocks are
// not checked (see the package doc). Anything unparsable is left to the
// library to report.
func checkXZDict(br *bufio.Reader) error {
	const streamHeader = 12
	head, _ := br.Peek(streamHeader + 1)
	if len(head) <= streamHeader || head[streamHeader] == 0 {
		return nil // short (the library reports it) or no block
	}
	size := (int(head[streamHeader]) + 1) * 4
	bh, _ := br.Peek(streamHeader + size)
	if len(bh) < streamHeader+size {
		return nil
	}
	bh = bh[streamHeader+1 : streamHeader+size-4] // without size byte and CRC32
	if len(bh) < 1 {
		return nil
	}
	flags := bh[0]
	p := 1
	varint := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && p < len(bh); i++ {
			b := bh[p]
			p++
			v |= uint64(b&0x7f) << (7 * i)
			if b&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if present {
			if _, ok := varint(); !ok {
				return nil
			}
		}
	}
	for range int(flags&3) + 1 {
		id, ok1 := varint()
		n, ok2 := varint()
		if !ok1 || !ok2 || uint64(len(bh)-p) < n {
			return nil
		}
		if id == 0x21 && n == 1 { // LZMA2
			dict, err := lzma.DecodeDictCap(bh[p])
			if err == nil && dict > MaxDictSize {
				return fmt.Errorf("%w: xz block dictionary of %d bytes exceeds the limit of %d", ErrUnsupported, dict, MaxDictSize)
			}
		}
		p += int(n)
	}
	return nil
}
