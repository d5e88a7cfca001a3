package store

import "strings"

// Splitting a listing into key ranges
//
// S3 lists keys in ascending byte order, one page (at most 1000 keys) per
// request, and each request needs the previous page's continuation token:
// a plain listing of a 100,000-segment archive is 100 round trips in a row.
// A WAL archive's keys share long prefixes and change in their last hex
// digits (TTTTTTTTLLLLLLLLSSSSSSSS, or pgBackRest's
// archive/<stanza>/<id>/<16hex>/<24hex>-<sha1>), so the key space can be
// cut into ranges that are listed at the same time, each with its own
// StartAfter and Prefix.
//
// A range is half-open, [lo, hi), and the ranges of one listing partition
// the key space exactly whatever the boundaries are, so correctness never
// depends on guessing the key alphabet right; only the balance does.
//
// The boundaries come from the keys seen: when a range's page is truncated,
// a key a quarter into the page (the first one could be an outlier such as
// 00000002.history before timeline 2's segments) and the last key share a
// prefix L of length d and differ at byte d. The rest of the range is cut
//
//   - at byte d, every step characters of the alphabet, where step is how
//     far byte d advanced over the page, so each piece holds about a page;
//   - at byte d-1, one piece per character after L[d-1] (each about
//     alphabet/step pages, cut again when listed);
//   - at bytes d-2 and d-3, one piece for "everything after L[:j+1]"
//     (usually empty: one cheap request each); the last piece, up to the
//     range's end, holds whatever lies further and is cut when listed.
//
// For 16 MiB WAL segments the first page covers log files 0-3, the pieces
// are 3 log files each, and the log-id digit above gets 15 pieces of 16 log
// files: after two rounds all workers are busy on pieces of about a page.

