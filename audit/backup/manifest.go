package backup

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/walaudit/walaudit/walname"
)

// castagnoli is the CRC-32C table shared by manifest and pg_control checks.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ChecksumAlgorithm is a backup manifest Checksum-Algorithm (pg_checksum_type,
// src/include/common/checksum_helper.h). Names are wire format.
type ChecksumAlgorithm string

// Checksum algorithms pg_basebackup --manifest-checksums accepts.
const (
	ChecksumNone   ChecksumAlgorithm = "NONE"
	ChecksumCRC32C ChecksumAlgorithm = "CRC32C"
	ChecksumSHA224 ChecksumAlgorithm = "SHA224"
	ChecksumSHA256 ChecksumAlgorithm = "SHA256"
	ChecksumSHA384 ChecksumAlgorithm = "SHA384"
	ChecksumSHA512 ChecksumAlgorithm = "SHA512"
)

// ParseChecksumAlgorithm accepts an algorithm name in any case, as
// pg_checksum_parse_type does.
func ParseChecksumAlgorithm(s string) (ChecksumAlgorithm, error) {
	for _, a := range []ChecksumAlgorithm{ChecksumNone, ChecksumCRC32C, ChecksumSHA224, ChecksumSHA256, ChecksumSHA384, ChecksumSHA512} {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", fmt.Errorf("unrecognized checksum algorithm %q", clip(s))
}

// Size is the digest length in bytes (0 for NONE and unknown algorithms).
func (a ChecksumAlgorithm) Size() int {
	switch a {
	case ChecksumCRC32C:
		return 4
	case ChecksumSHA224:
		return sha256.Size224
	case ChecksumSHA256:
		return sha256.Size
	case ChecksumSHA384:
		return sha512.Size384
	case ChecksumSHA512:
		return sha512.Size
	}
	return 0
}

// Manifest is a parsed backup_manifest.
type Manifest struct {
	// Version is PostgreSQL-Backup-Manifest-Version: 1 (13-16) or 2 (17+).
	Version int `json:"version"`
	// SystemIdentifier is System-Identifier (version 2 only; 0 otherwise),
	// which must match pg_control's.
	SystemIdentifier uint64 `json:"system_identifier,omitzero"`
	// HasSystemIdentifier reports whether System-Identifier was present.
	HasSystemIdentifier bool `json:"has_system_identifier"`
	// Files lists every file of the backup except WAL, in manifest order.
	Files []ManifestFile `json:"files"`
	// WALRanges lists the WAL needed to make the backup consistent, one
	// range per timeline, newest timeline first.
	WALRanges []WALRange `json:"wal_ranges"`
	// Checksum is Manifest-Checksum in lower-case hex.
	Checksum string `json:"checksum"`
	// ChecksumVerified is true when Checksum matched the content.
	ChecksumVerified bool `json:"checksum_verified"`

	index map[string]int
}

// ManifestFile is one entry of a manifest's Files array.
type ManifestFile struct {
	// Path is relative to the data directory, hex-decoded if the manifest
	// used Encoded-Path (names that are not valid UTF-8, or
	// --manifest-force-encode).
	Path string `json:"path"`
	// EncodedPath reports whether the manifest used Encoded-Path.
	EncodedPath bool `json:"encoded_path,omitempty"`
	// Size is the file size in bytes.
	Size uint64 `json:"size"`
	// LastModified is the text as written ("YYYY-MM-DD HH:MM:SS GMT"), which
	// pg_verifybackup ignores.
	LastModified string `json:"last_modified,omitempty"`
	// Algorithm is Checksum-Algorithm, [ChecksumNone] when absent.
	Algorithm ChecksumAlgorithm `json:"algorithm"`
	// Checksum is the checksum in lower-case hex, "" for NONE. For CRC32C it
	// is the little-endian byte order of the CRC (as the server's memory
	// holds it), e.g. CRC 0x2247748A is written "8a744722".
	Checksum string `json:"checksum,omitempty"`
}

// WALRange is one entry of a manifest's WAL-Ranges array.
type WALRange struct {
	Timeline walname.TimelineID `json:"timeline"`
	StartLSN walname.LSN        `json:"start_lsn"`
	EndLSN   walname.LSN        `json:"end_lsn"`
}

// File returns the entry for path, as the manifest spells it (relative to
// the data directory, "/" separators).
func (m *Manifest) File(path string) (ManifestFile, bool) {
	i, ok := m.index[path]
	if !ok {
		return ManifestFile{}, false
	}
	return m.Files[i], true
}

// StopPoint returns the End-LSN and timeline of the newest WAL range: the
// backup's stop LSN (for a standby backup, the minRecoveryPoint at backup
// stop). ok is false when the manifest has no WAL range.
func (m *Manifest) StopPoint() (lsn walname.LSN, tli walname.TimelineID, ok bool) {
	if len(m.WALRanges) == 0 {
		return 0, 0, false
	}
	r := m.WALRanges[0]
	return r.EndLSN, r.Timeline, true
}

// StartPoint returns the Start-LSN and timeline of the oldest WAL range,
// which equals the backup_label's START WAL LOCATION and START TIMELINE.
func (m *Manifest) StartPoint() (lsn walname.LSN, tli walname.TimelineID, ok bool) {
	if len(m.WALRanges) == 0 {
		return 0, 0, false
	}
	r := m.WALRanges[len(m.WALRanges)-1]
	return r.StartLSN, r.Timeline, true
}

// ParseManifest parses a backup_manifest the way pg_verifybackup does: the
// version must come first and be 1 or 2, unknown fields are errors, every
// file needs a path and a size, every WAL range a timeline and both LSNs,
// and Manifest-Checksum must be the last field.
//
// The checksum is then verified: SHA-256 over every byte up to and
// including the newline that ends the next-to-last line (for a manifest
// PostgreSQL wrote, everything before the text "Manifest-Checksum"). On a
// mismatch the fully parsed manifest is returned together with an error
// wrapping [ErrManifestChecksum]; every other error returns a nil manifest
// and wraps [ErrInvalidManifest].
func ParseManifest(data []byte) (*Manifest, error) {
	// jsontext (the encoding/json/v2 tokenizer) instead of json.Decoder's
	// Token: a manifest is thousands of tokens, and Token decoded each
	// scalar through reflection. Duplicate names are this parser's to
	// report, with pg_verifybackup's wording.
	p := manifestParser{dec: jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true))}
	m, err := p.parse()
	if err != nil {
		return nil, err
	}
	region, err := manifestChecksumRegion(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	sum := sha256.Sum256(region)
	if got := hex.EncodeToString(sum[:]); got != m.Checksum {
		return m, fmt.Errorf("%w: content hashes to %s, manifest says %s", ErrManifestChecksum, got, m.Checksum)
	}
	m.ChecksumVerified = true
	return m, nil
}

