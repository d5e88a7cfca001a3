// Package walcache keeps WAL segment summaries ([wal.SegmentSummary])
// between runs, keyed by the identity of the file they were made from, so
// that checking an unchanged archive again decodes nothing and checking a
// growing one decodes only the new segments.
//
// The cache is one SQLite database in WAL journal mode, read and written
// by several processes at once (a metrics server and cron checks, say):
// readers never block, a writer waits for another (busy timeout) rather
// than failing. It is a cache: a row that is damaged, of another summary
// format or of a file that changed since is a miss, never an error, and
// the caller scans the file again and puts the new summary.
package walcache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/walaudit/walaudit/audit/wal"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// FileName is the database file in the cache directory (SQLite adds
// -wal and -shm files next to it).
const FileName = "summaries.sqlite"

// schemaVersion is the layout of the table; a database with another one
// is emptied and rebuilt (it is a cache).
const schemaVersion = 1

// busyTimeout is how long a writer waits for another process's write.
const busyTimeout = 10 * time.Second

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Key identifies the file a summary was made from. A file whose size,
// modification time or entity tag differs from the key's is another file:
// its summary is not used.
type Key struct {
	// Location is the store the file is in, as the audit names it, e.g.
	// "file:///srv/wal" or "s3://bucket/prefix".
	Location string
	// Object is the file's key in the store (its path in a directory).
	Object string
	// Size is the stored (possibly compressed) size in bytes.
	Size int64
	// ModTime is the store's modification time.
	ModTime time.Time
	// ETag is an entity tag or content checksum when the store has one
	// (S3 ETag, pgBackRest's SHA-1 in the name), else empty.
	ETag string
}

// Cache is a summary cache. Its methods are safe for concurrent use, and
// several processes may use the same directory at once. The zero value
// and the nil pointer behave as [Disabled].
type Cache struct {
	db   *sql.DB
	path string
	get  *sql.Stmt
	put  *sql.Stmt

	// mem holds every row of the locations read so far, loaded with one
	// query per location: an audit asks for thousands of segments of the
	// same archive, and one round trip per segment would dominate a warm
	// check.
	mu     sync.Mutex
	mem    map[memKey]*memRow
	loaded map[string]bool
}

type memKey struct{ location, object string }

// memRow is a row of the current summary format whose CRC matched. Its
// summary is decoded at the first Get and then shared by every later one
// (a process that checks repeatedly decodes each segment once).
type memRow struct {
	size, mtime int64
	etag        string
	blob        []byte              // the encoded summary, nil once sum is set
	sum         *wal.SegmentSummary // decoded, or as put
}

// Disabled returns a cache that keeps nothing: Get always misses, Put
// does nothing.
func Disabled() *Cache { return &Cache{} }

// DefaultDir is where Open("") keeps the cache: $WALAUDIT_CACHE_DIR when
// set, else the user's cache directory (os.UserCacheDir), subdirectory
// walaudit.
func DefaultDir() (string, error) {
	if d := os.Getenv("WALAUDIT_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("walcache: no cache directory: %w", err)
	}
	return filepath.Join(d, "walaudit"), nil
}

// Open opens (creating it if needed) the cache in dir, or in
// [DefaultDir] when dir is empty.
func Open(dir string) (*Cache, error) {
	if dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("walcache: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("walcache: %w", err)
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL") // a crash may lose the last puts, never corrupt
	q.Set("_txlock", "immediate")   // writers queue at BEGIN instead of deadlocking on upgrade
	dsn := (&url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("walcache: open %s: %w", path, err)
	}
	c := &Cache{db: db, path: path}
	if err := c.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("walcache: open %s: %w", path, err)
	}
	return c, nil
}

// init creates the table, or rebuilds it when its layout is another.
func (c *Cache) init() error {
	ctx := context.Background()
	// The table and user_version are set in one transaction: a database
	// of this layout needs no write lock (which would wait for another
	// process's writes) just to be opened.
	var v int
	if err := c.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v != schemaVersion {
		if err := c.create(ctx); err != nil {
			return err
		}
	}
	var err error
	if c.get, err = c.db.Prepare(`SELECT size, mtime_ns, etag, version, summary, crc
		FROM summaries WHERE location = ? AND object = ?`); err != nil {
		return err
	}
	c.put, err = c.db.Prepare(`INSERT INTO summaries
		(location, object, size, mtime_ns, etag, version, summary, crc, stored_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (location, object) DO UPDATE SET
		size = excluded.size, mtime_ns = excluded.mtime_ns, etag = excluded.etag,
		version = excluded.version, summary = excluded.summary, crc = excluded.crc,
		stored_at = excluded.stored_at`)
	return err
}

