package layout

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// iniFile is a pgBackRest info file (archive.info, backup.info,
// backup.manifest): sections of key=value lines whose values are JSON
// (FORMATS §6.1). Values are kept as raw JSON text.
type iniFile struct {
	sections map[string]map[string]string
	order    []string // section names in first-seen order
}

// parseINI parses pgBackRest's INI dialect. Sections may repeat (the
// [backrest] section opens and closes the file); their keys are merged.
// only, when not nil, limits the sections kept (manifests have one line
// per file, which the layout does not need).
func parseINI(data []byte, only map[string]bool) (*iniFile, error) {
	f := &iniFile{sections: map[string]map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	section := ""
	keep := false
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		if s[0] == '[' {
			if !strings.HasSuffix(s, "]") || len(s) < 3 {
				return nil, fmt.Errorf("line %d: malformed section header %q", line, clipText(s))
			}
			section = s[1 : len(s)-1]
			keep = only == nil || only[section]
			if keep && f.sections[section] == nil {
				f.sections[section] = map[string]string{}
				f.order = append(f.order, section)
			}
			continue
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: key outside of any section", line)
		}
		if !keep {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d in [%s]: want key=value, got %q", line, section, clipText(s))
		}
		f.sections[section][k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// has reports whether a section exists.
func (f *iniFile) has(section string) bool { _, ok := f.sections[section]; return ok }

// raw returns the raw JSON value of a key.
func (f *iniFile) raw(section, key string) (string, bool) {
	v, ok := f.sections[section][key]
	return v, ok
}

// str decodes a JSON string value ("" when absent or not a string).
func (f *iniFile) str(section, key string) string {
	v, ok := f.raw(section, key)
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal([]byte(v), &s) != nil {
		return ""
	}
	return s
}

// uint decodes a JSON number value.
func (f *iniFile) uint(section, key string) (uint64, bool) {
	v, ok := f.raw(section, key)
	if !ok {
		return 0, false
	}
	var n uint64
	if json.Unmarshal([]byte(v), &n) != nil {
		return 0, false
	}
	return n, true
}

// keys returns the keys of a section, sorted.
func (f *iniFile) keys(section string) []string {
	var out []string
	for k := range f.sections[section] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checksumOK verifies [backrest] backrest-checksum: the SHA-1 of the file
// rendered as one JSON object, sections and keys in sorted order, values
// as written, without the checksum itself. ok is false when the file has
// no checksum (nothing to verify); match tells the verdict otherwise.
func (f *iniFile) checksumOK() (match, ok bool) {
	want := f.str("backrest", "backrest-checksum")
	if want == "" {
		return false, false
	}
	var b strings.Builder
	b.WriteByte('{')
	secs := append([]string(nil), f.order...)
	sort.Strings(secs)
	firstSec := true
	for _, s := range secs {
		keys := f.keys(s)
		if s == "backrest" {
			keys = without(keys, "backrest-checksum")
		}
		if len(keys) == 0 {
			continue
		}
		if !firstSec {
			b.WriteByte(',')
		}
		firstSec = false
		b.WriteString(jsonString(s))
		b.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonString(k))
			b.WriteByte(':')
			b.WriteString(f.sections[s][k])
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	sum := sha1.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:]) == want, true
}

func without(list []string, drop string) []string {
	out := list[:0]
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

// jsonString renders s as pgBackRest does: a JSON string with the usual
// escapes (HTML characters are not escaped).
func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}

func clipText(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
