package pgserver

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/walaudit/walaudit/walname"
)

// RecoveryState is how a recovery run ended.
type RecoveryState string

// Recovery outcomes.
const (
	RecoveryPaused   RecoveryState = "paused"   // target reached, recovery_target_action=pause
	RecoveryPromoted RecoveryState = "promoted" // end of WAL or target with promote
	RecoveryFailed   RecoveryState = "failed"   // the server exited (FATAL)
)

// RecoveryResult is what a real recovery did, read from the server and its log.
type RecoveryResult struct {
	State RecoveryState
	// ReplayLSN is pg_last_wal_replay_lsn(): the end of the last replayed record.
	ReplayLSN walname.LSN
	// StopLine is the log's "recovery stopping …" line, if any.
	StopLine string
	// FatalLines are the log's FATAL/PANIC lines.
	FatalLines []string
	// LastRestored is the last file restore_command delivered ("restored log file").
	LastRestored string
}

var (
	stopRe     = regexp.MustCompile(`LOG:\s+(recovery stopping .*)$`)
	restoredRe = regexp.MustCompile(`restored log file "([0-9A-F]{24})" from archive`)
)

// WaitRecovery watches a server started (without waiting) in archive
// recovery until it pauses at its target, promotes, or exits, and reports
// what it did.
func (s *Server) WaitRecovery(ctx context.Context) (*RecoveryResult, error) {
	res := &RecoveryResult{}
	started := time.Now()
	for {
		// pg_ctl -W returns before postmaster.pid exists, so a server that
		// is not running yet has failed only once its log says it stopped
		// (or it never came up within a generous grace period).
		if !s.Running() && (s.exited() || time.Since(started) > 30*time.Second) {
			res.State = RecoveryFailed
			break
		}
		st, lsn, err := s.recoveryState(ctx)
		if err == nil && st != "" {
			res.State, res.ReplayLSN = st, lsn
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for recovery on %s: %w; last log lines:\n%s", s.DataDir, ctx.Err(), s.LogTail(10))
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, l := range s.LogLines("recovery stopping", "FATAL:", "PANIC:", "restored log file") {
		if m := stopRe.FindStringSubmatch(l); m != nil {
			res.StopLine = m[1]
		}
		if m := restoredRe.FindStringSubmatch(l); m != nil {
			res.LastRestored = m[1]
		}
		if (strings.Contains(l, "FATAL:") || strings.Contains(l, "PANIC:")) && !isConnectionRefusal(l) {
			res.FatalLines = append(res.FatalLines, l)
		}
	}
	return res, nil
}

// exited reports whether the server log says the postmaster stopped.
func (s *Server) exited() bool {
	return strings.Contains(s.Log(), "database system is shut down")
}

// isConnectionRefusal tells the FATAL lines that our own polling
// connections cause while the server starts from real failures.
func isConnectionRefusal(line string) bool {
	for _, m := range []string{"the database system is starting up", "not yet accepting connections", "the database system is shutting down"} {
		if strings.Contains(line, m) {
			return true
		}
	}
	return false
}

// recoveryState returns "" while recovery is still running.
func (s *Server) recoveryState(ctx context.Context) (RecoveryState, walname.LSN, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := s.Connect(cctx, "")
	if err != nil {
		return "", 0, err
	}
	defer c.Close(context.Background())
	var inRec bool
	var pause, lsn string
	err = c.QueryRow(cctx, `SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN `+s.replayPausedSQL()+` ELSE '' END, coalesce(pg_last_wal_replay_lsn()::text, '0/0')`).Scan(&inRec, &pause, &lsn)
	if err != nil {
		return "", 0, err
	}
	l, err := walname.ParseLSN(lsn)
	if err != nil {
		return "", 0, err
	}
	switch {
	case !inRec:
		return RecoveryPromoted, l, nil
	case pause == "paused":
		return RecoveryPaused, l, nil
	}
	return "", l, nil
}

// RecoveryTargetSettings are PostgreSQL's mutually exclusive recovery
// target settings.
var RecoveryTargetSettings = []string{"recovery_target", "recovery_target_lsn", "recovery_target_name", "recovery_target_time", "recovery_target_xid"}

// ClearRecoveryTargets neutralises every recovery target setting that keep
// does not set. A restored backup carries its server's postgresql.auto.conf,
// which may hold an earlier recovery's target; PostgreSQL applies only the
// last occurrence of a setting, in file order, and refuses a second target
// assigned after a first, so the clearing lines must come before the
// target's own line: call this before writing the target.
func (s *Server) ClearRecoveryTargets(keep map[string]string) error {
	clear := map[string]string{}
	for _, k := range RecoveryTargetSettings {
		if _, ok := keep[k]; !ok {
			clear[k] = "''"
		}
	}
	return s.SetConf(clear)
}

// WriteRecoverySignal creates recovery.signal and sets the recovery
// settings (values already quoted where strings, see [Quote]).
func (s *Server) WriteRecoverySignal(settings map[string]string) error {
	p := filepath.Join(s.DataDir, "recovery.signal")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := s.User.Chown(p); err != nil {
		return err
	}
	return s.SetConf(settings)
}

// CopyTree copies a directory tree (regular files, directories, symlinks)
// from src to dst, owned by the user: used to restore plain-format backups
// into a scratch directory.
func CopyTree(src, dst string, u *OSUser) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return nil
		}
		return u.Chown(target)
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
