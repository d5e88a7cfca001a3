package pgserver

import "testing"

// PostgreSQL's configuration parser decodes backslash sequences inside
// quoted values, so a path or restore_command with a backslash must have
// it doubled (a restore point named with ' and \ reaching a real server is
// proven in plan/drill's real tests).
func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:            `'plain'`,
		`it's`:             `'it''s'`,
		`C:\wal\%f`:        `'C:\\wal\\%f'`,
		"line\nbreak\ttab": `'line\nbreak\ttab'`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
