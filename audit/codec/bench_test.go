package codec

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkDecompress measures decompression throughput (of uncompressed
// bytes) per codec on the dense real segment 06 (1 MiB), through Open as
// the auditor uses it. bzip2 comes from the bzip2 tool's fixture; lzo from
// both the test compressor (LZO1X-1 style) and lzop -9 (LZO1X-999).
//
//	go test ./audit/codec -run '^$' -bench Decompress -benchmem
func BenchmarkDecompress(b *testing.B) {
	seg := realSegment(b, "000000010000000000000006")
	type input struct {
		name string
		c    Codec
		data []byte
	}
	inputs := []input{{"none", None, seg}}
	for _, c := range writable {
		inputs = append(inputs, input{c.Name(), c, compress(b, c, seg)})
	}
	inputs = append(inputs,
		input{"bzip2", Bzip2, toolFixture(b, "000000010000000000000006.bz2")},
		input{"lzo-lzop9", LZO, toolFixture(b, "000000010000000000000006.9.lzo")})
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(seg)))
			for b.Loop() {
				rc, _, err := Open(bytes.NewReader(in.data), in.c.Suffix())
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, rc)
				if err != nil || n != int64(len(seg)) {
					b.Fatalf("%d bytes, %v", n, err)
				}
				rc.Close()
			}
			b.ReportMetric(float64(len(in.data))/float64(len(seg)), "ratio")
		})
	}
}
