package codec

import "errors"

// Sentinel errors. Test for them with errors.Is; the returned errors wrap
// them with the codec's name, the position and the underlying library's
// message.
var (
	// ErrCorrupt: the compressed data is damaged or truncated (bad magic,
	// bad header, failed checksum, invalid encoding, missing end of stream,
	// data after the end of stream).
	ErrCorrupt = errors.New("codec: corrupt compressed data")

	// ErrMismatch: the file's suffix promises one format and its leading
	// bytes are another format's magic (or uncompressed WAL).
	ErrMismatch = errors.New("codec: compression suffix does not match content")

	// ErrUnsupported: a well-formed stream uses a feature or a resource
	// size this package refuses (an lzop filter or method other than LZO1X,
	// a dictionary or window beyond the limits in the package doc), or the
	// suffix is not a known compression.
	ErrUnsupported = errors.New("codec: unsupported compressed data")

	// ErrTooLarge is returned by a reader from [LimitReader] once the
	// decompressed data exceeds its maximum.
	ErrTooLarge = errors.New("codec: decompressed data larger than allowed")
)

// errPanic marks a panic of a decompression library turned into an error;
// tests and fuzzing treat it as a failure.
var errPanic = errors.New("codec: decompressor panicked")