// create makes the table, dropping one of another layout.
func (c *Cache) create(ctx context.Context) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v != schemaVersion {
		if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS summaries"); err != nil {
			return err
		}
	}
	// One row per file: a replaced file's row is overwritten.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS summaries (
		location  TEXT    NOT NULL,
		object    TEXT    NOT NULL,
		size      INTEGER NOT NULL,
		mtime_ns  INTEGER NOT NULL,
		etag      TEXT    NOT NULL,
		version   INTEGER NOT NULL,
		summary   BLOB    NOT NULL,
		crc       INTEGER NOT NULL,
		stored_at INTEGER NOT NULL,
		PRIMARY KEY (location, object)
	) WITHOUT ROWID`); err != nil {
		return err
	}
	if v != schemaVersion {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Path is the database file, "" for a disabled cache.
func (c *Cache) Path() string {
	if c == nil {
		return ""
	}
	return c.path
}

// Get returns the summary kept for the file k names, and whether there
// is one. A summary of a file with another size, modification time or
// entity tag, of another [wal.SummaryVersion], or a damaged row, is a
// miss. The error is for a database that cannot be read (an audit can
// treat it as a miss too).
//
// The summary is shared with other callers of Get in this process: it
// must not be modified.
func (c *Cache) Get(ctx context.Context, k Key) (*wal.SegmentSummary, bool, error) {
	if c == nil || c.db == nil {
		return nil, false, nil
	}
	r, err := c.memGet(ctx, k)
	if err != nil {
		return nil, false, fmt.Errorf("walcache: get %s %s: %w", k.Location, k.Object, err)
	}
	if !r.matches(k) {
		// Another process may have put it, or the new file's, since.
		if r, err = c.dbGet(ctx, k); err != nil {
			return nil, false, fmt.Errorf("walcache: get %s %s: %w", k.Location, k.Object, err)
		}
		if !r.matches(k) {
			return nil, false, nil
		}
	}
	c.mu.Lock()
	sum, blob := r.sum, r.blob
	c.mu.Unlock()
	if sum != nil {
		return sum, true, nil
	}
	// Decoded outside the lock, so that the callers' workers decode in
	// parallel; two decoding the same row is harmless, the first wins.
	sum = new(wal.SegmentSummary)
	if err := sum.UnmarshalBinary(blob); err != nil {
		return nil, false, nil
	}
	c.mu.Lock()
	if r.sum == nil {
		r.sum, r.blob = sum, nil
	}
	sum = r.sum
	c.mu.Unlock()
	return sum, true, nil
}

func (r *memRow) matches(k Key) bool {
	return r != nil && r.size == k.Size && r.mtime == k.ModTime.UnixNano() && r.etag == k.ETag
}

// memGet returns the row kept in memory for k's object (of any file
// identity), nil when there is none. It loads the rows of k's location,
// all with one query, the first time.
func (c *Cache) memGet(ctx context.Context, k Key) (*memRow, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded[k.Location] {
		if err := c.load(ctx, k.Location); err != nil {
			return nil, err
		}
	}
	return c.mem[memKey{k.Location, k.Object}], nil
}

// dbGet reads k's object's row from the database and keeps it in memory;
// nil when there is none or it is damaged.
func (c *Cache) dbGet(ctx context.Context, k Key) (*memRow, error) {
	// Scanned as driver values, so that a row of unexpected types is a
	// miss rather than a conversion error.
	var size, mtime, etag, version, blob, crc any
	err := c.get.QueryRowContext(ctx, k.Location, k.Object).Scan(&size, &mtime, &etag, &version, &blob, &crc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	r := newRow(size, mtime, etag, version, blob, crc)
	if r != nil {
		c.mu.Lock()
		c.mem[memKey{k.Location, k.Object}] = r
		c.mu.Unlock()
	}
	return r, nil
}

// load reads every row of location into memory; c.mu is held.
func (c *Cache) load(ctx context.Context, location string) error {
	rows, err := c.db.QueryContext(ctx, `SELECT object, size, mtime_ns, etag, version, summary, crc
		FROM summaries WHERE location = ?`, location)
	if err != nil {
		return err
	}
	defer rows.Close()
	if c.mem == nil {
		c.mem, c.loaded = map[memKey]*memRow{}, map[string]bool{}
	}
	var obj string
	var size, mtime, etag, version, blob, crc any
	for rows.Next() {
		if err := rows.Scan(&obj, &size, &mtime, &etag, &version, &blob, &crc); err != nil {
			continue // a damaged row is a miss
		}
		if r := newRow(size, mtime, etag, version, blob, crc); r != nil {
			c.mem[memKey{location, obj}] = r
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	c.loaded[location] = true
	return nil
}

// newRow checks a row's types, summary version and CRC, nil when any is
// wrong.
func newRow(size, mtime, etag, version, blob, crc any) *memRow {
	sz, ok1 := size.(int64)
	mt, ok2 := mtime.(int64)
	et, ok3 := etag.(string)
	b, ok4 := blob.([]byte)
	if !ok1 || !ok2 || !ok3 || !ok4 || version != int64(wal.SummaryVersion) || crc != int64(crc32.Checksum(b, castagnoli)) {
		return nil
	}
	return &memRow{size: sz, mtime: mt, etag: et, blob: b}
}

// Put keeps sum as the summary of the file k names, replacing what was
// kept for that object. When several processes put the same object, the
// last one wins; readers see either whole row. Later Gets in this process
// return sum itself: it must not be modified after Put.
func (c *Cache) Put(ctx context.Context, k Key, sum *wal.SegmentSummary) error {
	if c == nil || c.db == nil {
		return nil
	}
	if sum == nil {
		return errors.New("walcache: put of a nil summary")
	}
	b, err := sum.MarshalBinary()
	if err != nil {
		return fmt.Errorf("walcache: encode summary of %s: %w", k.Object, err)
	}
	crc := int64(crc32.Checksum(b, castagnoli))
	_, err = c.put.ExecContext(ctx, k.Location, k.Object, k.Size, k.ModTime.UnixNano(), k.ETag,
		int64(wal.SummaryVersion), b, crc, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("walcache: put %s %s: %w", k.Location, k.Object, err)
	}
	c.mu.Lock()
	if c.loaded[k.Location] {
		c.mem[memKey{k.Location, k.Object}] = &memRow{size: k.Size, mtime: k.ModTime.UnixNano(), etag: k.ETag, sum: sum}
	}
	c.mu.Unlock()
	return nil
}

// Entry is one summary to store with [Cache.PutAll].
type Entry struct {
	Key     Key
	Summary *wal.SegmentSummary
}

// PutAll stores the entries as Put does, in one transaction: a cold check
// stores a summary per segment, and a transaction each cost more than
// the scans.
func (c *Cache) PutAll(ctx context.Context, entries []Entry) error {
	if c == nil || c.db == nil || len(entries) == 0 {
		return nil
	}
	blobs := make([][]byte, len(entries))
	for i, e := range entries {
		if e.Summary == nil {
			return errors.New("walcache: put of a nil summary")
		}
		b, err := e.Summary.MarshalBinary()
		if err != nil {
			return fmt.Errorf("walcache: encode summary of %s: %w", e.Key.Object, err)
		}
		blobs[i] = b
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("walcache: put: %w", err)
	}
	defer tx.Rollback()
	put := tx.StmtContext(ctx, c.put)
	now := time.Now().Unix()
	for i, e := range entries {
		k := e.Key
		crc := int64(crc32.Checksum(blobs[i], castagnoli))
		if _, err := put.ExecContext(ctx, k.Location, k.Object, k.Size, k.ModTime.UnixNano(), k.ETag,
			int64(wal.SummaryVersion), blobs[i], crc, now); err != nil {
			return fmt.Errorf("walcache: put %s %s: %w", k.Location, k.Object, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("walcache: put: %w", err)
	}
	c.mu.Lock()
	for _, e := range entries {
		if k := e.Key; c.loaded[k.Location] {
			c.mem[memKey{k.Location, k.Object}] = &memRow{size: k.Size, mtime: k.ModTime.UnixNano(), etag: k.ETag, sum: e.Summary}
		}
	}
	c.mu.Unlock()
	return nil
}

// Release forgets the rows kept in memory; the next Get of a location
// loads its rows again. A long-running process (metrics --listen) calls it
// after each check, so that its memory does not hold every summary of the
// archive between checks.
func (c *Cache) Release() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.mem, c.loaded = map[memKey]*memRow{}, map[string]bool{}
	c.mu.Unlock()
}

// Close releases the database. A disabled cache's Close does nothing.
func (c *Cache) Close() error {
	if c == nil || c.db == nil {
		return nil
	}
	c.get.Close()
	c.put.Close()
	return c.db.Close()
}
