// Package plan decides whether a recovery target is reachable from a base
// backup with PostgreSQL's own rules (timeline choice, the files recovery
// requests, stop-before/stop-after semantics, the consistency point), and
// builds the restore plan that drills execute.
package plan
