package policy

import (
	"fmt"
	"path"
	"strings"

	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// Tool is a backup tool whose repository walaudit recognised.
type Tool struct {
	// Name is pgBackRest, WAL-G or Barman.
	Name string `json:"name"`
	// Evidence is the object that gave it away.
	Evidence string `json:"evidence"`
	// Expire is the tool's own way to delete old backups and WAL.
	Expire string `json:"expire"`
}

// RefusalMessage explains why prune-check and prune-plan do not judge
// deletions in this repository, and what to use instead.
func (t *Tool) RefusalMessage(cmd string) string {
	return fmt.Sprintf("%s refuses to judge deletions in a %s repository (%s found): deleting files behind %s's back leaves its own metadata inconsistent. "+
		"Let the tool expire them (%s) and run `walaudit check` with the same policy flags to prove that its retention keeps the policy",
		cmd, t.Name, t.Evidence, t.Name, t.Expire)
}

// DetectTool recognises pgBackRest, WAL-G and Barman (barman-cloud too)
// repositories from the listing; nil for a plain archive.
func DetectTool(objs []store.ObjectInfo) *Tool {
	pgbr := &Tool{Name: "pgBackRest", Expire: "`pgbackrest --stanza=NAME expire` with repo1-retention-full, repo1-retention-diff and repo1-retention-archive"}
	walg := &Tool{Name: "WAL-G", Expire: "`wal-g delete retain FULL N --confirm` or `wal-g delete before BACKUP --confirm`"}
	barman := &Tool{Name: "Barman", Expire: "Barman's retention_policy applied by `barman cron`, `barman delete SERVER BACKUP`, or `barman-cloud-backup-delete --retention-policy`"}
	var barmanInfo string
	for _, o := range objs {
		k := o.Key
		base := path.Base(k)
		dirs := strings.Split(path.Dir(k), "/")
		switch base {
		case "archive.info", "archive.info.copy", "backup.manifest", "backup.manifest.copy", "backup.info.copy":
			pgbr.Evidence = k
			return pgbr
		case "xlog.db":
			barman.Evidence = k
			return barman
		case "backup.info":
			if barmanInfo == "" {
				barmanInfo = k
			}
		}
		if strings.HasSuffix(base, "_backup_stop_sentinel.json") {
			walg.Evidence = k
			return walg
		}
		for _, d := range dirs {
			if d == "wal_005" || d == "basebackups_005" {
				walg.Evidence = k
				return walg
			}
		}
		if n, err := walname.Parse(base); err == nil && n.Checksum != "" {
			pgbr.Evidence = k
			return pgbr
		}
	}
	if barmanInfo != "" {
		barman.Evidence = barmanInfo
		return barman
	}
	return nil
}
