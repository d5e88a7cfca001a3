package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/walname"
)

// bondScenario is the demo's deterministic story: a trading desk's
// reservations table and its index table, a base backup, normal trading,
// a restore point, an erroneous maintenance job that releases every open
// CA-MUNI reservation, then more legitimate trades.
type bondScenario struct {
	Lab       *pgserver.Lab
	Primary   *pgserver.Server
	BackupDir string
	RestorePt string // restore point taken just before the bad job
	// RestorePointLSN is where the restore point record starts.
	RestorePointLSN walname.LSN
	BeforeBad       time.Time // a moment after the last good commit and before the bad job
	BadXID          uint32    // the bad job's transaction
	OpenCAMuni      int       // open CA-MUNI reservations before the bad job
}

var bondIssuers = []string{"CA-MUNI", "NY-MUNI", "TX-MUNI", "FL-MUNI"}

func runBondScenario(ctx context.Context, lab *pgserver.Lab, out io.Writer) (*bondScenario, error) {
	say := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	sc := &bondScenario{Lab: lab, RestorePt: "before-maintenance"}

	say("creating a throwaway PostgreSQL %s cluster with WAL archiving in %s", lab.Bin.Version, lab.Root)
	p, err := lab.InitPrimary(ctx, "primary", 1, map[string]string{"track_commit_timestamp": "on"})
	if err != nil {
		return nil, err
	}
	sc.Primary = p
	c, err := p.Connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	exec := func(q string, args ...any) error {
		if _, err := c.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("demo workload: %q: %w", q, err)
		}
		return nil
	}
	inTx := func(stmts ...[]any) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			for _, st := range stmts {
				if _, err := tx.Exec(ctx, st[0].(string), st[1:]...); err != nil {
					return fmt.Errorf("demo workload: %q: %w", st[0], err)
				}
			}
			return nil
		})
	}
	say("creating bond_reservations and its index table gsi_open_by_issuer")
	if err := exec(`CREATE TABLE bond_reservations (
		id int PRIMARY KEY, issuer text NOT NULL, cusip text NOT NULL, qty int NOT NULL,
		status text NOT NULL CHECK (status IN ('open','released','filled')))`); err != nil {
		return nil, err
	}
	if err := exec(`CREATE TABLE gsi_open_by_issuer (
		issuer text NOT NULL, reservation_id int PRIMARY KEY REFERENCES bond_reservations(id))`); err != nil {
		return nil, err
	}
	// 40 reservations, 10 per issuer, all open; index rows in the same transaction.
	if err := inTx(
		[]any{`INSERT INTO bond_reservations SELECT g, (ARRAY['CA-MUNI','NY-MUNI','TX-MUNI','FL-MUNI'])[1 + (g-1) % 4],
			'CUSIP' || lpad(g::text, 4, '0'), 100 * g, 'open' FROM generate_series(1, 40) g`},
		[]any{`INSERT INTO gsi_open_by_issuer SELECT issuer, id FROM bond_reservations WHERE status = 'open'`},
	); err != nil {
		return nil, err
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		return nil, err
	}
	say("taking a base backup with pg_basebackup")
	if sc.BackupDir, err = lab.BaseBackup(ctx, p, "base1"); err != nil {
		return nil, err
	}
	say("normal trading: fills and new reservations")
	for i := 0; i < 6; i++ {
		id := 41 + i
		issuer := bondIssuers[1+i%3] // new reservations for NY, TX and FL
		if err := inTx(
			[]any{`INSERT INTO bond_reservations VALUES ($1::int, $2, 'CUSIP' || lpad($1::int::text, 4, '0'), 500, 'open')`, id, issuer},
			[]any{`INSERT INTO gsi_open_by_issuer VALUES ($2, $1)`, id, issuer},
		); err != nil {
			return nil, err
		}
		fill := 2 + i*4 // ids 2, 6, 10, …: NY-MUNI; CA-MUNI's (ids ≡ 1 mod 4) stay open
		if err := inTx(
			[]any{`UPDATE bond_reservations SET status = 'filled' WHERE id = $1`, fill},
			[]any{`DELETE FROM gsi_open_by_issuer WHERE reservation_id = $1`, fill},
		); err != nil {
			return nil, err
		}
	}
	if err := c.QueryRow(ctx, `SELECT count(*) FROM bond_reservations WHERE issuer = 'CA-MUNI' AND status = 'open'`).Scan(&sc.OpenCAMuni); err != nil {
		return nil, err
	}
	say("creating restore point %q (%d open CA-MUNI reservations)", sc.RestorePt, sc.OpenCAMuni)
	var rpl string
	if err := c.QueryRow(ctx, `SELECT pg_create_restore_point($1)::text`, sc.RestorePt).Scan(&rpl); err != nil {
		return nil, err
	}
	if sc.RestorePointLSN, err = walname.ParseLSN(rpl); err != nil {
		return nil, err
	}
	// A clear gap between the last good commit and the bad job, so a time
	// target in between is unambiguous.
	time.Sleep(20 * time.Millisecond)
	if err := c.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&sc.BeforeBad); err != nil {
		return nil, err
	}
	sc.BeforeBad = sc.BeforeBad.UTC().Truncate(time.Microsecond)
	time.Sleep(20 * time.Millisecond)
	say("the erroneous maintenance job: every open CA-MUNI reservation flipped to released")
	var xid int64
	if err := c.QueryRow(ctx, `WITH j AS (
			UPDATE bond_reservations SET status = 'released' WHERE issuer = 'CA-MUNI' AND status = 'open' RETURNING id),
		d AS (DELETE FROM gsi_open_by_issuer WHERE issuer = 'CA-MUNI' RETURNING 1)
		SELECT txid_current() FROM (SELECT count(*) FROM j) a, (SELECT count(*) FROM d) b`).Scan(&xid); err != nil {
		return nil, fmt.Errorf("demo workload: bad job: %w", err)
	}
	sc.BadXID = uint32(xid)
	say("more legitimate trades after the bad job")
	for i := 0; i < 3; i++ {
		id := 60 + i
		if err := inTx(
			[]any{`INSERT INTO bond_reservations VALUES ($1::int, 'NY-MUNI', 'CUSIP' || lpad($1::int::text, 4, '0'), 250, 'open')`, id},
			[]any{`INSERT INTO gsi_open_by_issuer VALUES ('NY-MUNI', $1)`, id},
		); err != nil {
			return nil, err
		}
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		return nil, err
	}
	say("archive complete: %s", lab.Archive)
	return sc, nil
}
