package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
)

// HotStandbyParams are the settings a hot standby must set at least as
// high as the primary did (CheckRequiredParameterValues in PostgreSQL's
// xlogrecovery.c), else recovery pauses or stops with "insufficient
// parameter settings".
type HotStandbyParams struct {
	MaxConnections     int32 `json:"max_connections"`           // max_connections
	MaxPreparedXacts   int32 `json:"max_prepared_transactions"` // max_prepared_transactions
	MaxLocksPerXact    int32 `json:"max_locks_per_transaction"` // max_locks_per_transaction
	MaxWorkerProcesses int32 `json:"max_worker_processes"`      // max_worker_processes
	MaxWALSenders      int32 `json:"max_wal_senders"`           // max_wal_senders
}

// ParamsFromControl returns the primary's values recorded in pg_control
// (zero for a nil Control).
func ParamsFromControl(c *backup.Control) HotStandbyParams {
	if c == nil {
		return HotStandbyParams{}
	}
	return HotStandbyParams{MaxConnections: c.MaxConnections, MaxPreparedXacts: c.MaxPreparedXacts,
		MaxLocksPerXact: c.MaxLocksPerXact, MaxWorkerProcesses: c.MaxWorkerProcesses, MaxWALSenders: c.MaxWALSenders}
}

// Max returns the larger of each value.
func (p HotStandbyParams) Max(o HotStandbyParams) HotStandbyParams {
	return HotStandbyParams{MaxConnections: max(p.MaxConnections, o.MaxConnections),
		MaxPreparedXacts:   max(p.MaxPreparedXacts, o.MaxPreparedXacts),
		MaxLocksPerXact:    max(p.MaxLocksPerXact, o.MaxLocksPerXact),
		MaxWorkerProcesses: max(p.MaxWorkerProcesses, o.MaxWorkerProcesses),
		MaxWALSenders:      max(p.MaxWALSenders, o.MaxWALSenders)}
}

// Settings are a drill's recovery settings for [WriteRecoveryConfig].
type Settings struct {
	// RestoreCommand is the restore_command (required), e.g. the drill
	// binary's `walaudit wal-fetch --archive URL %f %p`.
	RestoreCommand string
	// Target is the recovery target; the zero value means latest (no
	// recovery_target_* setting: recovery runs to the end of WAL).
	Target plan.Target
	// Exclusive sets recovery_target_inclusive = off (stop just before a
	// time, xid or LSN target instead of just after).
	Exclusive bool
	// Timeline is recovery_target_timeline; the zero value means latest.
	Timeline plan.TimelineSetting
	// Promote sets recovery_target_action = 'promote' instead of 'pause'.
	// Without a target PostgreSQL promotes at the end of WAL whatever the
	// action says.
	Promote bool
	// SocketDir is unix_socket_directories (default: the data directory's
	// parent, the scratch directory) and Port the port in the socket's
	// name (default 5432). The server never listens on TCP.
	SocketDir string
	Port      int // the socket's port number
	// PGMajor is the server's major version, which decides which settings
	// exist; 0 reads the data directory's PG_VERSION.
	PGMajor int
	// Control is the restored pg_control, and WALParams the values of the
	// parameter-change records in the WAL to replay: max_connections,
	// max_prepared_transactions, max_locks_per_transaction,
	// max_worker_processes and max_wal_senders are set to the largest
	// value seen, as a hot standby requires.
	Control   *backup.Control
	WALParams []HotStandbyParams // from XLOG_PARAMETER_CHANGE records
	// Bin is the drill server's binaries, used to find the library
	// directory for shared_preload_libraries (pg_config --pkglibdir, else
	// Bin/../lib); PkgLibDir overrides it.
	Bin       *pgserver.Bin
	PkgLibDir string // overrides the library directory found from Bin
	// PreloadLibraries is production's shared_preload_libraries when its
	// postgresql.conf lives outside the data directory (Debian); nil reads
	// the restored postgresql.conf. A value in the restored
	// postgresql.auto.conf wins either way, as it does in PostgreSQL.
	PreloadLibraries []string
	// SharedBuffers defaults to "32MB", TimeZone (timezone and
	// log_timezone) to "UTC".
	SharedBuffers string
	TimeZone      string // timezone and log_timezone
	// User owns the files written (nil: the current user).
	User *pgserver.OSUser
}

