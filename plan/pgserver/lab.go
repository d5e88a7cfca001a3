package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lab is a throwaway working area for the demo and tests: a short root
// directory owned by the server's OS user holding a WAL archive, base
// backups and any number of clusters, each on its own socket port.
type Lab struct {
	Root    string
	Archive string
	Backups string
	Bin     *Bin
	User    *OSUser

	mu       sync.Mutex
	nextPort int
	servers  []*Server
}

// NewLab creates a lab under parent (default /tmp, kept short because of
// the unix socket path limit).
func NewLab(ctx context.Context, parent string, bin *Bin, user *OSUser) (*Lab, error) {
	if parent == "" {
		parent = "/tmp"
	}
	root, err := os.MkdirTemp(parent, "wa")
	if err != nil {
		return nil, fmt.Errorf("create lab directory: %w", err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, err
	}
	l := &Lab{Root: root, Archive: filepath.Join(root, "archive"), Backups: filepath.Join(root, "backups"),
		Bin: bin, User: user, nextPort: 5432}
	for _, d := range []string{root, l.Archive, l.Backups} {
		if err := user.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	return l, nil
}

func (l *Lab) port() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.nextPort
	l.nextPort++
	return p
}

func (l *Lab) track(s *Server) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.servers = append(l.servers, s)
}

// ArchiveCommand is the archive_command the lab's primaries use: a plain
// copy that refuses to overwrite, as PostgreSQL's documentation recommends.
func (l *Lab) ArchiveCommand() string {
	return fmt.Sprintf("test ! -f %s/%%f && cp %%p %s/%%f", l.Archive, l.Archive)
}

// InitPrimary creates and starts an archiving primary named name with
// 1 MiB WAL segments (segMB 0) and extra settings.
func (l *Lab) InitPrimary(ctx context.Context, name string, segMB int, extra map[string]string) (*Server, error) {
	if segMB == 0 {
		segMB = 1
	}
	s, err := InitDB(ctx, l.Bin, l.User, filepath.Join(l.Root, name), l.Root, InitOptions{WALSegSizeMB: segMB})
	if err != nil {
		return nil, err
	}
	s.Port = l.port()
	conf := map[string]string{
		"port":                      strconv.Itoa(s.Port),
		"archive_mode":              "on",
		"archive_command":           Quote(l.ArchiveCommand()),
		"wal_level":                 "replica",
		"max_prepared_transactions": "5",
		"max_wal_senders":           "5",
		"fsync":                     "off", // throwaway cluster: speed over durability
		"synchronous_commit":        "off",
	}
	for k, v := range extra {
		conf[k] = v
	}
	if err := s.SetConf(conf); err != nil {
		return nil, err
	}
	if err := s.Start(ctx, true); err != nil {
		return nil, err
	}
	l.track(s)
	return s, nil
}

// BaseBackup takes a pg_basebackup of s into the lab's backups/<name>
// (plain format, fast checkpoint, no WAL) with extra arguments appended
// (e.g. "-Ft", "-X", "stream").
func (l *Lab) BaseBackup(ctx context.Context, s *Server, name string, args ...string) (string, error) {
	dir := filepath.Join(l.Backups, name)
	base := []string{"-h", s.SocketDir, "-p", strconv.Itoa(s.Port), "-U", "postgres", "-D", dir, "-c", "fast", "--no-sync"}
	hasX := false
	for _, a := range args {
		if a == "-X" || strings.HasPrefix(a, "--wal-method") {
			hasX = true
		}
	}
	if !hasX {
		base = append(base, "-X", "none")
	}
	if _, err := s.Run(ctx, "pg_basebackup", append(base, args...)...); err != nil {
		return "", err
	}
	return dir, nil
}

