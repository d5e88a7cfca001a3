package layout

import (
	"context"
	"fmt"

	"github.com/walaudit/walaudit/audit/store"
)

// plainLayout is what archive_command = 'cp %p …/%f' (or a gzip, lz4,
// zstd … pipe) produces: WAL files by their own names, possibly with a
// compression suffix, usually flat. Sub-directories are listed too; every
// object is classified by its base name.
type plainLayout struct{}

func (plainLayout) Name() string { return Plain }

func (plainLayout) Scan(ctx context.Context, st store.Store, opts Options) (*Listing, error) {
	l := &Listing{Layout: Plain, Prefix: opts.Prefix}
	err := st.List(ctx, opts.Prefix, func(oi store.ObjectInfo) error {
		o, ok := parseObject(oi)
		if ok {
			l.WAL = append(l.WAL, o)
		} else {
			l.Unknown = append(l.Unknown, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list archive %s: %w", st, err)
	}
	sortObjects(l.WAL)
	sortObjects(l.Unknown)
	return l, nil
}

// Locate asks for the name at the top level: uncompressed first, then
// each compression suffix, one Stat each until one exists.
func (plainLayout) Locate(ctx context.Context, st store.Store, name string, opts Options) ([]Location, error) {
	return statFirst(ctx, st, candidates(opts.Prefix, name))
}