// Setting is one configuration line as written (Value in file syntax).
type Setting struct {
	Name  string `json:"name"`  // the parameter
	Value string `json:"value"` // as written in the file (strings quoted)
}

// ConfigResult says what [WriteRecoveryConfig] wrote and neutralised.
type ConfigResult struct {
	// ConfFile is the postgresql.conf written.
	ConfFile string `json:"conf_file"`
	// Settings are its settings, in file order.
	Settings []Setting `json:"settings"`
	// HotStandby are the max_* values written (zero: unknown, not written).
	HotStandby HotStandbyParams `json:"hot_standby"`
	// PreloadKept and PreloadDropped split production's
	// shared_preload_libraries; PkgLibDir is where libraries were looked for.
	PreloadKept    []string `json:"preload_kept"`
	PreloadDropped []string `json:"preload_dropped"` // missing, denied, or not looked for
	PkgLibDir      string   `json:"pkglibdir"`       // "" when unknown
	// Neutralised names the settings of the restored configuration files
	// that could reach outside the drill or break its start (archive,
	// replication, recovery, listening, libraries, files), each overridden
	// or dropped. Values are never reported: primary_conninfo may hold a
	// password.
	Neutralised []string `json:"neutralised"`
	// AutoConfDropped names every setting the restored postgresql.auto.conf
	// held; the file was emptied.
	AutoConfDropped []string `json:"auto_conf_dropped"`
	// Notes explain decisions in sentences.
	Notes []string `json:"notes"`
}

// riskySettings are settings of a restored configuration that could make a
// drill touch production or fail to start; they are reported when found.
var riskySettings = map[string]bool{
	"archive_mode": true, "archive_command": true, "archive_library": true, "archive_cleanup_command": true,
	"restore_command": true, "recovery_end_command": true, "primary_conninfo": true, "primary_slot_name": true,
	"recovery_target": true, "recovery_target_lsn": true, "recovery_target_name": true, "recovery_target_time": true,
	"recovery_target_xid": true, "recovery_target_action": true, "recovery_target_timeline": true,
	"recovery_target_inclusive": true, "recovery_min_apply_delay": true, "promote_trigger_file": true,
	"hot_standby": true, "listen_addresses": true, "port": true, "unix_socket_directories": true,
	"unix_socket_group": true, "unix_socket_permissions": true, "ssl": true, "huge_pages": true,
	"shared_buffers": true, "shared_preload_libraries": true, "session_preload_libraries": true,
	"local_preload_libraries": true, "data_directory": true, "hba_file": true, "ident_file": true,
	"external_pid_file": true, "logging_collector": true, "log_directory": true, "wal_level": true,
	"max_connections": true, "max_prepared_transactions": true, "max_locks_per_transaction": true,
	"max_worker_processes": true, "max_wal_senders": true, "include": true, "include_if_exists": true,
	"include_dir": true, "dynamic_library_path": true, "synchronous_standby_names": true,
}

// deniedLibraries run jobs or replicate to other servers on their own:
// a drill never loads them, installed or not (pg_cron could run a
// production job against real systems once the drill is promoted).
var deniedLibraries = map[string]string{
	"pg_cron":        "runs scheduled jobs",
	"pg_partman_bgw": "runs partition maintenance jobs",
	"pglogical":      "connects to other nodes to replicate",
}

