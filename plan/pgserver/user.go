package pgserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// OSUser is the account PostgreSQL runs as. initdb and postgres refuse to
// run as root, so when walaudit is root the servers run as this user
// (default "postgres") and own their directories.
type OSUser struct {
	Name     string
	UID, GID int
	asRoot   bool // we are root and must switch
}

// LookupOSUser resolves name (default "postgres") when running as root; for
// any other caller it returns the current user and no switching happens.
func LookupOSUser(name string) (*OSUser, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("look up current user: %w", err)
		}
		return &OSUser{Name: u.Username, UID: os.Geteuid(), GID: os.Getegid()}, nil
	}
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("look up OS user %q to run PostgreSQL as (running as root; create it or pass --os-user): %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 {
		return nil, fmt.Errorf("OS user %q is root; PostgreSQL refuses to run as root", name)
	}
	return &OSUser{Name: name, UID: uid, GID: gid, asRoot: true}, nil
}

// Command builds a command that runs as the user, in dir.
func (u *OSUser) Command(name string, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	if u.asRoot {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
		cmd.Env = append(cmd.Env, "HOME="+dir, "USER="+u.Name, "LOGNAME="+u.Name)
	}
	return cmd
}

// MkdirAll creates dir (mode 0700 for the last element, as PostgreSQL
// wants for data directories) owned by the user.
func (u *OSUser) MkdirAll(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	return u.Chown(dir)
}

// Chown hands path to the user when running as root.
func (u *OSUser) Chown(path string) error {
	if !u.asRoot {
		return nil
	}
	return os.Lchown(path, u.UID, u.GID)
}

// ChownTree hands a whole tree to the user when running as root.
func (u *OSUser) ChownTree(root string) error {
	if !u.asRoot {
		return nil
	}
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u.UID, u.GID)
	})
}
