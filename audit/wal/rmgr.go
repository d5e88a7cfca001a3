package wal

import "fmt"

// RmgrID is a resource manager id, xl_rmid (src/include/access/rmgrlist.h).
type RmgrID uint8

// Built-in resource managers, identical in 13 to 18. Wire format: do not
// change.
const (
	RmXLOG RmgrID = iota
	RmXact
	RmSmgr
	RmCLOG
	RmDatabase
	RmTablespace
	RmMultiXact
	RmRelMap
	RmStandby
	RmHeap2
	RmHeap
	RmBtree
	RmHash
	RmGin
	RmGist
	RmSequence
	RmSPGist
	RmBRIN
	RmCommitTs
	RmReplOrigin
	RmGeneric
	RmLogicalMsg

	// RmMaxBuiltin is the highest built-in id (RM_MAX_BUILTIN_ID).
	RmMaxBuiltin = RmLogicalMsg
	// RmMinCustom is the lowest custom resource manager id (PG 15+);
	// custom ids run to 255.
	RmMinCustom RmgrID = 128
)

// rmgrNames are the names pg_waldump prints (rmgrlist.h).
var rmgrNames = [...]string{
	"XLOG", "Transaction", "Storage", "CLOG", "Database", "Tablespace",
	"MultiXact", "RelMap", "Standby", "Heap2", "Heap", "Btree", "Hash",
	"Gin", "Gist", "Sequence", "SPGist", "BRIN", "CommitTs",
	"ReplicationOrigin", "Generic", "LogicalMessage",
}

// String returns pg_waldump's name for the resource manager: "Heap",
// "Transaction", ...; custom ids print as "custom128" and invalid ones as
// "rmgr(N)".
func (id RmgrID) String() string {
	switch {
	case id <= RmMaxBuiltin:
		return rmgrNames[id]
	case id >= RmMinCustom:
		return fmt.Sprintf("custom%03d", uint8(id))
	}
	return fmt.Sprintf("rmgr(%d)", uint8(id))
}

// RmgrName returns the name of resource manager id, as [RmgrID.String].
func RmgrName(id uint8) string { return RmgrID(id).String() }

// validRmgr reports whether id may appear in WAL of the layout's version
// (RmgrIdIsValid).
func (l *layout) validRmgr(id RmgrID) bool {
	return id <= RmMaxBuiltin || (l.customRmgrs() && id >= RmMinCustom)
}
