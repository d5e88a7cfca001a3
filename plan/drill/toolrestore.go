package drill

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/audit/codec"
	"github.com/walaudit/walaudit/audit/layout"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/walname"
)

// ErrToolNeeded is wrapped when a backup can only be restored by its own
// tool's restore command and walaudit could not run it (the tool is not
// installed, or the repository is where the tool cannot be pointed at).
// The message names the command to run.
var ErrToolNeeded = errors.New("the backup tool's own restore is needed")

// errNotNative marks pgBackRest backups walaudit does not restore itself
// (bundles, block incremental, encryption): pgbackrest restore is tried.
var errNotNative = errors.New("not supported natively")

// IsToolBackup reports whether b is described by a backup tool's
// repository (pgBackRest, WAL-G, Barman) rather than being a
// pg_basebackup output: [RestoreFromTool] restores it.
func IsToolBackup(b *backup.Backup) bool {
	if b == nil || b.Format == backup.FormatPlain || b.Format == backup.FormatTar {
		return false
	}
	switch b.Source {
	case layout.SourcePgBackRest, layout.SourceWALG, layout.SourceBarman:
		return true
	}
	return false
}

// RestoreFromTool restores backup b, read from the repository of archive
// arch (pgBackRest, WAL-G or Barman), into scratch with the same layout,
// ownership and guarantees as [Restore]: scratch/data, tablespaces in
// scratch/tblspc/<oid> linked from pg_tblspc, tablespace_map removed.
//
// pgBackRest backups that store whole files (full, differential and
// incremental; compressed or not) are restored natively: the backup's
// backup.manifest is read (its backrest-checksum verified), the files of
// [target:file] are fetched from the backup that holds them (the entry's
// reference, else the backup itself), and each is checked against the
// size and SHA-1 the manifest records; a mismatch returns the Restored
// value with Problems and an error wrapping [ErrVerification]. Bundled
// files (repo-bundle) are read from their bundle at the recorded offset.
// Block-incremental and encrypted backups are restored with `pgbackrest
// restore` when pgbackrest is installed. WAL-G backups are restored with
// `wal-g backup-fetch`. Barman backups need `barman recover` with
// Barman's configuration, which walaudit does not have: the error says so.
// A tool that is needed but not installed gives an error wrapping
// [ErrToolNeeded].
func RestoreFromTool(ctx context.Context, arch *audit.Archive, b *backup.Backup, scratch string, user *pgserver.OSUser) (*Restored, error) {
	if b == nil {
		return nil, errors.New("restore: no backup")
	}
	if arch == nil || arch.Inv == nil || arch.Inv.Store == nil {
		return nil, fmt.Errorf("restore %s: the archive's store is not known", b.ID)
	}
	if user == nil {
		user = &pgserver.OSUser{}
	}
	st := arch.Inv.Store
	switch b.Source {
	case layout.SourcePgBackRest:
		r, err := restorePgBackRest(ctx, st, b, scratch, user)
		if !errors.Is(err, errNotNative) {
			return r, err
		}
		why := err.Error()
		if _, lerr := exec.LookPath("pgbackrest"); lerr != nil {
			return nil, fmt.Errorf("%w: pgBackRest backup %s: %s; run `pgbackrest --stanza=%s --set=%s restore` (pgbackrest is not installed here)", ErrToolNeeded, b.ID, why, pgbrStanza(b), b.ID)
		}
		return runPgBackRestRestore(ctx, st, b, scratch, user, why)
	case layout.SourceWALG:
		return runWALGRestore(ctx, st, b, scratch, user)
	case layout.SourceBarman:
		return nil, fmt.Errorf("%w: Barman backup %s is restored with `barman recover <server> %s <destination>` (Barman 3: `barman restore`); walaudit could not run it here because Barman restores from its own catalogue, configured in barman.conf, which walaudit does not have; restore it with Barman into a scratch directory and drill that with --backups", ErrToolNeeded, b.ID, b.ID)
	}
	return nil, fmt.Errorf("restore %s: no backup files to restore (known only from %s)", b.ID, b.Source)
}

// RestoredControl reads the restored global/pg_control (nil when it is
// missing or undecodable): backup tools' catalogues do not carry it.
func RestoredControl(r *Restored) *backup.Control {
	if r == nil {
		return nil
	}
	data, err := readSmall(filepath.Join(r.DataDir, "global", "pg_control"), 1<<16)
	if err != nil {
		return nil
	}
	c, err := backup.ParseControl(data)
	if err != nil {
		return nil
	}
	return c
}