// manifestChecksumRegion returns the bytes Manifest-Checksum covers: all
// lines but the last, which must end the file with a newline.
func manifestChecksumRegion(data []byte) ([]byte, error) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, errors.New("last line not newline-terminated")
	}
	i := bytes.LastIndexByte(data[:len(data)-1], '\n')
	if i < 0 {
		return nil, errors.New("expected at least 2 lines")
	}
	return data[:i+1], nil
}

type manifestParser struct {
	dec *jsontext.Decoder
}

// mtoken is one JSON token: its kind ('{', '}', '[', ']', '"', '0', 't',
// 'f', 'n') and, for scalars, its text (strings unescaped, numbers and
// literals as written, which is what PostgreSQL's parser takes).
type mtoken struct {
	kind jsontext.Kind
	text string
}

func (p *manifestParser) fail(format string, args ...any) error {
	return fmt.Errorf("%w: near byte %d: %s", ErrInvalidManifest, p.dec.InputOffset(), fmt.Sprintf(format, args...))
}

func (p *manifestParser) token() (mtoken, error) {
	t, err := p.dec.ReadToken()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return mtoken{}, p.fail("manifest ended unexpectedly")
		}
		return mtoken{}, p.fail("%v", err)
	}
	switch k := t.Kind(); k {
	case '{', '}', '[', ']':
		return mtoken{kind: k}, nil
	default:
		return mtoken{kind: k, text: t.String()}, nil
	}
}

func (p *manifestParser) delim(want jsontext.Kind) error {
	t, err := p.token()
	if err != nil {
		return err
	}
	if t.kind != want {
		return p.fail("expected %q, got %v", string(want), describeToken(t))
	}
	return nil
}

// key returns the next object key, or ok=false at the object's end.
func (p *manifestParser) key() (string, bool, error) {
	t, err := p.token()
	if err != nil {
		return "", false, err
	}
	switch t.kind {
	case '"':
		return t.text, true, nil
	case '}':
		return "", false, nil
	}
	return "", false, p.fail("expected a field name, got %v", describeToken(t))
}

// scalar returns the text of a string or number value, as PostgreSQL's
// manifest parser takes the token text whatever its JSON type.
func (p *manifestParser) scalar(field string) (string, error) {
	t, err := p.token()
	if err != nil {
		return "", err
	}
	switch t.kind {
	case '"', '0':
		return t.text, nil
	}
	return "", p.fail("%s: expected a string or number, got %v", field, describeToken(t))
}

