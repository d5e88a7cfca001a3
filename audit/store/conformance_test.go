package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The conformance suite: one set of checks of the Store contract that
// every backend must pass. A backend only supplies a constructor that
// returns a store holding exactly the given objects (restic's
// internal/backend/test/suite.go does the same).

type backendFactory struct {
	name string
	new  func(t *testing.T, objects map[string][]byte) Store
}

func backends() []backendFactory {
	return []backendFactory{
		{"local", func(t *testing.T, objects map[string][]byte) Store {
			dir := t.TempDir()
			for k, v := range objects {
				p := filepath.Join(dir, filepath.FromSlash(k))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, v, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"s3", s3Factory(S3Options{})},
		{"s3-sequential-page2", s3Factory(S3Options{ListWorkers: 1, ListPageSize: 2})},
		{"s3-concurrent-page2", s3Factory(S3Options{ListWorkers: 8, ListPageSize: 2})},
	}
}

// s3Factory puts the objects under pg/main/ in the fake server's bucket,
// next to decoys outside the prefix, and opens the store through the URL
// registry (OpenWith, as the CLI does).
func s3Factory(opts S3Options) func(t *testing.T, objects map[string][]byte) Store {
	return func(t *testing.T, objects map[string][]byte) Store {
		f := newFakeS3(t)
		for k, v := range objects {
			f.put(t, "walarchive", "pg/main/"+k, v)
		}
		f.put(t, "walarchive", "pg/mainx/000000010000000000000001", []byte("decoy"))
		f.put(t, "walarchive", "pg/000000010000000000000001", []byte("decoy"))
		f.put(t, "walarchive", "zzz", []byte("decoy"))
		s, err := OpenWith(context.Background(), f.url("walarchive", "pg/main"), Options{S3: opts})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// fixture returns the suite's objects: WAL segments (16 KiB, so a header
// read is a true part), the other files of an archive, an empty object, and
// keys that test prefix semantics.
func fixture() map[string][]byte {
	r := rand.New(rand.NewPCG(7, 8))
	seg := func() []byte {
		b := make([]byte, 16<<10)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	return map[string][]byte{
		"000000010000000000000001":                 seg(),
		"000000010000000000000002":                 seg(),
		"000000010000000000000003.partial":         seg(),
		"000000010000000000000002.00000028.backup": []byte("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"),
		"00000002.history":                         []byte("1\t0/3000000\tno recovery target specified\n"),
		"000000020000000000000003":                 seg(),
		"sub/dir/file.txt":                         []byte("hello"),
		"sub/empty":                                {},
		"subx":                                     []byte("x"),
	}
}

func TestConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			objects := fixture()
			s := b.new(t, objects)
			ctx := context.Background()
			keys := func(prefix string) []string {
				var out []string
				for k := range objects {
					if strings.HasPrefix(k, prefix) {
						out = append(out, k)
					}
				}
				slices.Sort(out)
				return out
			}

			t.Run("ListAll", func(t *testing.T) {
				seen := map[string]ObjectInfo{}
				err := s.List(ctx, "", func(o ObjectInfo) error {
					if _, dup := seen[o.Key]; dup {
						t.Errorf("key %q listed twice", o.Key)
					}
					seen[o.Key] = o
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(seen) != len(objects) {
					t.Errorf("listed %d objects, want %d: %v", len(seen), len(objects), seen)
				}
				for k, v := range objects {
					o, ok := seen[k]
					switch {
					case !ok:
						t.Errorf("%q not listed", k)
					case o.Size != int64(len(v)):
						t.Errorf("%q listed with size %d, want %d", k, o.Size, len(v))
					case o.ModTime.IsZero():
						t.Errorf("%q listed without a modification time", k)
					}
				}
			})

			t.Run("ListPrefix", func(t *testing.T) {
				for _, prefix := range []string{"sub/", "sub", "sub/dir/", "000000010000000000000002", "00000001", "00000002.", "nothing/", "nothing", "zzz"} {
					sameKeys(t, "prefix "+prefix, collect(t, s, prefix), keys(prefix))
				}
			})

			t.Run("ListStopsOnError", func(t *testing.T) {
				stop := errors.New("enough")
				calls := 0
				err := s.List(ctx, "", func(ObjectInfo) error { calls++; return stop })
				if !errors.Is(err, stop) || calls != 1 {
					t.Fatalf("List returned %v after %d calls, want the fn error after 1", err, calls)
				}
			})

			t.Run("ListCanceled", func(t *testing.T) {
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				err := s.List(cctx, "", func(ObjectInfo) error { return nil })
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("List with a canceled context: %v, want context.Canceled", err)
				}
			})

			t.Run("Stat", func(t *testing.T) {
				for k, v := range objects {
					o, err := s.Stat(ctx, k)
					if err != nil {
						t.Fatalf("stat %q: %v", k, err)
					}
					if o.Key != k || o.Size != int64(len(v)) || o.ModTime.IsZero() {
						t.Errorf("stat %q = %+v, want size %d", k, o, len(v))
					}
				}
				for _, k := range []string{"000000010000000000000009", "sub/nothing", "zzz"} {
					if _, err := s.Stat(ctx, k); !IsNotExist(err) {
						t.Errorf("stat missing %q: err = %v, want ErrNotExist", k, err)
					}
				}
			})

			t.Run("Open", func(t *testing.T) {
				for k, v := range objects {
					got := readAll(t, func() (io.ReadCloser, error) { return s.Open(ctx, k) })
					if !bytes.Equal(got, v) {
						t.Errorf("open %q: read %d bytes, want %d", k, len(got), len(v))
					}
				}
				if _, err := s.Open(ctx, "000000010000000000000009"); !IsNotExist(err) {
					t.Errorf("open missing: err = %v, want ErrNotExist", err)
				}
			})

			t.Run("OpenRange", func(t *testing.T) {
				seg := objects["000000010000000000000001"]
				size := int64(len(seg))
				cases := []struct {
					key    string
					off, n int64
					want   []byte
				}{
					{"000000010000000000000001", 0, 8192, seg[:8192]},
					{"000000010000000000000001", 100, 50, seg[100:150]},
					{"000000010000000000000001", size - 10, 100, seg[size-10:]},
					{"000000010000000000000001", 10, -1, seg[10:]},
					{"000000010000000000000001", size, 10, nil},
					{"000000010000000000000001", size + 5, 10, nil},
					{"000000010000000000000001", 0, 0, nil},
					{"sub/empty", 0, 10, nil},
					{"sub/dir/file.txt", 1, 3, []byte("ell")},
				}
				for _, c := range cases {
					got := readAll(t, func() (io.ReadCloser, error) { return OpenRange(ctx, s, c.key, c.off, c.n) })
					if !bytes.Equal(got, c.want) {
						t.Errorf("OpenRange(%q, %d, %d): read %d bytes, want %d", c.key, c.off, c.n, len(got), len(c.want))
					}
				}
				for _, n := range []int64{0, 10, -1} {
					if _, err := OpenRange(ctx, s, "000000010000000000000009", 0, n); !IsNotExist(err) {
						t.Errorf("OpenRange of a missing object, n=%d: err = %v, want ErrNotExist", n, err)
					}
				}
				if _, err := OpenRange(ctx, s, "000000010000000000000001", -1, 10); err == nil {
					t.Error("OpenRange at a negative offset: no error")
				}
			})

			t.Run("String", func(t *testing.T) {
				if str := s.String(); str == "" || strings.Contains(str, testSecretKey) || strings.Contains(str, testAccessKey) {
					t.Errorf("String() = %q", str)
				}
			})
		})
	}
}

// readAll opens with open, reads everything and closes.
func readAll(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	return b
}