// pgbrStanza is the stanza of a pgBackRest backup (b.Path is
// [prefix]backup/<stanza>/<label>).
func pgbrStanza(b *backup.Backup) string { return path.Base(path.Dir(b.Path)) }

// pgbrManifest is a backup.manifest: sections of key=raw JSON value.
type pgbrManifest struct {
	sections map[string]map[string]string
	order    []string
}

func (m *pgbrManifest) str(section, key string) string {
	var s string
	if v, ok := m.sections[section][key]; ok && json.Unmarshal([]byte(v), &s) == nil {
		return s
	}
	return ""
}

func (m *pgbrManifest) keys(section string) []string {
	out := make([]string, 0, len(m.sections[section]))
	for k := range m.sections[section] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parsePgbrManifest parses pgBackRest's INI dialect.
func parsePgbrManifest(data []byte) (*pgbrManifest, error) {
	m := &pgbrManifest{sections: map[string]map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	section, line := "", 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		if s[0] == '[' {
			if !strings.HasSuffix(s, "]") || len(s) < 3 {
				return nil, fmt.Errorf("line %d: malformed section header", line)
			}
			section = s[1 : len(s)-1]
			if m.sections[section] == nil {
				m.sections[section] = map[string]string{}
				m.order = append(m.order, section)
			}
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if section == "" || !ok || k == "" {
			return nil, fmt.Errorf("line %d: want key=value in a section", line)
		}
		m.sections[section][k] = v
	}
	return m, sc.Err()
}

// checksumOK verifies [backrest] backrest-checksum (see audit/layout).
func (m *pgbrManifest) checksumOK() (match, ok bool) {
	want := m.str("backrest", "backrest-checksum")
	if want == "" {
		return false, false
	}
	jsonString := func(s string) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return strings.TrimSuffix(buf.String(), "\n")
	}
	var b strings.Builder
	b.WriteByte('{')
	secs := append([]string(nil), m.order...)
	sort.Strings(secs)
	first := true
	for _, s := range secs {
		var keys []string
		for _, k := range m.keys(s) {
			if !(s == "backrest" && k == "backrest-checksum") {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(jsonString(s) + ":{")
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonString(k) + ":" + m.sections[s][k])
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	sum := sha1.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:]) == want, true
}

// pgbrFile is one [target:file] value.
type pgbrFile struct {
	Size      *int64          `json:"size"`
	Checksum  string          `json:"checksum"`
	Reference string          `json:"reference"`
	RepoSize  *int64          `json:"repo-size"`
	BundleID  *uint64         `json:"bni"`
	BundleOff int64           `json:"bno"`
	Mode      string          `json:"mode"`
	BlockIncr json.RawMessage `json:"bi"`
	BlockMap  json.RawMessage `json:"bim"`
}

// pgbrLabelOK accepts what a pgBackRest backup label may look like: no
// separators, nothing that climbs.
func pgbrLabelOK(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// pgbrSuffix maps option-compress-type to the repository file suffix.
func pgbrSuffix(m *pgbrManifest) (walname.Compression, error) {
	t := m.str("backup:option", "option-compress-type")
	if t == "" {
		if m.sections["backup:option"]["option-compress"] == "true" {
			t = "gz"
		} else {
			t = "none"
		}
	}
	switch t {
	case "none":
		return walname.CompressNone, nil
	case "gz", "lz4", "zst", "bz2", "xz":
		return walname.Compression(t), nil
	}
	return "", fmt.Errorf("%w: compression type %q", errNotNative, t)
}

// parseMode reads an octal mode, keeping only permission bits a data
// directory may have (no setuid, no world access).
func parseMode(s string, def os.FileMode) os.FileMode {
	if s == "" {
		return def
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return def
	}
	return os.FileMode(v) & 0o750
}

// restorePgBackRest restores a pgBackRest backup natively.
func restorePgBackRest(ctx context.Context, st store.Store, b *backup.Backup, scratch string, user *pgserver.OSUser) (*Restored, error) {
	key := b.Path + "/backup.manifest"
	data, err := readStoreObject(ctx, st, key, 512<<20)
	var m *pgbrManifest
	if err == nil {
		m, err = usableManifest(data)
	}
	if err != nil && !errors.Is(err, errNotNative) {
		// pgBackRest falls back to the copy too.
		data2, err2 := readStoreObject(ctx, st, key+".copy", 512<<20)
		if err2 == nil {
			if m2, err3 := usableManifest(data2); err3 == nil || errors.Is(err3, errNotNative) {
				key, m, err = key+".copy", m2, err3
			}
		}
	}
	if err != nil {
		if errors.Is(err, errNotNative) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: pgBackRest backup %s: %s: %v", ErrVerification, b.ID, key, err)
	}
	if l := m.str("backup", "backup-label"); l != "" && l != b.ID {
		return nil, fmt.Errorf("%w: %s names backup %q, not %s", ErrVerification, key, l, b.ID)
	}
	suffix, err := pgbrSuffix(m)
	if err != nil {
		return nil, err
	}
	backupDir := path.Dir(b.Path) + "/"

	// Everything is checked before anything is written.
	type job struct {
		name string // manifest name
		f    pgbrFile
		ref  string
	}
	var jobs []job
	tsOIDs := map[uint32]string{} // oid -> original location
	for _, name := range m.keys("target:file") {
		var f pgbrFile
		if err := json.Unmarshal([]byte(m.sections["target:file"][name]), &f); err != nil {
			return nil, fmt.Errorf("%w: %s: file %q: %v", ErrVerification, key, name, err)
		}
		if len(f.BlockIncr) > 0 || len(f.BlockMap) > 0 {
			return nil, fmt.Errorf("%w: backup %s is a block-incremental backup (file %s)", errNotNative, b.ID, name)
		}
		if f.Size == nil || *f.Size < 0 {
			return nil, fmt.Errorf("%w: %s: file %q has no size", ErrVerification, key, name)
		}
		if why := pgbrNameUnsafe(name); why != "" {
			return nil, fmt.Errorf("%w: %s: file %q %s; restore refused before anything was written", ErrUnsafeEntry, key, name, why)
		}
		ref := b.ID
		if f.Reference != "" {
			ref = f.Reference
		}
		if !pgbrLabelOK(ref) {
			return nil, fmt.Errorf("%w: %s: file %q refers to backup %q, which is not a backup label", ErrUnsafeEntry, key, name, ref)
		}
		jobs = append(jobs, job{name, f, ref})
	}
	for _, name := range m.keys("backup:target") {
		if oid, ok := tablespaceTargetName(name); ok {
			var t struct {
				Path string `json:"path"`
			}
			_ = json.Unmarshal([]byte(m.sections["backup:target"][name]), &t)
			tsOIDs[oid] = t.Path
		}
	}

	abs, err := filepath.Abs(scratch)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	r := &Restored{Scratch: abs, DataDir: filepath.Join(abs, "data"),
		Tablespaces: map[uint32]string{}, OriginalTablespaces: map[uint32]string{}, Manifest: true}
	if err := prepareScratch(r, user); err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	x := &extractor{ctx: ctx, user: user, r: r, dirs: map[string]bool{r.DataDir: true},
		files: map[string]bool{}, tsLinks: map[uint32]string{}, tarOIDs: map[uint32]bool{},
		buf: make([]byte, 256<<10)}
	base := &area{kind: areaBase, root: r.DataDir, source: key}
	tsAreas := map[uint32]*area{}
	areaOf := func(name string) (*area, string, error) {
		if rel, ok := strings.CutPrefix(name, "pg_data/"); ok {
			return base, rel, nil
		}
		if rest, ok := strings.CutPrefix(name, "pg_tblspc/"); ok {
			o, rel, _ := strings.Cut(rest, "/")
			oid, ok := parseOID(o)
			if !ok {
				return nil, "", x.refuse(base, name, "is not below pg_data/ or pg_tblspc/<oid>/")
			}
			if a := tsAreas[oid]; a != nil {
				return a, rel, nil
			}
			root, err := x.tablespaceDir(oid)
			if err != nil {
				return nil, "", err
			}
			a := &area{kind: areaTablespace, root: root, source: key, prefix: "pg_tblspc/" + o + "/"}
			tsAreas[oid] = a
			return a, rel, nil
		}
		return nil, "", x.refuse(base, name, "is not below pg_data/ or pg_tblspc/<oid>/")
	}
	for oid, loc := range tsOIDs {
		x.tsLinks[oid] = loc
		if _, _, err := areaOf("pg_tblspc/" + strconv.FormatUint(uint64(oid), 10) + "/"); err != nil {
			return nil, fmt.Errorf("restore %s: %w", b.ID, err)
		}
	}
	for _, name := range m.keys("target:link") {
		rel, ok := strings.CutPrefix(name, "pg_data/")
		if oid, isTS := tablespaceLinkName(rel); ok && isTS {
			var l struct {
				Destination string `json:"destination"`
			}
			_ = json.Unmarshal([]byte(m.sections["target:link"][name]), &l)
			if _, known := x.tsLinks[oid]; !known || x.tsLinks[oid] == "" {
				x.tsLinks[oid] = l.Destination
			}
			if _, _, err := areaOf("pg_tblspc/" + strconv.FormatUint(uint64(oid), 10) + "/"); err != nil {
				return nil, fmt.Errorf("restore %s: %w", b.ID, err)
			}
			continue
		}
		// Any other link (pg_wal, a configuration file) is restored as a
		// real directory or file in place of the link.
		r.Notes = append(r.Notes, fmt.Sprintf("%s was a symbolic link in the backed-up cluster; restored as a real directory or file", name))
	}
	for _, name := range m.keys("target:path") {
		if name == "pg_data" || name == "pg_tblspc" {
			continue
		}
		if _, ok := tablespaceTargetName(name); ok {
			continue
		}
		a, rel, err := areaOf(name)
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", b.ID, err)
		}
		if rel == "" {
			continue
		}
		if a == base {
			if _, isTS := tablespaceLinkName(rel); isTS {
				continue // linked by finishTablespaces
			}
		}
		if err := x.put(a, entry{name: rel, kind: kindDir}); err != nil {
			return nil, fmt.Errorf("restore %s: %w", b.ID, err)
		}
	}
	fileMode := parseMode(m.str("target:file:default", "mode"), 0o600)
	var problems []string
	for _, j := range jobs {
		a, rel, err := areaOf(j.name)
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", b.ID, err)
		}
		size := *j.f.Size
		var body io.Reader = bytes.NewReader(nil)
		var closer io.Closer
		if size > 0 {
			rc, err := openPgbrFile(ctx, st, backupDir+j.ref, j.name, j.f, suffix)
			if err != nil {
				return nil, fmt.Errorf("restore %s: file %s (from backup %s): %w", b.ID, j.name, j.ref, err)
			}
			body, closer = codec.LimitReader(rc, size+1), rc
		}
		h := sha1.New()
		cnt := &countWriter{w: h}
		err = x.put(a, entry{name: rel, kind: kindReg, size: size, body: io.TeeReader(body, cnt)})
		if closer != nil {
			closer.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", b.ID, err)
		}
		dst := filepath.Join(a.root, filepath.FromSlash(path.Clean(rel)))
		if err := os.Chmod(dst, parseMode(j.f.Mode, fileMode)); err != nil {
			return nil, err
		}
		sum := hex.EncodeToString(h.Sum(nil))
		switch {
		case cnt.n != size:
			problems = append(problems, fmt.Sprintf("%q has size %d in the repository but %d in backup.manifest", j.name, cnt.n, size))
		case j.f.Checksum != "" && !strings.EqualFold(sum, j.f.Checksum):
			problems = append(problems, fmt.Sprintf("%q has SHA-1 %s in the repository but %s in backup.manifest", j.name, sum, j.f.Checksum))
		default:
			r.Verified++
		}
	}
	if err := x.finishTablespaces(base, backup.FormatPlain); err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	if _, err := x.mkdirs(base, "pg_wal/archive_status", "pg_wal/archive_status"); err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	sort.Strings(r.WALFiles)
	r.Notes = append(r.Notes, fmt.Sprintf("restored natively from pgBackRest backup %s: %d files checked against backup.manifest (size and SHA-1)", b.ID, len(jobs)))
	if len(problems) > 0 {
		r.Problems = problems
		return r, fmt.Errorf("%w: pgBackRest backup %s: %d problem(s): %s", ErrVerification, b.ID, len(problems), summarize(problems, 5))
	}
	return r, nil
}