func describeToken(t mtoken) string {
	switch t.kind {
	case '{', '}', '[', ']':
		return fmt.Sprintf("%q", string(t.kind))
	case '"':
		return fmt.Sprintf("string %q", clip(t.text))
	}
	return t.text
}

func (p *manifestParser) parse() (*Manifest, error) {
	m := &Manifest{}
	if err := p.delim('{'); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	first := true
	for {
		k, ok, err := p.key()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if first && k != "PostgreSQL-Backup-Manifest-Version" {
			return nil, p.fail("expected version indicator first, got %q", clip(k))
		}
		first = false
		if seen["Manifest-Checksum"] {
			return nil, p.fail("field %q after Manifest-Checksum", clip(k))
		}
		if seen[k] {
			return nil, p.fail("duplicate field %q", clip(k))
		}
		seen[k] = true
		switch k {
		case "PostgreSQL-Backup-Manifest-Version":
			v, err := p.scalar(k)
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, p.fail("manifest version %q is not an integer", clip(v))
			}
			if n != 1 && n != 2 {
				return nil, fmt.Errorf("%w: %w: version %d", ErrInvalidManifest, ErrManifestVersion, n)
			}
			m.Version = n
		case "System-Identifier":
			if m.Version < 2 {
				return nil, p.fail("System-Identifier in a version %d manifest", m.Version)
			}
			v, err := p.scalar(k)
			if err != nil {
				return nil, err
			}
			id, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, p.fail("system identifier %q is not an unsigned integer", clip(v))
			}
			m.SystemIdentifier, m.HasSystemIdentifier = id, true
		case "Files":
			if err := p.files(m); err != nil {
				return nil, err
			}
		case "WAL-Ranges":
			if err := p.walRanges(m); err != nil {
				return nil, err
			}
		case "Manifest-Checksum":
			v, err := p.scalar(k)
			if err != nil {
				return nil, err
			}
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return nil, p.fail("invalid manifest checksum %q", clip(v))
			}
			m.Checksum = hex.EncodeToString(b)
		default:
			return nil, p.fail("unrecognized top-level field %q", clip(k))
		}
	}
	for _, k := range []string{"PostgreSQL-Backup-Manifest-Version", "Files", "WAL-Ranges", "Manifest-Checksum"} {
		if !seen[k] {
			return nil, p.fail("missing %s", k)
		}
	}
	if _, err := p.dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, p.fail("unexpected data after the manifest object")
	}
	return m, nil
}

func (p *manifestParser) files(m *Manifest) error {
	if err := p.delim('['); err != nil {
		return err
	}
	m.index = make(map[string]int)
	for {
		t, err := p.token()
		if err != nil {
			return err
		}
		if t.kind == ']' {
			return nil
		}
		if t.kind != '{' {
			return p.fail("Files: expected an object, got %v", describeToken(t))
		}
		f, err := p.file()
		if err != nil {
			return fmt.Errorf("file %d: %w", len(m.Files)+1, err)
		}
		if _, dup := m.index[f.Path]; dup {
			return p.fail("duplicate path %q", clip(f.Path))
		}
		m.index[f.Path] = len(m.Files)
		m.Files = append(m.Files, f)
	}
}

func (p *manifestParser) file() (ManifestFile, error) {
	var f ManifestFile
	var path, encoded, size, algo, sum *string
	for {
		k, ok, err := p.key()
		if err != nil {
			return f, err
		}
		if !ok {
			break
		}
		v, err := p.scalar(k)
		if err != nil {
			return f, err
		}
		switch k {
		case "Path":
			path = &v
		case "Encoded-Path":
			encoded = &v
		case "Size":
			size = &v
		case "Last-Modified":
			f.LastModified = v
		case "Checksum-Algorithm":
			algo = &v
		case "Checksum":
			sum = &v
		default:
			return f, p.fail("unexpected file field %q", clip(k))
		}
	}
	switch {
	case path == nil && encoded == nil:
		return f, p.fail("missing path name")
	case path != nil && encoded != nil:
		return f, p.fail("both path name and encoded path name")
	case size == nil:
		return f, p.fail("missing size")
	case algo == nil && sum != nil:
		return f, p.fail("checksum without algorithm")
	}
	if path != nil {
		f.Path = *path
	} else {
		b, err := hex.DecodeString(*encoded)
		if err != nil {
			return f, p.fail("could not decode file name %q", clip(*encoded))
		}
		f.Path, f.EncodedPath = string(b), true
	}
	if f.Path == "" {
		return f, p.fail("empty path name")
	}
	n, err := strconv.ParseUint(*size, 10, 64)
	if err != nil {
		return f, p.fail("file size %q of %q is not an integer", clip(*size), clip(f.Path))
	}
	f.Size = n
	f.Algorithm = ChecksumNone
	if algo != nil {
		if f.Algorithm, err = ParseChecksumAlgorithm(*algo); err != nil {
			return f, p.fail("%v", err)
		}
	}
	if sum != nil && *sum != "" {
		b, err := hex.DecodeString(*sum)
		if err != nil {
			return f, p.fail("invalid checksum for file %q: %q", clip(f.Path), clip(*sum))
		}
		f.Checksum = hex.EncodeToString(b)
	}
	return f, nil
}

