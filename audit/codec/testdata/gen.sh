#!/bin/bash
# gen.sh regenerates the interoperability fixtures under testdata/tools:
# real PostgreSQL 15 WAL segments (1 MiB, from ../../wal/testdata) compressed
# by the real command-line tools and libraries the backup tools use, so that
# TestToolFixtures proves this package reads what they write.
#
#	segment 09 (mostly zeros): every format, lzop in three variants
#	segment 06 (dense):        bzip2 (no Go writer exists) and lzop -9
#	                           (lzo1x_999 uses every LZO1X instruction)
#
# Needs: gzip bzip2 xz zstd lz4 lzop brotli and Debian's python3-snappy
# (python-snappy, the library barman-cloud uses) for $PYTHON (default
# /usr/bin/python3). On Debian 12:
#
#	apt-get install -y gzip bzip2 xz-utils zstd lz4 lzop brotli python3-snappy
#
# python3-snappy 0.5.3 on Python 3.11 has a broken C _crc32c (it raises
# "PY_SSIZE_T_CLEAN macro must be defined"); it is replaced by a pure-Python
# CRC-32C, checked against the standard test vector. Framing and block
# compression remain python-snappy's own.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/../../wal/testdata
OUT=$HERE/tools
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"

for s in 06 09; do
	gzip -dc "$SRC/0000000100000000000000$s.gz" >"$TMP/0000000100000000000000$s"
done
S9=$TMP/000000010000000000000009
S6=$TMP/000000010000000000000006
N9=$OUT/000000010000000000000009
N6=$OUT/000000010000000000000006

gzip -9 -n -c "$S9" >"$N9.gz"
bzip2 -9 -c "$S9" >"$N9.bz2"
bzip2 -9 -c "$S6" >"$N6.bz2"
xz -6 -c "$S9" >"$N9.xz"
xz --format=lzma -6 -c "$S9" >"$N9.lzma"
zstd -q -3 -c "$S9" >"$N9.zst"
lz4 -q -c "$S9" >"$N9.lz4"
brotli -c "$S9" >"$N9.br"
# lzop as WAL-E ran it (stdin to stdout, default level, Adler-32), from a
# named file, with CRC-32 checksums, and at -9 (LZO1X-999).
lzop -c <"$S9" >"$N9.lzo"
(cd "$TMP" && lzop -9 -c 000000010000000000000009) >"$N9.9.lzo"
lzop --crc32 -c <"$S9" >"$N9.crc32.lzo"
lzop -9 -c <"$S6" >"$N6.9.lzo"

"${PYTHON:-/usr/bin/python3}" - "$S9" "$N9.snappy" <<'PY'
import sys
import snappy
import snappy.snappy as s

def crc32c(data, _t=[]):
    if not _t:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _t.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = _t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF

try:
    s._crc32c(b"")
except SystemError:
    s._crc32c = crc32c
assert s._crc32c(b"123456789") == 0xE3069283
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
    snappy.stream_compress(src, dst)  # what barman-cloud-wal-archive --snappy calls
PY

{
	echo "# tools that wrote these fixtures (gen.sh)"
	gzip --version | head -1
	bzip2 --help 2>&1 | head -1
	xz --version | head -1
	zstd --version
	lz4 --version 2>&1 | head -1
	lzop --version 2>&1 | grep -i -m2 'lzop\|lzo library'
	echo "brotli $(dpkg-query -W -f='${Version}' brotli)"
	echo "python3-snappy $(dpkg-query -W -f='${Version}' python3-snappy)"
} >"$OUT/VERSIONS.txt"
ls -l "$OUT"
