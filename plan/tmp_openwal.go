package plan

import (
	"context"
	"fmt"
	"io"

	"github.com/walaudit/walaudit/audit/backup"
)

// TEMPORARY until backup.OpenWAL lands.
func openBackupWAL(ctx context.Context, b *backup.Backup, name string) (io.ReadCloser, error) {
	return nil, fmt.Errorf("reading WAL from backup %s not supported yet", b.ID)
}
