#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ from the conformance vectors in wire/testdata/.
set -euo pipefail
cd "$(dirname "$0")"
td=../wire/testdata
mkdir -p corpus/tlv corpus/sgn corpus/enc_sgn corpus/tvs_frame
cp "$td"/tlv/*.tlv corpus/tlv/
cp "$td"/sgn/sha1/*.sgn corpus/sgn/sha1.sgn
cp "$td"/sgn/sha512/*.sgn corpus/sgn/sha512.sgn
cp "$td"/enc/*.enc.sgn corpus/enc_sgn/
cp "$td"/tvs/*.bin corpus/tvs_frame/