// pgbrNameUnsafe says why a [target:file] name may not be used to find
// the file in the repository or to write it, or returns "": it must be
// pg_data/<path> or pg_tblspc/<oid>/<path> with a clean relative path.
func pgbrNameUnsafe(name string) string {
	rel, ok := strings.CutPrefix(name, "pg_data/")
	if !ok {
		rest, ok := strings.CutPrefix(name, "pg_tblspc/")
		o, r, _ := strings.Cut(rest, "/")
		if _, isOID := parseOID(o); !ok || !isOID {
			return "is not below pg_data/ or pg_tblspc/<oid>/"
		}
		rel = r
	}
	c, why := cleanName(rel)
	if why != "" {
		return why
	}
	if c != rel || c == "." {
		return "is not a clean relative path"
	}
	return ""
}

// tablespaceTargetName recognises pg_tblspc/<oid> (a [backup:target] or
// [target:path] name).
func tablespaceTargetName(name string) (uint32, bool) {
	s, ok := strings.CutPrefix(name, "pg_tblspc/")
	if !ok || strings.Contains(s, "/") {
		return 0, false
	}
	return parseOID(s)
}

// usableManifest parses a manifest and says whether walaudit restores it.
func usableManifest(data []byte) (*pgbrManifest, error) {
	if bytes.HasPrefix(data, []byte("Salted__")) {
		return nil, fmt.Errorf("%w: the repository is encrypted (repo-cipher-type)", errNotNative)
	}
	m, err := parsePgbrManifest(data)
	if err != nil {
		return nil, err
	}
	if match, ok := m.checksumOK(); ok && !match {
		return nil, errors.New("backup.manifest fails its backrest-checksum")
	}
	if m.sections["cipher"] != nil {
		return nil, fmt.Errorf("%w: the repository is encrypted (repo-cipher-type)", errNotNative)
	}
	if m.sections["backup:option"]["option-block-incr"] == "true" {
		return nil, fmt.Errorf("%w: block-incremental backup", errNotNative)
	}
	return m, nil
}

