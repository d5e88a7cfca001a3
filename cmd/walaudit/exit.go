package main

import (
	"errors"
	"fmt"
)

// Exit codes, frozen: scripts and monitoring rely on them.
const (
	exitOK        = 0 // proven OK
	exitNotOK     = 1 // proven not OK: target or policy unreachable, failed drill
	exitUndecided = 2 // could not decide: bad usage, unreadable archive
)

const exitStatusHelp = `
EXIT STATUS:
   0  proven OK (the target is reachable, the archive is healthy)
   1  proven not OK (the target or policy is unreachable, a drill failed)
   2  could not decide (bad usage, unparseable target, unreadable archive)
`

// verdictError carries a command's verdict to main after the command has
// printed its report; main prints nothing more for it.
type verdictError struct {
	code int
	msg  string
}

func (e *verdictError) Error() string { return e.msg }

func verdict(code int, format string, args ...any) error {
	return &verdictError{code: code, msg: fmt.Sprintf(format, args...)}
}

func isVerdict(err error) bool {
	var v *verdictError
	return errors.As(err, &v)
}

// usageError marks bad invocations (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return &usageError{err: err} }

func usagef(format string, args ...any) error { return &usageError{err: fmt.Errorf(format, args...)} }

// exitCode maps an action's error to the process exit code: the one
// place where that decision is made.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var v *verdictError
	if errors.As(err, &v) {
		return v.code
	}
	// Usage errors, unreadable archives and everything unexpected: we
	// could not decide.
	return exitUndecided
}
