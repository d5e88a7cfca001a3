package wal

import "fmt"

// XLOG_PAGE_MAGIC per supported major version (xlog_internal.h). Wire
// format: do not change.
var versions = [...]layout{
	{major: 13, magic: 0xD106, stats: 0, prepareHdr: 64, eorSize: 16},
	{major: 14, magic: 0xD10D, stats: 0, prepareHdr: 64, eorSize: 16},
	{major: 15, magic: 0xD110, stats: 12, prepareHdr: 72, eorSize: 16},
	{major: 16, magic: 0xD113, stats: 12, prepareHdr: 72, eorSize: 16},
	{major: 17, magic: 0xD116, stats: 12, prepareHdr: 72, eorSize: 24},
	{major: 18, magic: 0xD118, stats: 16, prepareHdr: 72, eorSize: 24},
}

// layout holds what differs between the supported versions.
type layout struct {
	major int
	magic uint16
	// stats is sizeof(xl_xact_stats_item): none before 15, 12 bytes in
	// 15-17, 16 in 18 (the object id became 64 bits, stored as two uint32).
	stats int
	// prepareHdr is MAXALIGN(sizeof(xl_xact_prepare)); 15 added
	// ncommitstats and nabortstats.
	prepareHdr int
	// eorSize is sizeof(xl_end_of_recovery); 17 added wal_level.
	eorSize int
}

// Version-dependent rules that follow directly from the major version.
func (l *layout) customRmgrs() bool { return l.major >= 15 } // RM_MIN_CUSTOM_ID 128
func (l *layout) toplevelXID() bool { return l.major >= 14 } // XLR_BLOCK_ID_TOPLEVEL_XID 252
func (l *layout) walLevelInCheckpoint() bool {
	return l.major >= 17 // CheckPoint.wal_level, XLOG_CHECKPOINT_REDO
}

// bimg_info bits (xlogrecord.h): 15 renumbered APPLY and added LZ4/ZSTD.
func (l *layout) bimgApply() uint8 {
	if l.major >= 15 {
		return 0x02
	}
	return 0x04
}

func (l *layout) bimgCompressed(info uint8) bool {
	if l.major >= 15 {
		return info&(0x04|0x08|0x10) != 0
	}
	return info&0x02 != 0
}

// xlpAllFlags is XLP_ALL_FLAGS. XLP_FIRST_IS_OVERWRITE_CONTRECORD (0x8)
// exists from 14 and was back-patched into 13 minor releases, so 13 WAL may
// carry it too.
const xlpAllFlags = 0x000F

func layoutFor(major int) (*layout, error) {
	for i := range versions {
		if versions[i].major == major {
			return &versions[i], nil
		}
	}
	return nil, fmt.Errorf("%w: PostgreSQL %d (13 to 18 are supported)", ErrUnsupportedVersion, major)
}

func layoutForMagic(magic uint16) (*layout, error) {
	for i := range versions {
		if versions[i].magic == magic {
			return &versions[i], nil
		}
	}
	// Every release so far used 0xD0xx/0xD1xx magics; anything else is
	// not a WAL page at all.
	switch {
	case magic == 0xD101:
		return nil, errorf(ErrUnsupportedVersion, "page magic %04X is PostgreSQL 12, which is not supported (13 to 18 are)", magic)
	case magic >= 0xD000 && magic < 0xD101:
		return nil, errorf(ErrUnsupportedVersion, "page magic %04X is PostgreSQL 11 or older, which is not supported (13 to 18 are)", magic)
	case magic > 0xD118 && magic <= 0xD1FF:
		return nil, errorf(ErrUnsupportedVersion, "page magic %04X is newer than PostgreSQL 18, which is not supported", magic)
	case magic > 0xD101 && magic < 0xD118:
		return nil, errorf(ErrUnsupportedVersion, "page magic %04X is a PostgreSQL development version, which is not supported", magic)
	}
	return nil, errorf(ErrBadMagic, "invalid page magic %04X", magic)
}

// MajorFromMagic returns the PostgreSQL major version that writes pages
// with the given XLOG_PAGE_MAGIC. Magics of other releases give an error
// wrapping [ErrUnsupportedVersion]; values that are no WAL magic at all
// give [ErrBadMagic].
func MajorFromMagic(magic uint16) (int, error) {
	l, err := layoutForMagic(magic)
	if err != nil {
		return 0, err
	}
	return l.major, nil
}

// PageMagic returns XLOG_PAGE_MAGIC of a supported major version.
func PageMagic(major int) (uint16, error) {
	l, err := layoutFor(major)
	if err != nil {
		return 0, err
	}
	return l.magic, nil
}