// Key alphabets tried in order for the bytes where boundaries are cut.
const (
	alphabetHexUpper = "0123456789ABCDEF"
	alphabetHexLower = "0123456789abcdef"
	alphabetAlnum    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// maxSplit bounds the new ranges one truncated page spawns.
const maxSplit = 64

// maxLevels bounds the bytes above d-1 that get a range of their own.
const maxLevels = 2

// pickAlphabet returns the first alphabet that contains every alphanumeric
// byte of seen. Other bytes ('.' of ".history", '-') are rare in keys and
// are covered by the ranges between boundaries anyway.
func pickAlphabet(seen ...byte) string {
	for _, a := range []string{alphabetHexUpper, alphabetHexLower} {
		all := true
		for _, c := range seen {
			if strings.IndexByte(alphabetAlnum, c) >= 0 && strings.IndexByte(a, c) < 0 {
				all = false
				break
			}
		}
		if all {
			return a
		}
	}
	return alphabetAlnum
}

// nextIndex returns the index in alphabet a of the first byte greater than c.
func nextIndex(a string, c byte) int {
	for i := 0; i < len(a); i++ {
		if a[i] > c {
			return i
		}
	}
	return len(a)
}

// commonPrefixLen returns the length of the longest common prefix of a and b.
func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// cuttable reports whether a boundary may end in c at byte j: c is printable
// ASCII, so the boundary is valid UTF-8 and cut at a character boundary.
func cuttable(c byte) bool { return c >= ' ' && c < '~' }

// cut is how splitPoints cuts the rest of a range.
type cut struct {
	// bounds are the boundaries, ascending, all greater than the page's
	// last key and below the range's end.
	bounds []string
	// fine is the number of bounds at byte d: bounds[:fine] start pieces
	// of about a page each, as does the rest the worker keeps.
	fine int
	// perPiece is the most keys such a piece should hold, from the keys
	// per character at byte d the page showed; 0 if unknown.
	perPiece int
}

// splitPoints cuts the rest of a range after a truncated page. keys are
// the page's keys in the range, ascending (at least two); floor is the
// length of the listing's Prefix, which all bounds keep; hi is the range's
// end ("" for none). The result may have no bounds.
func splitPoints(keys []string, floor int, hi string) cut {
	var c cut
	if len(keys) < 2 {
		return c
	}
	sample, last := keys[len(keys)/4], keys[len(keys)-1]
	if sample >= last || len(last) <= floor {
		return c
	}
	d := max(commonPrefixLen(sample, last), floor)
	// Cut at a character boundary: back up over UTF-8 continuation bytes
	// and over a multi-byte character's lead byte.
	for d > floor && last[d] >= 0x80 {
		d--
	}
	if last[d] >= 0x80 {
		return c
	}
	add := func(b string) bool {
		if hi != "" && b >= hi || len(c.bounds) >= maxSplit {
			return false
		}
		c.bounds = append(c.bounds, b)
		return true
	}

	// Byte d: pieces of about a page each.
	seen := []byte{last[d]}
	if len(sample) > d {
		seen = append(seen, sample[d])
	}
	if d > floor {
		seen = append(seen, last[d-1])
	}
	a := pickAlphabet(seen...)
	step := 1
	if len(sample) > d {
		if s, l := strings.IndexByte(a, sample[d]), strings.IndexByte(a, last[d]); s >= 0 && l > s {
			step = l - s
		}
	}
	L := last[:d]
	for i := nextIndex(a, last[d]) + step - 1; i < len(a); i += step {
		if !add(L + a[i:i+1]) {
			return c
		}
	}
	c.fine = len(c.bounds)
	if unit := fullUnitKeys(keys, L); unit > 0 {
		c.perPiece = step * unit
	}
	if d == floor {
		return c
	}

	// Byte d-1: one piece per character.
	if ch := last[d-1]; cuttable(ch) {
		for i := nextIndex(a, ch); i < len(a); i++ {
			if !add(last[:d-1] + a[i:i+1]) {
				return c
			}
		}
	}

	// Bytes d-2 and d-3: the rest after each shorter prefix. The last
	// range, up to hi, holds anything further and is cut when listed.
	for j := d - 2; j >= max(floor, d-1-maxLevels); j-- {
		if ch := last[j]; cuttable(ch) {
			if !add(last[:j] + string(ch+1)) {
				return c
			}
		}
	}
	return c
}

// fullUnitKeys returns the most keys under one character at byte len(L)
// among the characters the page holds whole (those strictly between its
// first and last key's), or 0 if it holds none whole.
func fullUnitKeys(keys []string, L string) int {
	d := len(L)
	var count [256]int
	lo, hi := -1, -1
	for _, k := range keys {
		if len(k) > d && strings.HasPrefix(k, L) {
			ch := int(k[d])
			count[ch]++
			if lo < 0 {
				lo = ch
			}
			hi = ch
		}
	}
	most := 0
	for ch := lo + 1; ch >= 1 && ch < hi; ch++ {
		most = max(most, count[ch])
	}
	return most
}

// startAfter returns a StartAfter value just below boundary b (a string
// splitPoints made, ending in a printable ASCII byte). Keys between it and
// b are listed but belong to the range before, which lists them too; the
// range starting at b skips them.
func startAfter(b string) string {
	n := len(b)
	return b[:n-1] + string(b[n-1]-1) + "~"
}

// rangePrefix returns the longest Prefix every key in [lo, hi) has, given
// that they all have parent; hi == "" means no upper bound.
func rangePrefix(lo, hi, parent string) string {
	if hi == "" {
		return parent
	}
	p := commonPrefixLen(lo, hi)
	// [lo, hi) lies inside the subtree of lo[:m] when hi is at most the
	// first string after that subtree, lo[:m-1]+(lo[m-1]+1).
	for m := len(lo); m > p; m-- {
		if c := lo[m-1]; c < 0xff && hi <= lo[:m-1]+string([]byte{c + 1}) {
			p = m
			break
		}
	}
	if p < len(parent) {
		return parent
	}
	return lo[:p]
}