func (p *manifestParser) walRanges(m *Manifest) error {
	if err := p.delim('['); err != nil {
		return err
	}
	for {
		t, err := p.token()
		if err != nil {
			return err
		}
		if t.kind == ']' {
			return nil
		}
		if t.kind != '{' {
			return p.fail("WAL-Ranges: expected an object, got %v", describeToken(t))
		}
		r, err := p.walRange()
		if err != nil {
			return fmt.Errorf("wal range %d: %w", len(m.WALRanges)+1, err)
		}
		m.WALRanges = append(m.WALRanges, r)
	}
}

func (p *manifestParser) walRange() (WALRange, error) {
	var r WALRange
	var tli, start, end *string
	for {
		k, ok, err := p.key()
		if err != nil {
			return r, err
		}
		if !ok {
			break
		}
		v, err := p.scalar(k)
		if err != nil {
			return r, err
		}
		switch k {
		case "Timeline":
			tli = &v
		case "Start-LSN":
			start = &v
		case "End-LSN":
			end = &v
		default:
			return r, p.fail("unexpected WAL range field %q", clip(k))
		}
	}
	switch {
	case tli == nil:
		return r, p.fail("missing timeline")
	case start == nil:
		return r, p.fail("missing start LSN")
	case end == nil:
		return r, p.fail("missing end LSN")
	}
	t, err := walname.ParseTimelineID(*tli)
	if err != nil {
		return r, p.fail("timeline is not an integer: %v", err)
	}
	if r.StartLSN, err = walname.ParseLSN(*start); err != nil {
		return r, p.fail("unable to parse start LSN: %v", err)
	}
	if r.EndLSN, err = walname.ParseLSN(*end); err != nil {
		return r, p.fail("unable to parse end LSN: %v", err)
	}
	if r.EndLSN < r.StartLSN {
		return r, p.fail("end LSN %s before start LSN %s", r.EndLSN, r.StartLSN)
	}
	r.Timeline = t
	return r, nil
}

// VerifyFile reads r to its end and checks it against the manifest entry
// the way pg_verifybackup does: first the size (an error wrapping
// [ErrSizeMismatch]), then, unless the algorithm is NONE, the checksum (an
// error wrapping [ErrChecksumMismatch], also for a checksum of the wrong
// length). Read errors are returned wrapped.
func VerifyFile(entry ManifestFile, r io.Reader) error {
	var h hash.Hash
	var crc hash.Hash32
	switch entry.Algorithm {
	case ChecksumNone, "":
	case ChecksumCRC32C:
		crc = crc32.New(castagnoli)
		h = crc
	case ChecksumSHA224:
		h = sha256.New224()
	case ChecksumSHA256:
		h = sha256.New()
	case ChecksumSHA384:
		h = sha512.New384()
	case ChecksumSHA512:
		h = sha512.New()
	default:
		return fmt.Errorf("verify %s: unknown checksum algorithm %q", entry.Path, entry.Algorithm)
	}
	w := io.Discard
	if h != nil {
		w = h
	}
	n, err := io.CopyBuffer(w, r, make([]byte, 64<<10))
	if err != nil {
		return fmt.Errorf("verify %s: read: %w", entry.Path, err)
	}
	if uint64(n) != entry.Size {
		return fmt.Errorf("%w: %s has size %d, manifest says %d", ErrSizeMismatch, entry.Path, n, entry.Size)
	}
	if h == nil {
		return nil
	}
	if want := 2 * entry.Algorithm.Size(); len(entry.Checksum) != want {
		return fmt.Errorf("%w: %s has a %s checksum of %d hex digits in the manifest, want %d",
			ErrChecksumMismatch, entry.Path, entry.Algorithm, len(entry.Checksum), want)
	}
	var got string
	if crc != nil {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], crc.Sum32())
		got = hex.EncodeToString(b[:])
	} else {
		got = hex.EncodeToString(h.Sum(nil))
	}
	if got != entry.Checksum {
		return fmt.Errorf("%w: %s has %s %s, manifest says %s", ErrChecksumMismatch, entry.Path, entry.Algorithm, got, entry.Checksum)
	}
	return nil
}
