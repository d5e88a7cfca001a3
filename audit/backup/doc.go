// Package backup reads PostgreSQL base-backup metadata: backup history files
// (NAME.OFFSET.backup in a WAL archive), backup_label, tablespace_map,
// backup_manifest and global/pg_control. It also scans a directory of
// pg_basebackup outputs (plain or tar format, tars optionally compressed with
// gzip, lz4 or zstd) and returns one [Backup] per backup together with
// findings for anything unreadable or inconsistent; [OpenWAL] streams a WAL
// file carried in such a backup's pg_wal.
//
// # Text files
//
// backup_label and backup history files share one line format, written by
// do_pg_backup_start/do_pg_backup_stop (src/backend/access/transam/xlog.c)
// and, from PostgreSQL 16, build_backup_content (xlogbackup.c):
//
//	START WAL LOCATION: 0/900028 (file 000000010000000000000009)
//	STOP WAL LOCATION: 0/900100 (file 000000010000000000000009)   history only
//	CHECKPOINT LOCATION: 0/900060
//	BACKUP METHOD: streamed                                        or pg_start_backup (exclusive, <= 14)
//	BACKUP FROM: primary                                           master (13), primary, standby
//	START TIME: 2026-11-21 00:34:22 UTC                            log_timezone abbreviation
//	LABEL: free text
//	START TIMELINE: 1
//	STOP TIME: 2026-11-21 00:34:22 UTC                             history only
//	STOP TIMELINE: 1                                               history only
//	INCREMENTAL FROM LSN: 0/800028                                 17+, incremental backups only
//	INCREMENTAL FROM TLI: 1                                        17+, incremental backups only
//
// [ParseLabel] and [ParseHistoryFile] return the same [Label] type.
//
// # backup_manifest
//
// A JSON object (src/backend/backup/backup_manifest.c): version 1 (13-16) or
// 2 (17+, adds System-Identifier), Files, WAL-Ranges (newest timeline first)
// and Manifest-Checksum, a SHA-256 over every byte before the last line.
// [ParseManifest] follows pg_verifybackup's parser (parse_manifest.c) and
// [VerifyFile] its per-file checks.
//
// # pg_control
//
// ControlFileData (src/include/catalog/pg_control.h) as written by a 64-bit
// little-endian server. Three layouts exist for 13 to 18, told apart by
// pg_control_version:
//
//	offset  size  field                       notes
//	     0     8  system_identifier
//	     8     4  pg_control_version          1300 (13-16), 1700 (17), 1800 (18)
//	    12     4  catalog_version_no
//	    16     4  state (DBState)
//	    24     8  time (pg_time_t)
//	    32     8  checkPoint
//	    40    88  checkPointCopy (CheckPoint)  redo@40 ThisTimeLineID@48 PrevTimeLineID@52
//	                                          fullPageWrites@56 wal_level@60 (17+ only)
//	                                          nextXid@64 ... time@104 ... oldestActiveXid@120
//	   128     8  unloggedLSN
//	   136     8  minRecoveryPoint
//	   144     4  minRecoveryPointTLI
//	   152     8  backupStartPoint
//	   160     8  backupEndPoint
//	   168     1  backupEndRequired
//	   172    32  wal_level, wal_log_hints, MaxConnections, max_worker_processes,
//	              max_wal_senders, max_prepared_xacts, max_locks_per_xact,
//	              track_commit_timestamp (int/bool, 4-byte aligned)
//	   204     4  maxAlign
//	   208     8  floatFormat (1234567.0)
//	   216    36  blcksz, relseg_size, xlog_blcksz, xlog_seg_size, nameDataLen,
//	              indexMaxKeys, toast_max_chunk_size, loblksize, float8ByVal
//	   252     4  data_checksum_version
//	   256    32  mock_authentication_nonce   (18: default_char_signedness@256, nonce@257)
//	   288     4  crc                         (18: @292) CRC-32C of all bytes before it
//
// Nothing in this package writes to disk; tar entry names are untrusted and
// only compared, never used to build paths.
package backup
