package store

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// List implements [Store]. Keys ending in "/" (the empty "folder" objects
// some consoles create) are not listed, as Local lists no directories.
//
// With more than one list worker (S3Options.ListWorkers) the key space is
// cut into ranges as pages come in, at the characters where the keys change
// (the log-id and segment digits of WAL names), and the ranges are listed
// with up to ListWorkers requests at once. fn still runs on the caller's
// goroutine, once per object, in no particular order. The cut relies on
// the server returning keys in ascending order, as S3 does: a server that
// does not makes List fail rather than miss or repeat keys. S3 Express
// directory buckets (names ending in --x-s3) are listed sequentially.
func (s *S3) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	full := s.root + prefix
	if s.workers <= 1 {
		return s.listSequential(ctx, prefix, full, fn)
	}
	return s.listConcurrent(ctx, prefix, full, fn)
}

// info converts a listed object, or reports false for a folder marker.
func (s *S3) info(o types.Object) (ObjectInfo, bool) {
	k := aws.ToString(o.Key)
	if strings.HasSuffix(k, "/") {
		return ObjectInfo{}, false
	}
	return ObjectInfo{Key: strings.TrimPrefix(k, s.root), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}, true
}

// listSequential pages through the prefix with continuation tokens.
func (s *S3) listSequential(ctx context.Context, prefix, full string, fn func(ObjectInfo) error) error {
	p := s3.NewListObjectsV2Paginator(s.api, &s3.ListObjectsV2Input{
		Bucket:  &s.bucket,
		Prefix:  &full,
		MaxKeys: &s.pageSize,
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return s.fail("list", prefix, err)
		}
		for _, o := range out.Contents {
			if k := aws.ToString(o.Key); !strings.HasPrefix(k, full) {
				return fmt.Errorf("list %s: the server returned key %q outside the prefix", s.where(prefix), k)
			}
			if info, ok := s.info(o); ok {
				if err := fn(info); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// keyRange is a part of a listing: the keys k with lo <= k < hi (hi == ""
// means no bound) that have the prefix.
type keyRange struct {
	prefix string // Prefix parameter: every key of the range has it
	after  string // StartAfter parameter: below every key of the range
	lo     string // inclusive lower bound; "" when after is exact
	hi     string // exclusive upper bound; "" for none
	// maxKeys, when not 0, is the MaxKeys of the range's first request:
	// the keys it is expected to hold, plus a margin.
	maxKeys int32
}

// newRange returns the range [lo, hi) of a listing with prefix parent.
func newRange(lo, hi, parent string) keyRange {
	return keyRange{prefix: rangePrefix(lo, hi, parent), after: startAfter(lo), lo: lo, hi: hi}
}

// listMsg is what a list worker reports to the caller's goroutine.
type listMsg struct {
	batch  []ObjectInfo // objects to pass to fn
	ranges []keyRange   // new ranges to schedule
	done   bool         // the worker finished its range, with err
	err    error
}

// listConcurrent lists with s.workers workers. The caller's goroutine
// schedules ranges, and calls fn for the batches the workers send.
func (s *S3) listConcurrent(ctx context.Context, prefix, full string, fn func(ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	tasks := make(chan keyRange)
	msgs := make(chan listMsg, s.workers)
	send := func(m listMsg) error {
		select {
		case msgs <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for r := range tasks {
				err := s.listRange(ctx, prefix, full, r, send)
				if send(listMsg{done: true, err: err}) != nil {
					return // the listing is over
				}
			}
		})
	}
	// However the loop below ends (an error, fn panicking), stop the
	// workers: their sends give up once ctx is canceled.
	defer func() {
		cancel()
		close(tasks)
		wg.Wait()
	}()

	queue := []keyRange{{prefix: full}}
	inflight := 0
	var err error
	for err == nil && (len(queue) > 0 || inflight > 0) {
		var out chan keyRange
		var next keyRange
		if len(queue) > 0 {
			out, next = tasks, queue[0]
		}
		select {
		case out <- next:
			queue = queue[1:]
			inflight++
		case m := <-msgs:
			switch {
			case m.done:
				inflight--
				err = m.err
			case m.ranges != nil:
				queue = append(queue, m.ranges...)
			default:
				for _, o := range m.batch {
					if err = fn(o); err != nil {
						break
					}
				}
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
	}

	return err
}

// listRange lists one range page by page, sending each page's objects and,
// after a truncated page, the ranges split off the rest.
func (s *S3) listRange(ctx context.Context, prefix, full string, r keyRange, send func(listMsg) error) error {
	var token *string
	prev := r.after
	for {
		in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(r.prefix), MaxKeys: aws.Int32(s.pageSize)}
		if r.maxKeys > 0 {
			in.MaxKeys = aws.Int32(r.maxKeys)
			r.maxKeys = 0 // the range is larger than expected: full pages
		}
		if token != nil {
			in.ContinuationToken = token
		} else if r.after != "" {
			in.StartAfter = aws.String(r.after)
		}
		out, err := s.api.ListObjectsV2(ctx, in)
		if err != nil {
			return s.fail("list", prefix, err)
		}
		var batch []ObjectInfo
		var inRange []string
		done := false
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			if k <= prev {
				return fmt.Errorf("list %s: the server returned key %q after %q: concurrent listing needs keys in ascending order, list with one worker instead", s.where(prefix), k, prev)
			}
			if !strings.HasPrefix(k, r.prefix) {
				return fmt.Errorf("list %s: the server returned key %q outside the prefix %q", s.where(prefix), k, r.prefix)
			}
			prev = k
			if r.hi != "" && k >= r.hi {
				done = true
				break
			}
			if k < r.lo {
				continue
			}
			inRange = append(inRange, k)
			if info, ok := s.info(o); ok {
				batch = append(batch, info)
			}
		}
		if len(batch) > 0 {
			if err := send(listMsg{batch: batch}); err != nil {
				return err
			}
		}
		if done || !aws.ToBool(out.IsTruncated) {
			return nil
		}
		if split, rest, ok := s.splitRest(r, inRange, full); ok {
			if err := send(listMsg{ranges: split}); err != nil {
				return err
			}
			r, token = rest, nil
			continue
		}
		token = out.NextContinuationToken
		if token == nil {
			if prev == r.after {
				return fmt.Errorf("list %s: the server returned a truncated empty page without a continuation token", s.where(prefix))
			}
			r.after = prev // a server without tokens: go on after the last key
		}
	}
}

// splitRest cuts the rest of range r, after a truncated page whose keys in
// the range were keys, into ranges for other workers and the rest the
// worker goes on with, [last key, first boundary). It reports false when
// it finds no boundary.
func (s *S3) splitRest(r keyRange, keys []string, full string) (split []keyRange, rest keyRange, ok bool) {
	c := splitPoints(keys, len(full), r.hi)
	if len(c.bounds) == 0 {
		return nil, r, false
	}
	// Pieces expected to hold less than a page ask for a little more than
	// expected rather than a full page: less to transfer and decode.
	var maxKeys int32
	if c.perPiece > 0 {
		maxKeys = int32(min(int(s.pageSize), c.perPiece+c.perPiece/16+2))
	}
	split = make([]keyRange, len(c.bounds))
	for i, b := range c.bounds {
		hi := r.hi
		if i+1 < len(c.bounds) {
			hi = c.bounds[i+1]
		}
		split[i] = newRange(b, hi, full)
		if i < c.fine {
			split[i].maxKeys = maxKeys
		}
	}
	last := keys[len(keys)-1]
	// The narrower Prefix needs a fresh StartAfter, not the token.
	rest = keyRange{prefix: rangePrefix(last, c.bounds[0], full), after: last, hi: c.bounds[0], maxKeys: maxKeys}
	return split, rest, true
}
