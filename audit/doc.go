// Package audit reads WAL archives: it lists a store through a layout into
// an [Inventory] of segments per timeline, history files, backup files and
// unknown objects, and reports what is wrong as findings.
//
// Sub-packages: store (where objects live, read-only), wal (the page and
// record reader), backup (backup_label, backup_manifest, .backup files,
// pg_control, pg_basebackup outputs), finding (the finding value).
package audit