// WriteRecoveryConfig prepares a restored data directory for a drill's
// archive recovery. It writes a complete postgresql.conf of its own (the
// restored one may be missing, as on Debian, or hostile), empties
// postgresql.auto.conf (which PostgreSQL reads last, so production's
// ALTER SYSTEM settings would win), writes a fresh pg_hba.conf allowing
// only local trust connections, removes standby.signal and recovery.conf,
// and writes recovery.signal.
//
// The configuration holds the restore_command, exactly one normalised
// recovery target (none for latest), recovery_target_inclusive,
// recovery_target_timeline and recovery_target_action; archive_mode = off
// and empty archive, primary connection and slot settings, so the drill
// never pushes WAL to the production archive or connects to a primary;
// listen_addresses empty (no TCP) and a socket in SocketDir (mode 0700); hot_standby
// = on; small shared_buffers; max_* from pg_control and parameter-change
// records; shared_preload_libraries filtered to installed libraries;
// fsync = off (a drill's cluster is throwaway); logging to stderr, which
// pg_ctl -l sends to a file in the scratch directory.
func WriteRecoveryConfig(dataDir string, s Settings) (*ConfigResult, error) {
	if s.RestoreCommand == "" {
		return nil, errors.New("write recovery configuration: no restore_command")
	}
	if s.User == nil {
		s.User = &pgserver.OSUser{}
	}
	if s.SocketDir == "" {
		s.SocketDir = filepath.Dir(filepath.Clean(dataDir))
	}
	if s.Port == 0 {
		s.Port = 5432
	}
	if strings.ContainsAny(s.SocketDir, ",") || strings.TrimSpace(s.SocketDir) != s.SocketDir {
		return nil, fmt.Errorf("socket directory %q: PostgreSQL would split it at the comma or trim its blanks", s.SocketDir)
	}
	if sock := filepath.Join(s.SocketDir, fmt.Sprintf(".s.PGSQL.%d", s.Port)); len(sock) > 107 {
		return nil, fmt.Errorf("unix socket path %s is %d bytes, over the 107-byte limit: use a shorter scratch directory", sock, len(sock))
	}
	if s.SharedBuffers == "" {
		s.SharedBuffers = "32MB"
	}
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	if s.PGMajor == 0 {
		data, err := readSmall(filepath.Join(dataDir, "PG_VERSION"), 64)
		if err != nil {
			return nil, fmt.Errorf("read PG_VERSION (or set PGMajor): %w", err)
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			return nil, fmt.Errorf("PG_VERSION %q is not a major version", strings.TrimSpace(string(data)))
		}
		s.PGMajor = v
	}
	res := &ConfigResult{ConfFile: filepath.Join(dataDir, "postgresql.conf")}

	// What production configured, read before anything is replaced.
	mainConf := readConf(filepath.Join(dataDir, "postgresql.conf"), res, "postgresql.conf")
	autoConf := readConf(filepath.Join(dataDir, "postgresql.auto.conf"), res, "postgresql.auto.conf")
	neutral := map[string]bool{}
	autoNames := map[string]bool{}
	for _, kv := range mainConf {
		if riskySettings[kv.Name] {
			neutral[kv.Name] = true
		}
	}
	for _, kv := range autoConf {
		autoNames[kv.Name] = true
		if riskySettings[kv.Name] {
			neutral[kv.Name] = true
		}
	}
	res.Neutralised = sortedKeys(neutral)
	res.AutoConfDropped = sortedKeys(autoNames)

	var preload []string
	preloadFrom := ""
	if v, ok := lastSetting(autoConf, "shared_preload_libraries"); ok {
		preload, preloadFrom = splitLibraries(v), "the restored postgresql.auto.conf"
	} else if s.PreloadLibraries != nil {
		preload, preloadFrom = s.PreloadLibraries, "production's postgresql.conf"
	} else if v, ok := lastSetting(mainConf, "shared_preload_libraries"); ok {
		preload, preloadFrom = splitLibraries(v), "the restored postgresql.conf"
	}
	res.PkgLibDir = findPkgLibDir(s)
	res.PreloadKept, res.PreloadDropped = filterLibraries(preload, res.PkgLibDir, &res.Notes)
	if len(preload) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("shared_preload_libraries from %s: kept [%s], dropped [%s]",
			preloadFrom, strings.Join(res.PreloadKept, ", "), strings.Join(res.PreloadDropped, ", ")))
	}

	settings, err := recoverySettings(s, res)
	if err != nil {
		return nil, err
	}
	res.Settings = settings

	var b strings.Builder
	b.WriteString("# Written by walaudit drill: a complete configuration for a throwaway\n")
	b.WriteString("# archive recovery. Nothing of the restored configuration is used.\n")
	for _, kv := range settings {
		fmt.Fprintf(&b, "%s = %s\n", kv.Name, kv.Value)
	}
	if err := writeFile(filepath.Join(dataDir, "postgresql.conf"), b.String(), s.User); err != nil {
		return nil, err
	}
	auto := "# Emptied by walaudit drill: PostgreSQL reads this file last, so production's\n" +
		"# ALTER SYSTEM settings would override the drill's postgresql.conf.\n"
	if err := writeFile(filepath.Join(dataDir, "postgresql.auto.conf"), auto, s.User); err != nil {
		return nil, err
	}
	if len(autoConf) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("postgresql.auto.conf emptied; it held %s", strings.Join(res.AutoConfDropped, ", ")))
	}
	hba := "# Written by walaudit drill: local (unix socket) connections only.\n" +
		"local all all trust\n"
	if err := writeFile(filepath.Join(dataDir, "pg_hba.conf"), hba, s.User); err != nil {
		return nil, err
	}
	for _, n := range []string{"standby.signal", "recovery.conf"} {
		p := filepath.Join(dataDir, n)
		if _, err := os.Lstat(p); err == nil {
			if err := os.Remove(p); err != nil {
				return nil, err
			}
			res.Notes = append(res.Notes, n+" removed: the drill runs a targeted archive recovery, not a standby")
		}
	}
	if err := writeFile(filepath.Join(dataDir, "recovery.signal"), "", s.User); err != nil {
		return nil, err
	}
	return res, nil
}

