// Package walname parses and formats the names of the files in a PostgreSQL
// WAL archive and does LSN and segment arithmetic.
//
// An LSN is a 64-bit byte position printed as "HI/LO" in hex. With segment
// size S (a power of two, 1 MiB to 1 GiB), byte L lives in segment L/S at
// offset L%S, and segment N is named
//
//	TTTTTTTT LLLLLLLL SSSSSSSS      (no blanks; upper-case hex)
//	timeline N/(2^32/S) N%(2^32/S)
//
// The package imports only the standard library; sizes are values, never
// package state.
package walname