// openPgbrFile opens one file's content in the repository, decompressed.
func openPgbrFile(ctx context.Context, st store.Store, dir, name string, f pgbrFile, suffix walname.Compression) (io.ReadCloser, error) {
	var rc io.ReadCloser
	var err error
	if f.BundleID != nil {
		if f.RepoSize == nil || *f.RepoSize <= 0 || f.BundleOff < 0 {
			return nil, fmt.Errorf("%w: bundled file without its repo-size or offset", ErrVerification)
		}
		rc, err = store.OpenRange(ctx, st, dir+"/bundle/"+strconv.FormatUint(*f.BundleID, 10), f.BundleOff, *f.RepoSize)
	} else {
		k := dir + "/" + name
		if suffix != walname.CompressNone {
			k += "." + string(suffix)
		}
		rc, err = st.Open(ctx, k)
	}
	if err != nil {
		return nil, err
	}
	if suffix == walname.CompressNone {
		return rc, nil
	}
	c, ok := codec.ForSuffix(suffix)
	if !ok {
		rc.Close()
		return nil, fmt.Errorf("%w: compression %q", errNotNative, suffix)
	}
	zr, err := codec.NewReader(c, rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &stackCloser{ReadCloser: zr, under: rc}, nil
}

type stackCloser struct {
	io.ReadCloser
	under io.Closer
}

// Close closes the decompressor and the object.
func (s *stackCloser) Close() error {
	err := s.ReadCloser.Close()
	if e := s.under.Close(); err == nil {
		err = e
	}
	return err
}

// readStoreObject reads a whole object, refusing more than max bytes.
func readStoreObject(ctx context.Context, st store.Store, key string, max int64) ([]byte, error) {
	rc, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", key, max)
	}
	return data, nil
}