// recoverySettings builds the drill's postgresql.conf.
func recoverySettings(s Settings, res *ConfigResult) ([]Setting, error) {
	var out []Setting
	var qerr error
	str := func(name, v string) {
		q, err := ConfQuote(v)
		if err != nil && qerr == nil {
			qerr = fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, Setting{name, q})
	}
	raw := func(name, v string) { out = append(out, Setting{name, v}) }
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}

	raw("listen_addresses", "''")
	raw("port", strconv.Itoa(s.Port))
	str("unix_socket_directories", s.SocketDir)
	raw("unix_socket_permissions", "0700")
	raw("ssl", "off")
	str("cluster_name", "walaudit-drill")

	str("restore_command", s.RestoreCommand)
	raw("archive_cleanup_command", "''")
	raw("recovery_end_command", "''")
	target, err := targetSetting(s.Target)
	if err != nil {
		return nil, err
	}
	if target.Name != "" {
		str(target.Name, target.Value)
	} else {
		res.Notes = append(res.Notes, "no recovery target: recovery replays to the end of the archived WAL and PostgreSQL then promotes, whatever recovery_target_action says")
	}
	raw("recovery_target_inclusive", onOff(!s.Exclusive))
	tl := s.Timeline.String()
	if tl == "" {
		tl = "latest"
	}
	str("recovery_target_timeline", tl)
	action := "pause"
	if s.Promote {
		action = "promote"
	}
	str("recovery_target_action", action)
	raw("recovery_min_apply_delay", "0")
	raw("primary_conninfo", "''")
	raw("primary_slot_name", "''")
	raw("hot_standby", "on")

	raw("archive_mode", "off")
	raw("archive_command", "''")
	if s.PGMajor >= 15 {
		raw("archive_library", "''")
	}
	raw("wal_level", "replica")

	hs := ParamsFromControl(s.Control)
	for _, p := range s.WALParams {
		hs = hs.Max(p)
	}
	res.HotStandby = hs
	if hs == (HotStandbyParams{}) {
		res.Notes = append(res.Notes, "the primary's max_connections, max_prepared_transactions, max_locks_per_transaction, max_worker_processes and max_wal_senders are unknown (no pg_control): PostgreSQL's defaults are used, and recovery stops with \"insufficient parameter settings\" if the primary used larger values")
	} else {
		for _, kv := range []struct {
			name string
			v    int32
		}{{"max_connections", hs.MaxConnections}, {"max_prepared_transactions", hs.MaxPreparedXacts},
			{"max_locks_per_transaction", hs.MaxLocksPerXact}, {"max_worker_processes", hs.MaxWorkerProcesses},
			{"max_wal_senders", hs.MaxWALSenders}} {
			if kv.v > 0 || kv.name == "max_prepared_transactions" || kv.name == "max_wal_senders" {
				raw(kv.name, strconv.Itoa(int(kv.v)))
			}
		}
	}
	raw("superuser_reserved_connections", "0")
	if s.Control != nil {
		raw("track_commit_timestamp", onOff(s.Control.TrackCommitTimestamp))
	}

	str("shared_buffers", s.SharedBuffers)
	raw("huge_pages", "off")
	str("shared_preload_libraries", joinLibraries(res.PreloadKept))
	raw("session_preload_libraries", "''")
	raw("local_preload_libraries", "''")
	raw("fsync", "off")
	raw("synchronous_commit", "off")
	raw("restart_after_crash", "off")

	raw("logging_collector", "off")
	raw("log_destination", "'stderr'")
	raw("log_line_prefix", "'%m [%p] '")
	str("log_timezone", s.TimeZone)
	str("timezone", s.TimeZone)
	raw("datestyle", "'iso, mdy'")
	raw("lc_messages", "'C'")
	raw("lc_monetary", "'C'")
	raw("lc_numeric", "'C'")
	raw("lc_time", "'C'")
	return out, qerr
}

