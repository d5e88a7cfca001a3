// Package wal reads PostgreSQL write-ahead log: it validates page headers,
// reassembles records across pages and segments, checks every integrity
// field PostgreSQL checks, and decodes the few record payloads that decide
// whether a point-in-time-recovery target is reachable.
//
// PostgreSQL 13 to 18 are supported. The layout details that differ between
// them (page flags, block image bits, custom resource managers, payload
// structs) are chosen from the page magic found in the first page read;
// there is no global state, and segment size, page size and system
// identifier are values learned from the data or passed in [Options].
//
// Framing and payload are separate: [Reader] and [ScanSegment] deal with
// pages, records and CRCs; [EventOf], [Describe] and the Decode* functions
// interpret the main data of XLOG and Transaction records.
//
// # Wire format
//
// All integers are little-endian (the byte order of the server that wrote
// them; every mainstream platform is little-endian). A segment is a
// sequence of XLOG_BLCKSZ pages (8 KiB by default), each starting with a
// header. The first page of a segment has the long form:
//
//	short page header, XLogPageHeaderData (24 bytes, 20 used + 4 padding)
//	+--------+--------+----------------+--------------------------------+
//	| 0      | 2      | 4              | 8                              |
//	| magic  | info   | tli            | pageaddr (LSN of this page)    |
//	| uint16 | uint16 | uint32         | uint64                         |
//	+--------+--------+----------------+--------------------------------+
//	| 16                               | 20                             |
//	| rem_len (bytes of a record       | padding                        |
//	| continued from earlier pages)    |                                |
//	+----------------------------------+--------------------------------+
//
//	long page header, XLogLongPageHeaderData (40 bytes): the above, then
//	+--------------------------------+----------------+----------------+
//	| 24                             | 32             | 36             |
//	| sysid (database system id)     | seg_size       | xlog_blcksz    |
//	| uint64                         | uint32         | uint32         |
//	+--------------------------------+----------------+----------------+
//
//	info bits: 0x1 FIRST_IS_CONTRECORD, 0x2 LONG_HEADER,
//	           0x4 BKP_REMOVABLE, 0x8 FIRST_IS_OVERWRITE_CONTRECORD
//
// Records start at 8-byte aligned LSNs and may cross page and segment
// boundaries; only xl_tot_len is guaranteed to be on the starting page,
// the rest of the 24-byte header may continue on the next one:
//
//	record header, XLogRecord (24 bytes)
//	+----------------+----------------+--------------------------------+
//	| 0              | 4              | 8                              |
//	| xl_tot_len     | xl_xid         | xl_prev (start of the previous |
//	| uint32         | uint32         | record) uint64                 |
//	+------+------+--+----------------+--------------------------------+
//	| 16   | 17   | 18      | 20                                       |
//	| info | rmid | padding | xl_crc (CRC-32C of bytes 24..tot_len,    |
//	| u8   | u8   | 2 bytes | then of bytes 0..19)                     |
//	+------+------+---------+------------------------------------------+
//	then fragment headers (block references 0-32, 252 top-level xid,
//	253 origin, 254/255 main data length), then block images and data,
//	then the main data, none of it aligned.
//
// # Summaries instead of files
//
// [ScanSegment] summarises one segment file on its own: its records'
// starts and events, and what a read needs to cross its boundaries
// without the file (the first page header, the parts and CRC-32C of the
// records that cross into and out of it, back-links, page timelines,
// file size). [WalkChain] and [ChainEnd] replay a [Reader] over a series
// of such summaries, giving the same end of WAL, the same error and the
// same events; [Chain] checks one boundary. Summaries encode compactly
// ([SegmentSummary.MarshalBinary], versioned by [SummaryVersion]), so
// that a cache keyed by file identity can spare re-reading unchanged
// segments. The CRC of a record split over segments is combined from its
// parts' CRCs (zlib's crc32_combine, in GF(2)); PostgreSQL's CRC covers
// the record body before its header, so the header's share is taken out
// of the front and added at the back.
//
// # End of WAL versus corruption
//
// PostgreSQL treats every invalid record as the end of WAL during archive
// recovery. This package reports why reading stopped: [IsEndOfWAL] is true
// for the benign ends (zeroed space where a record should start, the next
// segment not in the archive) and false for damage (bad CRC, wrong page
// address, torn record, short file, ...). Either way the reader's
// EndOfWAL position is where recovery would stop.
package wal
