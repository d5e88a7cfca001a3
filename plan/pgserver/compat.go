package pgserver

// replayPausedSQL is an SQL expression that is 'paused' once recovery has
// paused (read only while pg_is_in_recovery()): 14 and later report the
// pause state, 13 only whether a pause was requested, which at a recovery
// target with recovery_target_action=pause happens after the last record
// was replayed.
func (s *Server) replayPausedSQL() string {
	if s.Bin != nil && s.Bin.Major != 0 && s.Bin.Major < 14 {
		return `CASE WHEN pg_is_wal_replay_paused() THEN 'paused' ELSE '' END`
	}
	return `pg_get_wal_replay_pause_state()`
}