// targetSetting renders a target as its one recovery_target_* setting
// (unquoted value); an empty Name for latest.
func targetSetting(t plan.Target) (Setting, error) {
	switch t.Kind {
	case "", plan.TargetLatest:
		return Setting{}, nil
	case plan.TargetImmediate:
		return Setting{"recovery_target", "immediate"}, nil
	case plan.TargetTime:
		if t.Time.IsZero() {
			return Setting{}, errors.New("time target without a time")
		}
		return Setting{"recovery_target_time", t.Time.UTC().Format("2006-01-02 15:04:05.999999") + "+00"}, nil
	case plan.TargetLSN:
		return Setting{"recovery_target_lsn", t.LSN.String()}, nil
	case plan.TargetXID:
		if t.XID < 3 {
			return Setting{}, fmt.Errorf("xid target %d is not a normal transaction id", t.XID)
		}
		return Setting{"recovery_target_xid", strconv.FormatUint(uint64(t.XID), 10)}, nil
	case plan.TargetName:
		if t.Name == "" {
			return Setting{}, errors.New("name target without a name")
		}
		return Setting{"recovery_target_name", t.Name}, nil
	}
	return Setting{}, fmt.Errorf("unknown target kind %q", t.Kind)
}

// ConfQuote renders s as a postgresql.conf string literal. PostgreSQL's
// configuration lexer (GUC_scanstr) doubles single quotes and reads
// backslash escapes, so backslashes are doubled and newline, carriage
// return, tab, backspace and form feed are written as escapes. A NUL byte
// cannot be expressed and is an error.
func ConfQuote(s string) (string, error) {
	if strings.ContainsRune(s, 0) {
		return "", errors.New("value contains a NUL byte")
	}
	return pgserver.Quote(s), nil
}

// readConf reads a restored configuration file leniently: name/value
// pairs in order (names lower-cased), include directives as settings
// named include*. A missing file is nothing; an unreadable one a note.
func readConf(p string, res *ConfigResult, display string) []Setting {
	data, err := readSmall(p, 4<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("restored %s not read: %v", display, err))
		return nil
	}
	return parseConf(data)
}

// parseConf parses postgresql.conf syntax: "name [=] value" per line,
// '#' comments, values bare or single-quoted with GUC_scanstr escapes.
// Malformed lines are skipped.
func parseConf(data []byte) []Setting {
	var out []Setting
	for _, line := range bytes.Split(data, []byte("\n")) {
		l := strings.TrimSpace(string(line))
		if l == "" || l[0] == '#' {
			continue
		}
		i := 0
		for i < len(l) && (isNameByte(l[i])) {
			i++
		}
		if i == 0 {
			continue
		}
		name := strings.ToLower(l[:i])
		rest := strings.TrimLeft(l[i:], " \t")
		if strings.HasPrefix(rest, "=") {
			rest = strings.TrimLeft(rest[1:], " \t")
		}
		var val string
		if strings.HasPrefix(rest, "'") {
			v, ok := unquoteConf(rest)
			if !ok {
				continue
			}
			val = v
		} else {
			end := strings.IndexAny(rest, " \t#")
			if end < 0 {
				end = len(rest)
			}
			val = rest[:end]
		}
		out = append(out, Setting{name, val})
	}
	return out
}

