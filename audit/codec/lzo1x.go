package codec

import (
	"errors"
	"fmt"
)

// LZO1X block decompression, written from the format description in the
// Linux kernel (Documentation/staging/lzo.rst) and checked against the
// behaviour of liblzo2's lzo1x_decompress_safe: every read and write is
// bounds-checked, so damaged input yields an error, never a panic or an
// out-of-range access. The Linux-only LZO-RLE extension (bitstream version
// byte) is not part of lzop's format and is not decoded.
//
// Instruction summary (state is the number of literals the previous
// instruction copied: 0, 1..3, or 4 for "4 or more"):
//
//	first byte 18..255   copy byte-17 literals; state = min(that, 4)
//	0000LLLL  state 0    literal run of 3+L bytes (L=0: 18 + 255*zeros + next byte)
//	0000DDSS  state 1-3  match len 2, dist 1 + D + (next byte << 2)
//	0000DDSS  state 4    match len 3, dist 2049 + D + (next byte << 2)
//	0001HLLL             match len 2+L (L=0: 9 + 255*zeros + next), LE16 d:
//	                     dist 16384 + H<<14 + d>>2; dist 16384 ends the stream
//	001LLLLL             match len 2+L (L=0: 33 + 255*zeros + next), LE16 d: dist 1 + d>>2
//	01LDDDSS / 1LLDDDSS  match len (byte>>5)+1, dist 1 + D + (next byte << 3)
//
// After a match, SS (the low two bits of the instruction byte, or of the
// first byte of the LE16 distance) literals follow and become the state.

var (
	errLZOInputOverrun  = errors.New("lzo1x: input overrun")
	errLZOOutputOverrun = errors.New("lzo1x: output overrun")
	errLZOLookBehind    = errors.New("lzo1x: match distance before start of block")
	errLZONoEnd         = errors.New("lzo1x: missing end-of-stream marker")
)

// lzo1xDecompress decodes one LZO1X block from in into out, which must
// have exactly the uncompressed length: a block that decodes to another
// length, or leaves input after its end marker, is an error.
func lzo1xDecompress(in, out []byte) error {
	d := lzoDecoder{in: in, out: out}
	return d.run()
}

type lzoDecoder struct {
	in, out []byte
	ip, op  int
}

func (d *lzoDecoder) fail(err error) error {
	return fmt.Errorf("%w at compressed byte %d of block, output byte %d", err, d.ip, d.op)
}

// next returns the next input byte.
func (d *lzoDecoder) next() (int, error) {
	if d.ip >= len(d.in) {
		return 0, d.fail(errLZOInputOverrun)
	}
	b := d.in[d.ip]
	d.ip++
	return int(b), nil
}

// le16 returns the next two input bytes, little-endian.
func (d *lzoDecoder) le16() (int, error) {
	if len(d.in)-d.ip < 2 {
		return 0, d.fail(errLZOInputOverrun)
	}
	v := int(d.in[d.ip]) | int(d.in[d.ip+1])<<8
	d.ip += 2
	return v, nil
}

// long reads the extension of a length field: 255 per zero byte plus the
// first non-zero byte. The result is bounded by the input size.
func (d *lzoDecoder) long() (int, error) {
	n := 0
	for {
		b, err := d.next()
		if err != nil {
			return 0, err
		}
		if b != 0 {
			return n + b, nil
		}
		n += 255
	}
}

// literals copies n literal bytes.
func (d *lzoDecoder) literals(n int) error {
	if n > len(d.in)-d.ip {
		return d.fail(errLZOInputOverrun)
	}
	if n > len(d.out)-d.op {
		return d.fail(errLZOOutputOverrun)
	}
	copy(d.out[d.op:], d.in[d.ip:d.ip+n])
	d.ip += n
	d.op += n
	return nil
}

// match copies n bytes from dist bytes back; the ranges may overlap.
func (d *lzoDecoder) match(dist, n int) error {
	if dist > d.op {
		return d.fail(errLZOLookBehind)
	}
	if n > len(d.out)-d.op {
		return d.fail(errLZOOutputOverrun)
	}
	// With overlap (dist < n) the source window [src, op) doubles with
	// each copy.
	src := d.op - dist
	for n > 0 {
		k := copy(d.out[d.op:d.op+n], d.out[src:d.op])
		d.op += k
		n -= k
	}
	return nil
}

func (d *lzoDecoder) run() error {
	if len(d.in) == 0 {
		return d.fail(errLZOInputOverrun)
	}
	state := 0
	if d.in[0] > 17 {
		d.ip = 1
		t := int(d.in[0]) - 17
		if err := d.literals(t); err != nil {
			return err
		}
		state = min(t, 4)
	}
	for {
		if d.ip >= len(d.in) {
			return d.fail(errLZONoEnd)
		}
		inst := int(d.in[d.ip])
		d.ip++
		var err error
		var length, dist, s int
		switch {
		case inst >= 64: // 01LDDDSS, 1LLDDDSS
			h, err := d.next()
			if err != nil {
				return err
			}
			length = inst>>5 + 1
			dist = 1 + (inst>>2)&7 + h<<3
			s = inst & 3
		case inst >= 32: // 001LLLLL
			length = inst & 31
			if length == 0 {
				if length, err = d.long(); err != nil {
					return err
				}
				length += 31
			}
			length += 2
			v, err := d.le16()
			if err != nil {
				return err
			}
			dist = 1 + v>>2
			s = v & 3
		case inst >= 16: // 0001HLLL
			length = inst & 7
			if length == 0 {
				if length, err = d.long(); err != nil {
					return err
				}
				length += 7
			}
			length += 2
			v, err := d.le16()
			if err != nil {
				return err
			}
			dist = 16384 + (inst&8)<<11 + v>>2
			if dist == 16384 { // end of stream
				if d.ip != len(d.in) {
					return d.fail(fmt.Errorf("lzo1x: %d bytes of input after end-of-stream marker", len(d.in)-d.ip))
				}
				if d.op != len(d.out) {
					return d.fail(fmt.Errorf("lzo1x: block decodes to %d bytes, header says %d", d.op, len(d.out)))
				}
				return nil
			}
			s = v & 3
		case state == 0: // 0000LLLL: literal run
			length = inst
			if length == 0 {
				if length, err = d.long(); err != nil {
					return err
				}
				length += 15
			}
			if err := d.literals(length + 3); err != nil {
				return err
			}
			state = 4
			continue
		default: // 0000DDSS after literals
			h, err := d.next()
			if err != nil {
				return err
			}
			if state < 4 {
				length, dist = 2, 1+inst>>2+h<<2
			} else {
				length, dist = 3, 2049+inst>>2+h<<2
			}
			s = inst & 3
		}
		if err := d.match(dist, length); err != nil {
			return err
		}
		if err := d.literals(s); err != nil {
			return err
		}
		state = s
	}
}