// SwitchAndWait forces a WAL switch and waits until the switched-out
// segment is archived, so the archive holds everything written so far.
func (l *Lab) SwitchAndWait(ctx context.Context, s *Server) (string, error) {
	name, err := s.QueryString(ctx, `SELECT pg_walfile_name(pg_switch_wal())`)
	if err != nil {
		return "", err
	}
	return name, l.WaitArchived(ctx, name)
}

// WaitArchived waits until the named file is in the archive.
func (l *Lab) WaitArchived(ctx context.Context, name string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(l.Archive, name)); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not reach the archive %s within 60s", name, l.Archive)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Restore copies a plain-format backup into a new data directory named
// name and prepares archive recovery from archiveDir (default: the lab's
// archive) with the given recovery settings. The returned server is not
// started.
func (l *Lab) Restore(ctx context.Context, backupDir, name, archiveDir string, settings map[string]string) (*Server, error) {
	if archiveDir == "" {
		archiveDir = l.Archive
	}
	dir := filepath.Join(l.Root, name)
	if err := l.User.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := CopyTree(backupDir, dir, l.User); err != nil {
		return nil, fmt.Errorf("copy backup %s to %s: %w", backupDir, dir, err)
	}
	_ = os.Chmod(dir, 0o700)
	// A backup taken from a standby carries standby.signal, which would
	// turn this archive recovery into a standby that never ends.
	if err := os.Remove(filepath.Join(dir, "standby.signal")); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, sub := range []string{"pg_wal", "pg_wal/archive_status"} {
		if err := l.User.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	s, err := New(l.Bin, l.User, dir, l.Root, l.port())
	if err != nil {
		return nil, err
	}
	conf := map[string]string{
		"port":            strconv.Itoa(s.Port),
		"archive_mode":    "off",
		"restore_command": Quote(fmt.Sprintf("cp %s/%%f %%p", archiveDir)),
	}
	for k, v := range settings {
		conf[k] = v
	}
	if err := s.ClearRecoveryTargets(settings); err != nil {
		return nil, err
	}
	if err := s.WriteRecoverySignal(conf); err != nil {
		return nil, err
	}
	l.track(s)
	return s, nil
}

// Fork starts a new timeline: a real point-in-time recovery of backupDir
// to the restore point rp that promotes and then archives into the lab's
// archive. It returns the running, promoted server.
func (l *Lab) Fork(ctx context.Context, backupDir, name, rp string) (*Server, error) {
	s, err := l.Restore(ctx, backupDir, name, "", map[string]string{
		"recovery_target_name":   Quote(rp),
		"recovery_target_action": "'promote'",
		"archive_mode":           "on",
		"archive_command":        Quote(l.ArchiveCommand()),
	})
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx, false); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	res, err := s.WaitRecovery(wctx)
	cancel()
	if err != nil {
		return nil, err
	}
	if res.State != RecoveryPromoted {
		return nil, fmt.Errorf("fork %s did not promote: %+v\n%s", name, res, s.LogTail(30))
	}
	if err := s.WaitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Recover runs a real PostgreSQL archive recovery of backupDir with the
// given settings and returns what the server did; the recovered cluster
// is stopped and removed afterwards.
func (l *Lab) Recover(ctx context.Context, backupDir, archiveDir string, settings map[string]string) (*RecoveryResult, string, error) {
	name := fmt.Sprintf("rec%d", l.port())
	s, err := l.Restore(ctx, backupDir, name, archiveDir, settings)
	if err != nil {
		return nil, "", err
	}
	defer func() {
		_ = s.Stop(context.Background())
		_ = os.RemoveAll(s.DataDir)
	}()
	if err := s.Start(ctx, false); err != nil {
		return nil, s.Log(), err
	}
	wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	res, err := s.WaitRecovery(wctx)
	return res, s.Log(), err
}

// Close stops every server the lab started and removes its directory.
func (l *Lab) Close() error {
	l.mu.Lock()
	servers := l.servers
	l.mu.Unlock()
	var errs []error
	for _, s := range servers {
		if err := s.Stop(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(l.Root); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