func isNameByte(c byte) bool {
	return c == '_' || c == '.' || c == '$' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// unquoteConf reads a single-quoted value at the start of s as
// GUC_scanstr does.
func unquoteConf(s string) (string, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\'':
			return b.String(), true
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default:
				if e >= '0' && e <= '7' {
					v := int(e - '0')
					for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
						i++
						v = v*8 + int(s[i]-'0')
					}
					b.WriteByte(byte(v))
				} else {
					b.WriteByte(e)
				}
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

func lastSetting(kvs []Setting, name string) (string, bool) {
	for i := len(kvs) - 1; i >= 0; i-- {
		if kvs[i].Name == name {
			return kvs[i].Value, true
		}
	}
	return "", false
}

// splitLibraries splits a shared_preload_libraries value as PostgreSQL's
// SplitDirectoriesString does: comma-separated items, blanks around them
// trimmed, an item in double quotes may hold commas and blanks ("" is a
// quote).
func splitLibraries(v string) []string {
	var out []string
	i := 0
	for i < len(v) {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		var item strings.Builder
		if i < len(v) && v[i] == '"' {
			i++
			for i < len(v) {
				if v[i] == '"' {
					if i+1 < len(v) && v[i+1] == '"' {
						item.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				item.WriteByte(v[i])
				i++
			}
			for i < len(v) && v[i] != ',' {
				i++
			}
		} else {
			j := strings.IndexByte(v[i:], ',')
			if j < 0 {
				j = len(v) - i
			}
			item.WriteString(strings.TrimRight(v[i:i+j], " \t"))
			i += j
		}
		if item.Len() > 0 {
			out = append(out, item.String())
		}
		i++ // the comma
	}
	return out
}

func joinLibraries(libs []string) string {
	q := make([]string, len(libs))
	for i, l := range libs {
		if strings.ContainsAny(l, `, "`) {
			l = `"` + strings.ReplaceAll(l, `"`, `""`) + `"`
		}
		q[i] = l
	}
	return strings.Join(q, ", ")
}

// findPkgLibDir finds the drill server's library directory: PkgLibDir,
// else `pg_config --pkglibdir` of Bin, else Bin/../lib if it holds
// plpgsql (always installed there). "" when unknown.
func findPkgLibDir(s Settings) string {
	if s.PkgLibDir != "" {
		return s.PkgLibDir
	}
	if s.Bin == nil {
		return ""
	}
	if s.Bin.Has("pg_config") {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, s.Bin.Path("pg_config"), "--pkglibdir").Output(); err == nil {
			d := strings.TrimSpace(string(out))
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				return d
			}
		}
	}
	d := filepath.Join(s.Bin.Dir, "..", "lib")
	if _, err := os.Stat(filepath.Join(d, "plpgsql.so")); err == nil {
		return filepath.Clean(d)
	}
	return ""
}

// filterLibraries keeps the libraries installed in pkglibdir and not
// denied.
func filterLibraries(libs []string, pkglibdir string, notes *[]string) (kept, dropped []string) {
	kept, dropped = []string{}, []string{}
	if len(libs) == 0 {
		return kept, dropped
	}
	if pkglibdir == "" {
		*notes = append(*notes, "the drill server's library directory is unknown: no shared_preload_libraries kept")
		return kept, append(dropped, libs...)
	}
	for _, l := range libs {
		base := strings.TrimSuffix(filepath.Base(l), ".so")
		if why, denied := deniedLibraries[base]; denied {
			*notes = append(*notes, fmt.Sprintf("%s dropped from shared_preload_libraries: it %s", l, why))
			dropped = append(dropped, l)
			continue
		}
		var cand string
		switch {
		case strings.HasPrefix(l, "$libdir/"):
			cand = filepath.Join(pkglibdir, strings.TrimPrefix(l, "$libdir/"))
		case filepath.IsAbs(l):
			cand = l
		case !strings.Contains(l, "/"):
			cand = filepath.Join(pkglibdir, l)
		}
		ok := false
		if cand != "" {
			for _, c := range []string{cand, cand + ".so"} {
				if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
					ok = true
					break
				}
			}
		}
		if ok {
			kept = append(kept, l)
		} else {
			dropped = append(dropped, l)
		}
	}
	return kept, dropped
}

// writeFile replaces p atomically with content (mode 0600, owned by u);
// a symbolic link at p is replaced, never followed.
func writeFile(p, content string, u *pgserver.OSUser) error {
	tmp := p + ".walaudit-tmp"
	_ = os.Remove(tmp)
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := u.Chown(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		os.Remove(tmp)
		return fmt.Errorf("write %s: it is a directory", p)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
