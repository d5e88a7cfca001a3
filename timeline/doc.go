// Package timeline models PostgreSQL timelines the way the server does during
// archive recovery: it parses timeline history files, builds the timeline
// tree of an archive, resolves recovery_target_timeline, and predicts which
// segment files recovery asks restore_command for — including the case where
// it silently reads the wrong branch.
//
// The package imports only the standard library and walname. It never reads
// files itself: callers pass history file contents and a "does this segment
// exist" callback, so the same code works for directories, object stores and
// tests.
//
// # History files
//
// Timeline N > 1 has a text file named with N in 8 upper-case hex digits,
// e.g. 0000000B.history for timeline 11. Its content is the parent's history
// file copied verbatim, then one new line (src/backend/access/transam/timeline.c):
//
//	<parent TLI, decimal> TAB <switch point X/Y> TAB <free-text reason> LF
//
// A real 00000003.history (the parent line copied from 00000002.history, a
// blank line, then the new line):
//
//	1	0/A002E8	at restore point "rp1"
//
//	2	0/C00120	no recovery target specified
//
// The server's reader, which [ParseHistory] mirrors, skips empty and
// whitespace-only lines and lines whose first non-blank character is '#',
// reads a decimal timeline ID, blanks and an X/Y switch point from every
// other line and ignores the rest of it. A line with only a timeline ID, or
// with garbage, is fatal ([ErrSyntax]); timeline IDs must increase from line
// to line and stay below the file's own ID ([ErrNotIncreasing]). The switch
// points need not increase: when recovery along timeline T ends before T's
// own fork point, the new file's last line names T with an earlier switch
// point than the line before it. That is legal; [History.Backwards] reports
// such lines so callers can warn.
//
// Three corners no server ever writes are refused although the server's
// sscanf would accept them: a sign before the timeline ID, no blank between
// the ID and the switch point ("1A/B" reads as timeline 1 at A/B there), and
// text glued to the switch point or halves longer than 8 hex digits. Timeline
// 0 on a line is refused too.
//
// # Entries and switch points
//
// Line i says: the history used timeline t_i for every WAL position from the
// previous line's switch point (0 for the first line) up to, not including,
// its own switch point. The file's own timeline follows from the last switch
// point onwards, with no end. So 00000003.history above yields
//
//	timeline 1  [0/0,      0/A002E8)
//	timeline 2  [0/A002E8, 0/C00120)
//	timeline 3  [0/C00120, end)        the tip
//
// A switch point is the start LSN of the first record written on the child,
// which is also the end of the last record replayed from the parent. Parent
// WAL at or after the switch point is not part of the child's history. As in
// the server, an [Entry] Begin of 0 means "from the start" and an End of 0
// means "no end". Timeline 1 never has a history file, and a missing file
// makes the server assume the timeline has no parent: both give the single
// entry (T, 0, end), which is what [ParseHistory] returns for empty input.
// Ancestry is inherited by copying, so one history file describes the whole
// path back to timeline 1.
//
// # Which file recovery reads
//
// For segment S the server (XLogFileReadAnyTLI in xlogrecovery.c) walks the
// target timeline's entries newest first, stops at a timeline lower than the
// one the previous segment came from, skips entries that begin in a segment
// after S, and opens the first <tli><S> that exists. The segment holding a
// switch point P exists under both timelines; the child's copy repeats the
// parent's bytes up to P. If the child's copy is missing, the server falls
// back to the parent's copy without complaint and replays parent WAL past P:
// recovery can "succeed" on the wrong branch. [History.Plan] models both what
// the server will read and what it should read, and flags that hazard.
// .partial files are never requested and so never count as present.
//
// # Target timeline
//
// recovery_target_timeline 'latest' probes <T+1>.history, <T+2>.history, …
// from the timeline of the backup's checkpoint and takes the last one found
// before the first gap; 'current' is the checkpoint's timeline; a number N
// other than 1 needs N's history file. The checkpoint LSN must then lie on the
// checkpoint's timeline in the target's history, or the server stops with
// "requested timeline N is not a child of this server's history".
// [Set.Resolve] returns that outcome as a value that says why.
package timeline
