package pgserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is one PostgreSQL cluster: a data directory and the server that
// runs on it. It listens only on a unix socket in SocketDir, never on TCP,
// so it can never collide with a production server's port.
type Server struct {
	Bin       *Bin
	User      *OSUser
	DataDir   string
	SocketDir string
	Port      int
	LogFile   string
}

// InitOptions tune [InitDB].
type InitOptions struct {
	// WALSegSizeMB is initdb's --wal-segsize; 0 keeps the default (16).
	WALSegSizeMB int
	// Args are extra initdb arguments.
	Args []string
}

// New describes a server on an existing data directory. socketDir must be
// short: unix socket paths are limited to 107 bytes.
func New(bin *Bin, user *OSUser, dataDir, socketDir string, port int) (*Server, error) {
	if port == 0 {
		port = 5432
	}
	sock := filepath.Join(socketDir, fmt.Sprintf(".s.PGSQL.%d", port))
	if len(sock) > 107 {
		return nil, fmt.Errorf("unix socket path %s is %d bytes, over the 107-byte limit: use a shorter directory", sock, len(sock))
	}
	return &Server{Bin: bin, User: user, DataDir: dataDir, SocketDir: socketDir, Port: port,
		LogFile: filepath.Join(filepath.Dir(dataDir), filepath.Base(dataDir)+".log")}, nil
}

// InitDB creates a new cluster in dataDir (which must not exist or be
// empty) with trust authentication for local connections, and writes a
// configuration that listens only on the socket.
func InitDB(ctx context.Context, bin *Bin, user *OSUser, dataDir, socketDir string, opts InitOptions) (*Server, error) {
	s, err := New(bin, user, dataDir, socketDir, 0)
	if err != nil {
		return nil, err
	}
	if err := user.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dataDir, err)
	}
	args := []string{"-D", dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"}
	if opts.WALSegSizeMB > 0 {
		args = append(args, "--wal-segsize="+strconv.Itoa(opts.WALSegSizeMB))
	}
	args = append(args, opts.Args...)
	if out, err := s.run(ctx, "initdb", args...); err != nil {
		return nil, fmt.Errorf("initdb %s: %w\n%s", dataDir, err, tail(out, 20))
	}
	if err := s.SetConf(map[string]string{
		"listen_addresses":        "''",
		"unix_socket_directories": quote(socketDir),
		"port":                    strconv.Itoa(s.Port),
		"log_line_prefix":         quote("%m [%p] "),
		"log_timezone":            quote("UTC"),
		"timezone":                quote("UTC"),
		"shared_buffers":          quote("16MB"),
		"max_wal_size":            quote("64MB"),
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// confEscaper escapes what PostgreSQL's configuration parser reads inside
// a quoted value: a quote is doubled, and backslash sequences are decoded,
// so a backslash (in a path or a restore_command) must be doubled too.
var confEscaper = strings.NewReplacer("'", "''", `\`, `\\`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\b", `\b`, "\f", `\f`)

func quote(s string) string { return "'" + confEscaper.Replace(s) + "'" }

// Quote renders s as a configuration-file string literal. A NUL byte
// cannot be represented; callers taking untrusted values refuse it first.
func Quote(s string) string { return quote(s) }

// SetConf appends settings to postgresql.auto.conf, which PostgreSQL reads
// last, so these values win over anything restored from production.
// Values are written as given: quote strings with [Quote].
func (s *Server) SetConf(kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# written by walaudit\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, kv[k])
	}
	p := filepath.Join(s.DataDir, "postgresql.auto.conf")
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return s.User.Chown(p)
}

func (s *Server) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := s.User.Command(s.Bin.Path(prog), filepath.Dir(s.DataDir), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := runCtx(ctx, cmd); err != nil {
		return out.Bytes(), err
	}
	return out.Bytes(), nil
}

// Run runs one of the cluster's programs (pg_basebackup, pg_waldump, …) as
// the server's OS user and returns its combined output.
func (s *Server) Run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	out, err := s.run(ctx, prog, args...)
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, tail(out, 10))
	}
	return out, nil
}

func runCtx(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}

// Start starts the server. With wait it returns once the server accepts
// connections (pg_ctl -w); without, it returns at once, for recoveries
// whose outcome [Server.WaitRecovery] watches.
func (s *Server) Start(ctx context.Context, wait bool) error {
	if err := touch(s.LogFile, s.User); err != nil {
		return err
	}
	w := "-W"
	if wait {
		w = "-w"
	}
	out, err := s.run(ctx, "pg_ctl", "-D", s.DataDir, "-l", s.LogFile, w, "-t", "120", "start")
	if err != nil {
		return fmt.Errorf("start PostgreSQL on %s: %w\n%s\nserver log:\n%s", s.DataDir, err, tail(out, 5), s.LogTail(20))
	}
	return nil
}

func touch(p string, u *OSUser) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create server log %s: %w", p, err)
	}
	f.Close()
	return u.Chown(p)
}

// Stop stops the server (fast mode) if it runs; a server that is not
// running is not an error.
func (s *Server) Stop(ctx context.Context) error {
	if !s.Running() {
		return nil
	}
	out, err := s.run(ctx, "pg_ctl", "-D", s.DataDir, "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil && s.Running() {
		// Fast shutdown can hang behind a stuck restore_command: insist.
		_, _ = s.run(ctx, "pg_ctl", "-D", s.DataDir, "-m", "immediate", "-w", "-t", "30", "stop")
		if s.Running() {
			return fmt.Errorf("stop PostgreSQL on %s: %w: %s", s.DataDir, err, tail(out, 5))
		}
	}
	return nil
}

// Running reports whether a postmaster is alive on the data directory.
func (s *Server) Running() bool {
	b, err := os.ReadFile(filepath.Join(s.DataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscallZero) == nil
}

// ConnString returns a libpq connection string for the socket.
func (s *Server) ConnString(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.SocketDir, s.Port, db)
}

// Connect opens a connection to database db ("" for postgres).
func (s *Server) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, s.ConnString(db))
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", s.SocketDir, err)
	}
	return c, nil
}

// Exec runs SQL statements on database postgres with a fresh connection.
func (s *Server) Exec(ctx context.Context, sqls ...string) error {
	c, err := s.Connect(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	for _, q := range sqls {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("exec %q: %w", q, err)
		}
	}
	return nil
}

// QueryString runs a query returning one text value.
func (s *Server) QueryString(ctx context.Context, q string, args ...any) (string, error) {
	c, err := s.Connect(ctx, "")
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	var v string
	if err := c.QueryRow(ctx, q, args...).Scan(&v); err != nil {
		return "", fmt.Errorf("query %q: %w", q, err)
	}
	return v, nil
}

// Log returns the server log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

// LogTail returns the last n lines of the server log.
func (s *Server) LogTail(n int) string { return tail([]byte(s.Log()), n) }

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogLines returns the log lines containing any of the substrings.
func (s *Server) LogLines(subs ...string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		for _, sub := range subs {
			if strings.Contains(sc.Text(), sub) {
				out = append(out, sc.Text())
				break
			}
		}
	}
	return out
}

// WaitReady polls until the server accepts connections or ctx ends.
func (s *Server) WaitReady(ctx context.Context) error {
	for {
		c, err := s.Connect(ctx, "")
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		if !s.Running() {
			return fmt.Errorf("server on %s is not running: %s", s.DataDir, s.LogTail(10))
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
