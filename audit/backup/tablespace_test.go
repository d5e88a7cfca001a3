package backup

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseTablespaceMapReal(t *testing.T) {
	for dir, want := range map[string]TablespaceEntry{
		"tar_stream":  {OID: 16384, Path: "/tmp/bkfix/ts one"},
		"standby_tar": {OID: 16384, Path: "/tmp/bkfix/standby.ts1"},
	} {
		got, err := ParseTablespaceMap(fixture(t, dir+"/tablespace_map"))
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %+v, want %+v", dir, got, want)
		}
	}
}

func TestParseTablespaceMap(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []TablespaceEntry
		err  string
	}{
		{"empty", "", nil, ""},
		{"two", "16384 /a\n16385 /b c\n", []TablespaceEntry{{16384, "/a"}, {16385, "/b c"}}, ""},
		{"leading blank in path", "16384  /x\n", []TablespaceEntry{{16384, " /x"}}, ""},
		{"escapes", "16384 /a\\\\b\\\nc\\\rd\n", []TablespaceEntry{{16384, "/a\\b\nc\rd"}}, ""},
		{"crlf", "16384 /a\r\n16385 /b\r\n", []TablespaceEntry{{16384, "/a"}, {16385, "/b"}}, ""},
		{"unterminated", "16384 /a", nil, "line 1: last line not terminated"},
		{"dangling backslash", "16384 /a\\", nil, "last line not terminated"},
		{"no path", "16384\n", nil, "line 1:"},
		{"empty path", "16384 \n", nil, "line 1:"},
		{"bad oid", "1a /x\n", nil, "line 1:"},
		{"zero oid", "0 /x\n", nil, "line 1:"},
		{"second line bad", "16384 /a\n\nx /b\n", nil, "line 3:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTablespaceMap([]byte(tc.in))
			if tc.err != "" {
				if !errors.Is(err, ErrInvalidTablespaceMap) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrInvalidTablespaceMap containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseTablespaceMap(f *testing.F) {
	f.Add([]byte("16384 /tmp/bkfix/ts one\n"))
	f.Add([]byte("16384 /a\\\\b\\\nc\r\n16385  x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseTablespaceMap(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidTablespaceMap) {
				t.Fatalf("error does not wrap ErrInvalidTablespaceMap: %v", err)
			}
			return
		}
		for _, e := range entries {
			if e.OID == 0 || e.Path == "" {
				t.Fatalf("accepted empty entry %+v", e)
			}
		}
	})
}