// localRoot is the directory of a local store, "" for any other.
func localRoot(st store.Store) string {
	if l, ok := st.(*store.Local); ok {
		return l.Root()
	}
	return ""
}

// toolScratch prepares scratch for a tool's own restore and returns the
// Restored value to fill.
func toolScratch(b *backup.Backup, scratch string, user *pgserver.OSUser) (*Restored, error) {
	abs, err := filepath.Abs(scratch)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	r := &Restored{Scratch: abs, DataDir: filepath.Join(abs, "data"),
		Tablespaces: map[uint32]string{}, OriginalTablespaces: map[uint32]string{}}
	if err := prepareScratch(r, user); err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	return r, nil
}

// runTool runs a restore command as user and returns its output on failure.
func runTool(ctx context.Context, user *pgserver.OSUser, dir string, env []string, name string, args ...string) error {
	cmd := user.Command(name, dir, args...)
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, clipTail(out.String(), 4000))
		}
		return nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}

func clipTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// finishToolRestore relinks tablespaces into scratch and counts the files.
func finishToolRestore(ctx context.Context, r *Restored, user *pgserver.OSUser) error {
	x := &extractor{ctx: ctx, user: user, r: r, dirs: map[string]bool{r.DataDir: true},
		files: map[string]bool{}, tsLinks: map[uint32]string{}, tarOIDs: map[uint32]bool{}}
	base := &area{kind: areaBase, root: r.DataDir, source: "the restored data directory"}
	if ents, err := os.ReadDir(filepath.Join(r.DataDir, "pg_tblspc")); err == nil {
		for _, e := range ents {
			oid, ok := parseOID(e.Name())
			if !ok {
				continue
			}
			link := filepath.Join(r.DataDir, "pg_tblspc", e.Name())
			t, err := os.Readlink(link)
			if err != nil {
				continue
			}
			if !strings.HasPrefix(t, r.Scratch+string(filepath.Separator)) {
				return fmt.Errorf("the tool restored tablespace %d to %s, outside the scratch directory", oid, t)
			}
			r.Tablespaces[oid] = t
			x.tsLinks[oid] = t
		}
	}
	if err := x.finishTablespaces(base, backup.FormatPlain); err != nil {
		return err
	}
	return filepath.WalkDir(r.Scratch, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				r.Files++
				r.Bytes += fi.Size()
			}
		}
		return nil
	})
}

