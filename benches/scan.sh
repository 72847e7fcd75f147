#!/usr/bin/env bash
# `jeton scan` beside ripgrep given the same literal forms (`rg -F -f FORMS`), on the same files,
# in interleaved rounds; peak memory of each. Not a test: figures for docs/PERFORMANCE.md.
#
#   benches/scan.sh [JETON] [CORPUS_DIR] [LOG_MIB]
#
# JETON defaults to target/release/jeton; CORPUS_DIR to ~/.cargo/registry/src (real code); a
# generated log of LOG_MIB MiB (default 1024) is scanned as a second corpus. 1,000 random
# tokens (prefixes as GitHub, Slack, AWS and npm write them) go into a throwaway vault, and
# their forms, computed here as jeton computes them, into FORMS for ripgrep. A few of them are
# planted in the log, so both tools have hits to report.
set -euo pipefail
JETON="${1:-target/release/jeton}"
CORPUS="${2:-$HOME/.cargo/registry/src}"
LOG_MIB="${3:-1024}"
ROUNDS="${ROUNDS:-3}"
JETON="$(realpath "$JETON")"
RG="$(command -v rg)" || { echo "ripgrep (rg) is needed" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" XDG_DATA_HOME="$work/home/data" XDG_STATE_HOME="$work/home/state" \
  XDG_RUNTIME_DIR="$work/home/run" JETON_PASSPHRASE="bench passphrase, not a secret"
mkdir -p "$HOME"
"$JETON" -q init --kdf-memory 8MiB --kdf-iterations 1 >/dev/null 2>&1

python3 - "$work" "$LOG_MIB" <<'EOF'
import base64, json, math, os, random, string, sys, urllib.parse
work, log_mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(34)
alnum = string.ascii_letters + string.digits
def tok(i):
    kind = i % 4
    if kind == 0: return "ghp_" + "".join(rng.choice(alnum) for _ in range(36))
    if kind == 1: return "xoxb-" + "-".join("".join(rng.choice(string.digits) for _ in range(12)) for _ in range(2)) + "-" + "".join(rng.choice(alnum) for _ in range(24))
    if kind == 2: return "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    return "npm_" + "".join(rng.choice(alnum) for _ in range(36))
tokens = [tok(i) for i in range(1000)]
with open(f"{work}/tokens.env", "w") as f:
    for i, t in enumerate(tokens):
        f.write(f"TOKEN_{i}={t}\n")
def core(s, a, url):
    enc = (base64.urlsafe_b64encode if url else base64.b64encode)(b"\0" * a + s).rstrip(b"=")
    return enc[math.ceil(8 * a / 6): 8 * (a + len(s)) // 6]
def forms(t):
    s = t.encode()
    out = []
    def add(b):
        if b and b not in out: out.append(b)
    add(s)
    j = json.dumps(t, ensure_ascii=False)[1:-1]
    add(j.encode()); add(json.dumps(t)[1:-1].encode()); add(j.replace("/", "\\/").encode())
    add(s.replace(b"'", b"'\\''"))
    add(b"".join((b"\\" if c in b'\\$`"' else b"") + bytes([c]) for c in s))
    safe = set((string.ascii_letters + string.digits + "_./:@%+,=^-").encode())
    add(b"".join((b"" if c in safe or c >= 128 else b"\\") + bytes([c]) for c in s))
    add(urllib.parse.quote(t, safe="-._~").encode())
    add(urllib.parse.quote(t, safe="-._~").encode().lower() if "%" in urllib.parse.quote(t, safe="-._~") else s)
    add(urllib.parse.quote_plus(t, safe="*-._").replace("~", "%7E").encode())
    add(s.hex().encode()); add(s.hex().upper().encode())
    for url in (False, True):
        for a in range(3):
            add(core(s, a, url))
    return out
with open(f"{work}/FORMS", "wb") as f:
    n = 0
    for t in tokens:
        for form in forms(t):
            f.write(form + b"\n"); n += 1
print(f"{len(tokens)} tokens, {n} forms", file=sys.stderr)
# A CI-like log: timestamps, request ids, paths; four tokens planted in it.
line_rng = random.Random(7)
paths = ["/api/v1/users", "/api/v1/orders", "/healthz", "/static/app.js", "/login"]
with open(f"{work}/big.log", "w") as f:
    written, target, planted = 0, log_mib << 20, 0
    while written < target:
        rid = "%032x" % line_rng.getrandbits(128)
        line = f"2026-12-07T12:{line_rng.randrange(60):02d}:{line_rng.randrange(60):02d}Z INFO req={rid} {line_rng.choice(paths)} status={line_rng.choice([200, 200, 200, 404, 500])} ms={line_rng.randrange(900)}\n"
        if planted < 4 and written > (planted + 1) * target // 5:
            line = f"DEBUG Authorization: Bearer {tokens[planted * 7]}\n"
            planted += 1
        f.write(line); written += len(line)
EOF
"$JETON" -q migrate dotenv "$work/tokens.env" >/dev/null

# One timed run: wall seconds and peak RSS in KiB.
measure() {
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>&1 || true
  tail -1 "$work/time"
}
run_round() {
  local name="$1" dir="$2"
  local j r
  local r1
  j="$(measure "$JETON" -q scan --all "$dir")"
  r="$(measure "$RG" -F -f "$work/FORMS" -uuu -a --no-messages "$dir")"
  r1="$(measure "$RG" -j1 -F -f "$work/FORMS" -uuu -a --no-messages "$dir")"
  echo "$name (seconds, peak KiB): jeton $j | rg $r | rg -j1 $r1"
}
for corpus in "$CORPUS" "$work/big.log"; do
  cat -- "$(find "$corpus" -type f | head -1)" >/dev/null 2>&1 || true
  "$RG" -c x -uuu "$corpus" >/dev/null 2>&1 || true   # warm the page cache
  size="$(du -sb "$corpus" | cut -f1)"
  echo "corpus $corpus: $((size >> 20)) MiB"
  for _ in $(seq "$ROUNDS"); do run_round "$(basename "$corpus")" "$corpus"; done
done
# A real history (GIT_REPO=path): `scan --git` beside `git log -p --all | rg -F -f FORMS`.
if [ -n "${GIT_REPO:-}" ]; then
  echo "history $GIT_REPO: $(git -C "$GIT_REPO" rev-list --all | wc -l) commits"
  for _ in $(seq "$ROUNDS"); do
    j="$(measure "$JETON" -q scan --git "$GIT_REPO")"
    r="$(measure sh -c 'git -C "$1" log -p --all | "$2" -F -f "$3" -a' sh "$GIT_REPO" "$RG" "$work/FORMS")"
    echo "history (seconds, peak KiB): jeton $j | git log -p --all | rg $r"
  done
fi
echo "hits in the log (jeton): $("$JETON" -q scan "$work/big.log" | wc -l)"
echo "hits in the log (rg): $("$RG" -F -f "$work/FORMS" -a -c "$work/big.log")"
