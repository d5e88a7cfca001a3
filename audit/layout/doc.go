// Package layout reads the WAL area and backup catalogue of the repository
// layouts walaudit knows, from any [store.Store] (a directory, S3), into one
// [Listing] of WAL objects (segments, .partial, .backup and .history files
// with their parsed names, keys, sizes, times, compression and pgBackRest
// checksum), base backups ([backup.Backup] plus [BackupMeta]), unknown
// objects and findings. audit.Scan turns a listing into the inventory every
// check uses, so every check works on every layout.
//
// # Layouts (FORMATS.md §6)
//
//	plain       archive_command = 'cp %p …/%f' (or gzip, lz4, zstd …): WAL files
//	            by their own names, possibly with a compression suffix
//	pgbackrest  archive/<stanza>/archive.info, archive/<stanza>/<archive-id>/
//	            <16 hex>/<segment>-<sha1>[.gz|.lz4|.zst|.xz|.bz2];
//	            backup/<stanza>/backup.info and <label>/backup.manifest
//	walg        wal_005/<file>[.lz4|.lzma|.zst|.br|.gz|.lzo];
//	            basebackups_005/<name>_backup_stop_sentinel.json (+ metadata.json)
//	barman      wals/<16 hex>/<segment> (compressed under the plain name, xlog.db
//	            says how), wals/xlog.db, base/<id>/backup.info; and barman-cloud
//	            (<server>/wals/…/<segment>.gz, no xlog.db)
//
// [Detect] looks for each layout's marker directories with one small,
// early-stopped listing each (run concurrently): archive/<stanza>/… or
// backup/<stanza>/… for pgBackRest, wal_005/ or basebackups_005/ for
// WAL-G, wals/ or base/ for Barman; anything else is plain. [Scan] also
// finds a repository one directory down (a barman-cloud destination with
// server directories, a bucket holding a repository under a path) when the
// store holds no WAL at its top, and refuses a store with files but no
// WAL with an error wrapping [ErrUnrecognized] that lists what it found.
//
// # Clusters, backups, chains
//
// A pgBackRest archive id (e.g. 15-1) is one cluster; after pg_upgrade and
// stanza-upgrade a stanza holds several. The ids whose system identifier
// and version match archive.info's current [db] are read together; the
// others are reported as REPO_OTHER_CLUSTER and can be audited with
// Options.ArchiveID. Backups come from the catalogue (backup.info
// [backup:current], WAL-G sentinels, Barman backup.info); pgBackRest
// differential and incremental backups and WAL-G delta backups are
// restorable (the tool resolves their references), so they are ordinary
// backups whose BackupMeta.Prior names the backup they depend on; a
// dependency that is gone makes them unusable (REPO_BACKUP_MISSING).
// Barman backups whose status is not DONE are listed with an error finding
// (REPO_BACKUP_NOT_DONE) so they are never chosen.
//
// # Encryption
//
// Encrypted repositories are recognised and reported as REPO_ENCRYPTED:
// pgBackRest (repo-cipher-type: info files start with "Salted__" or have a
// [cipher] section), WAL-G (libsodium, OpenPGP, KMS: encryption keeps the
// object names, so it shows as content that is not what the suffix
// promises), Barman (xlog.db's encryption column, backup.info's
// encryption). Names are still listed; content is never read.
//
// Nothing here writes: stores are read-only by construction.
package layout