// runPgBackRestRestore runs pgbackrest restore against a local repository.
func runPgBackRestRestore(ctx context.Context, st store.Store, b *backup.Backup, scratch string, user *pgserver.OSUser, why string) (*Restored, error) {
	root := localRoot(st)
	stanza := pgbrStanza(b)
	repo := path.Dir(path.Dir(path.Dir(b.Path))) // strip backup/<stanza>/<label>
	if root == "" {
		return nil, fmt.Errorf("%w: pgBackRest backup %s: %s; run `pgbackrest --stanza=%s --set=%s restore` with the repository's own configuration (walaudit runs it only for a local repository)", ErrToolNeeded, b.ID, why, stanza, b.ID)
	}
	// Everything the tool needs is read before scratch is prepared.
	data, _ := readStoreObject(ctx, st, b.Path+"/backup.manifest", 512<<20)
	var oids []uint32
	if m, err := parsePgbrManifest(data); err == nil {
		for _, name := range m.keys("backup:target") {
			if oid, ok := tablespaceTargetName(name); ok {
				oids = append(oids, oid)
			}
		}
	}
	r, err := toolScratch(b, scratch, user)
	if err != nil {
		return nil, err
	}
	work := filepath.Join(r.Scratch, "pgbackrest")
	for _, d := range []string{work, filepath.Join(work, "log"), filepath.Join(work, "lock"), filepath.Join(work, "spool")} {
		if err := user.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(work, "pgbackrest.conf") // empty: everything is on the command line
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return nil, err
	}
	if err := user.Chown(conf); err != nil {
		return nil, err
	}
	args := []string{"--config=" + conf, "--stanza=" + stanza, "--repo1-path=" + filepath.Join(root, filepath.FromSlash(repo)),
		"--pg1-path=" + r.DataDir, "--set=" + b.ID, "--type=none", "--log-level-console=warn", "--log-level-file=off",
		"--lock-path=" + filepath.Join(work, "lock"), "--log-path=" + filepath.Join(work, "log"), "--spool-path=" + filepath.Join(work, "spool")}
	for _, oid := range oids {
		d, err := (&extractor{user: user, r: r, dirs: map[string]bool{}}).tablespaceDir(oid)
		if err != nil {
			return nil, err
		}
		args = append(args, fmt.Sprintf("--tablespace-map=%d=%s", oid, d))
	}
	args = append(args, "restore")
	if err := runTool(ctx, user, r.Scratch, nil, "pgbackrest", args...); err != nil {
		return nil, fmt.Errorf("restore %s with pgbackrest (%s): %w", b.ID, why, err)
	}
	_ = os.RemoveAll(work)
	if err := finishToolRestore(ctx, r, user); err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	r.Notes = append(r.Notes, fmt.Sprintf("restored with `pgbackrest restore --set=%s --type=none`: %s", b.ID, why))
	return r, nil
}

