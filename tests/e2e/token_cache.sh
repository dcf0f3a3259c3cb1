#!/usr/bin/env bash
# token_cache.sh — the per-user token cache (issue 11: calibrate/eval wall time): a second run on
# the same text reads its ids from the cache with identical results; one entry per text and
# tokenizer whatever the rank count; a changed text, a truncated entry or an unwritable folder is
# a miss (never an error, never stale ids); QSWEEP_TOKEN_CACHE=off leaves nothing.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
M="$SRC/demo/kjv-llama"
head -c 60000 "$SRC/demo/data/kjv-test.txt" > "$tmp/text.txt"
export QSWEEP_TOKEN_CACHE="$tmp/tc"
ev() { "$QS" eval --model "$M" --data "$tmp/text.txt" --ctx 128 --output-dir "$tmp/$1" "${@:2}" >"$tmp/$1.out" 2>"$tmp/$1.err"; }
ppl() { grep '^perplexity' "$tmp/$1.out"; }
hit() { grep -q "token ids from the token cache" "$tmp/$1.err"; }
entries() { find "$tmp/tc" -name '*.tok' 2>/dev/null | wc -l; }

ev cold || bad "cold eval"
ev warm || bad "warm eval"
if ! hit cold && hit warm && [ "$(entries)" = 1 ] && [ -n "$(ppl cold)" ] && [ "$(ppl cold)" = "$(ppl warm)" ]; then
  ok "second eval read the cache: same perplexity ($(ppl warm))"
else bad "cache hit: cold hit=$(hit cold && echo y) warm hit=$(hit warm && echo y) entries $(entries)"; fi

rm -rf "$tmp/tc"
"${MPIRUN[@]}" -n 2 "$QS" eval --model "$M" --data "$tmp/text.txt" --ctx 128 --output-dir "$tmp/r2" >"$tmp/r2.out" 2>"$tmp/r2.err" || bad "2 ranks"
if [ "$(entries)" = 1 ] && [ -z "$(find "$tmp/tc" -name '*.tmp.*')" ] && [ "$(grep '^perplexity' "$tmp/r2.out")" = "$(ppl cold)" ]; then
  ok "2 ranks: one entry written (by rank 0), no temporary files, same perplexity"
else bad "2 ranks: entries $(entries), $(ls "$tmp/tc")"; fi

ev strip --protocol llamacpp || bad "llamacpp protocol"
if ! hit strip && [ "$(entries)" = 2 ]; then ok "the llamacpp protocol's stripped text is its own entry"
else bad "strip: entries $(entries)"; fi

{ echo "And the LORD spake again."; cat "$tmp/text.txt"; } > "$tmp/t2" && mv "$tmp/t2" "$tmp/text.txt"
ev changed || bad "changed text"
if ! hit changed && [ "$(entries)" = 3 ] && [ "$(ppl changed)" != "$(ppl cold)" ]; then ok "a changed text is a miss"
else bad "changed text: hit=$(hit changed && echo y) entries $(entries)"; fi

for f in "$tmp"/tc/*.tok; do truncate -s -4 "$f"; done
ev trunc || bad "truncated entries"
if ! hit trunc && [ "$(ppl trunc)" = "$(ppl changed)" ]; then ok "truncated entries are misses, the result is unchanged"
else bad "truncated: $(cat "$tmp/trunc.err" | head -3)"; fi

touch "$tmp/notadir"
QSWEEP_TOKEN_CACHE="$tmp/notadir/x" ev unwritable
rc=$?
if [ $rc = 0 ] && grep -q "token cache: cannot" "$tmp/unwritable.err" && [ "$(ppl unwritable)" = "$(ppl changed)" ]; then
  ok "an unwritable cache folder is a note, not an error"
else bad "unwritable: rc $rc, $(cat "$tmp/unwritable.err" | tail -3)"; fi

QSWEEP_TOKEN_CACHE=off HOME="$tmp/home" XDG_CACHE_HOME= ev off || bad "cache off"
if [ ! -e "$tmp/home" ] && ! hit off; then ok "QSWEEP_TOKEN_CACHE=off: no cache read or written"
else bad "off: $(find "$tmp/home" 2>/dev/null | head -3)"; fi

"$QS" quantize --model "$M" --calib "$tmp/text.txt" --method rtn --bits 4 --n-calib 8 --seq-len 64 --output-dir "$tmp/q1" >/dev/null 2>&1 || bad "quantize 1"
"$QS" quantize --model "$M" --calib "$tmp/text.txt" --method gptq --bits 4 --n-calib 8 --seq-len 64 --output-dir "$tmp/q2" >/dev/null 2>"$tmp/q2.err" || bad "quantize 2"
QSWEEP_TOKEN_CACHE=off "$QS" quantize --model "$M" --calib "$tmp/text.txt" --method gptq --bits 4 --n-calib 8 --seq-len 64 --output-dir "$tmp/q3" >/dev/null 2>&1 || bad "quantize 3"
if grep -q "token ids from the token cache" "$tmp/q2.err" && "$QS" diff "$tmp/q2/quantized.h5" "$tmp/q3/quantized.h5" >/dev/null; then
  ok "quantize from cached ids == quantize from the tokenizer (qsweep diff)"
else bad "quantize with the cache differs"; fi
exit $fail