// runWALGRestore runs wal-g backup-fetch against a local WAL-G prefix.
func runWALGRestore(ctx context.Context, st store.Store, b *backup.Backup, scratch string, user *pgserver.OSUser) (*Restored, error) {
	cmdline := fmt.Sprintf("`wal-g backup-fetch <directory> %s`", b.ID)
	if _, err := exec.LookPath("wal-g"); err != nil {
		return nil, fmt.Errorf("%w: WAL-G backup %s is restored with %s; wal-g is not installed here", ErrToolNeeded, b.ID, cmdline)
	}
	root := localRoot(st)
	if root == "" {
		return nil, fmt.Errorf("%w: WAL-G backup %s is restored with %s and the storage settings (WALG_S3_PREFIX…) of the repository; walaudit runs it only for a local WAL-G directory", ErrToolNeeded, b.ID, cmdline)
	}
	// b.Path is [prefix]basebackups_005/<name>: the WAL-G prefix is above.
	prefix := filepath.Join(root, filepath.FromSlash(path.Dir(path.Dir(b.Path))))
	r, err := toolScratch(b, scratch, user)
	if err != nil {
		return nil, err
	}
	env := []string{"WALG_FILE_PREFIX=" + prefix}
	if err := runTool(ctx, user, r.Scratch, env, "wal-g", "backup-fetch", r.DataDir, b.ID); err != nil {
		return nil, fmt.Errorf("restore %s with wal-g: %w", b.ID, err)
	}
	if err := os.Chmod(r.DataDir, 0o700); err != nil {
		return nil, err
	}
	if err := finishToolRestore(ctx, r, user); err != nil {
		return nil, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	r.Notes = append(r.Notes, "restored with wal-g backup-fetch (WALG_FILE_PREFIX="+prefix+")")
	return r, nil
}

// ToolRestoreSize is what restoring a pgBackRest backup writes, from its
// backup.manifest; ok is false for other tools (their size is not known
// before the restore).
func ToolRestoreSize(ctx context.Context, st store.Store, b *backup.Backup) (bytes, files int64, ok bool) {
	if b == nil || b.Source != layout.SourcePgBackRest || st == nil {
		return 0, 0, false
	}
	data, err := readStoreObject(ctx, st, b.Path+"/backup.manifest", 512<<20)
	if err != nil {
		return 0, 0, false
	}
	m, err := parsePgbrManifest(data)
	if err != nil {
		return 0, 0, false
	}
	for _, v := range m.sections["target:file"] {
		var f pgbrFile
		if json.Unmarshal([]byte(v), &f) == nil && f.Size != nil {
			bytes += *f.Size
			files++
		}
	}
	return bytes, files, true
}

// ToolSpaceCheck is [SpaceCheck] for a backup in a tool's repository:
// sizes from a pgBackRest backup.manifest; for WAL-G and Barman, whose
// restored size is not known beforehand, only the WAL to replay and the
// margin are checked.
func ToolSpaceCheck(ctx context.Context, arch *audit.Archive, parent string, b *backup.Backup, walBytes int64) error {
	var st store.Store
	if arch != nil && arch.Inv != nil {
		st = arch.Inv.Store
	}
	data, files, _ := ToolRestoreSize(ctx, st, b)
	var fs syscall.Statfs_t
	if err := syscall.Statfs(parent, &fs); err != nil {
		return fmt.Errorf("statfs %s: %w", parent, err)
	}
	avail := int64(fs.Bavail) * int64(fs.Bsize)
	margin := max((data+walBytes)/20, 64<<20)
	if need := data + walBytes + margin; avail < need {
		return fmt.Errorf("not enough space in %s to restore backup %s: %s needed (backup %s from its %s catalogue, WAL to replay %s, margin %s), %s available",
			parent, b.ID, human(need), human(data), b.Source, human(walBytes), human(margin), human(avail))
	}
	if fs.Ffree > 0 && int64(fs.Ffree) < files+64 {
		return fmt.Errorf("not enough inodes in %s to restore backup %s: %d files needed, %d free", parent, b.ID, files+64, fs.Ffree)
	}
	return nil
}
