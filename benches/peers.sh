#!/usr/bin/env bash
# jeton beside the tools a user would otherwise run (SPEC §9), as ratios of medians of
# interleaved runs: every round runs every command once, in an order that changes from round to
# round, so a load that comes and goes hits all of them alike and none always follows the same one.
# docs/PERFORMANCE.md holds the latest figures.
# Runs of 17 ms and more are timed from bash; the warm get, at about 2 ms, by
# benches/interleave.rs, which starts each command directly (so $TMPDIR must have no spaces).
#
#   benches/peers.sh                 # everything
#   ROUNDS=21 benches/peers.sh       # more rounds (default 11)
#   HYPERFINE=0 benches/peers.sh     # skip hyperfine's own (not interleaved) view of the warm get
#   ONLY=unlock benches/peers.sh     # one section: unlock, cold, agent
#   STATIC=1 benches/peers.sh        # measure a static-pie build (docs/PERFORMANCE.md) instead
#
# Needs: cargo, and as root apt-get (installs argon2, pass, gnupg, hyperfine if missing).
# The C reference built with -march=native comes from the phc-winner-argon2 sources that the
# argon2-cffi-bindings 21.2.0 sdist carries (fetched with pip); set ARGON2_NATIVE=/path/to/argon2
# to use a build of your own, or ARGON2_NATIVE=none to skip it.
set -euo pipefail

ROUNDS=${ROUNDS:-11}
ONLY=${ONLY:-all}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/jeton-peers.XXXXXX")
agents=()
cleanup() {
  for d in "${agents[@]}"; do jrun "$d" agent stop >/dev/null 2>&1 || true; done
  if [ -n "${GNUPGHOME:-}" ]; then gpgconf --kill gpg-agent >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

PASS='bench passphrase: correct horse battery staple'
say() { printf '%s\n' "$*" >&2; }

# --- peers and jeton ------------------------------------------------------------------------
missing=()
for tool in argon2 pass gpg hyperfine; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing argon2 pass gnupg hyperfine from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      argon2 pass gnupg hyperfine >/dev/null
  else
    say "missing: ${missing[*]} (install them: apt-get install argon2 pass gnupg hyperfine)"
    exit 1
  fi
fi

say "building jeton (release)"
(cd "$root" && cargo build --release --locked -q &&
  cargo bench --locked -q --bench mkvault --bench interleave --no-run 2>/dev/null)
JETON=$root/target/release/jeton
# The timing harness runs as it is, not under `cargo bench`: cargo would give every command it
# starts an LD_LIBRARY_PATH of five directories, which the dynamic loader searches before the
# system's for every library (CHANGELOG.md, 2026-11-29).
INTERLEAVE=$(cd "$root" && cargo bench --locked -q --bench interleave --no-run \
  --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "interleave" and m.get("executable"):
        print(m["executable"])')
[ -x "$INTERLEAVE" ] || { say "cannot find the interleave bench's executable"; exit 1; }
if [ "${STATIC:-0}" = 1 ]; then
  say "building jeton (release, static-pie)"
  triple=$(rustc -vV | sed -n 's/^host: //p')
  (cd "$root" && RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked -q --target "$triple" --target-dir target/static)
  JETON=$root/target/static/$triple/release/jeton
fi
mkvault() { (cd "$root" && cargo bench --locked -q --bench mkvault -- "$@" >/dev/null); }

native=${ARGON2_NATIVE:-}
if [ -z "$native" ] && { [ "$ONLY" = all ] || [ "$ONLY" = unlock ]; }; then
  say "building the C reference with -march=native"
  if (cd "$work" && python3 -m pip download -q --no-deps --no-binary :all: \
        argon2-cffi-bindings==21.2.0 -d . >/dev/null 2>&1 \
      && tar xzf argon2-cffi-bindings-21.2.0.tar.gz \
      && make -s -C argon2-cffi-bindings-21.2.0/extras/libargon2 argon2 OPTTARGET=native >/dev/null 2>&1); then
    native=$work/argon2-cffi-bindings-21.2.0/extras/libargon2/argon2
  else
    say "  could not build it (needs python3 -m pip and a C compiler); skipping that peer"
    native=none
  fi
fi

# --- timing ---------------------------------------------------------------------------------
# order N R: the order of round R over N commands, as `order` in benches/interleave.rs (the rows
# of a Williams design, then of its mirror image): over every 2N rounds each command runs first
# equally often and right after each other command equally often.
order() {
  local n=$1 r=$2 j c row=()
  for ((j = 0; j < n; j++)); do
    if ((j % 2)); then c=$(((j + 1) / 2)); else c=$(((n - j / 2) % n)); fi
    row+=($(((c + r) % n)))
  done
  if (((r / n) % 2)); then
    for ((j = n - 1; j >= 0; j--)); do printf '%s ' "${row[$j]}"; done
  else
    printf '%s ' "${row[@]}"
  fi
}

# interleave LABEL FUNCTION [LABEL FUNCTION]...: runs each function once per round, in the
# order `order` gives, after one untimed warm-up run each; prints the median of each and its
# ratio to the first.
interleave() {
  local labels=() fns=() i r s e
  while [ $# -gt 0 ]; do labels+=("$1"); fns+=("$2"); shift 2; done
  local -a times
  for i in "${!fns[@]}"; do "${fns[$i]}" >/dev/null 2>&1; times[$i]=""; done
  local count=${#fns[@]}
  for ((r = 0; r < ROUNDS; r++)); do
    for i in $(order "$count" "$r"); do
      s=$EPOCHREALTIME
      "${fns[$i]}" >/dev/null 2>&1
      e=$EPOCHREALTIME
      times[$i]+="$(( (${e/./} - ${s/./}) )) "
    done
  done
  local base=""
  for i in "${!fns[@]}"; do
    local med
    med=$(tr ' ' '\n' <<<"${times[$i]}" | grep . | sort -n |
      awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1000}')
    [ -n "$base" ] || base=$med
    printf '  %-44s median %9s ms   ratio %s\n' "${labels[$i]}" "$med" \
      "$(awk -v a="$med" -v b="$base" 'BEGIN {printf "%.2f", a / b}')"
  done
}

# peak_rss LABEL DIR ARGS...: peak resident memory of one `jrun DIR ARGS...`, in MiB.
peak_rss() {
  local label=$1 d=$2 kib; shift 2
  /usr/bin/time -o "$work/rss" -f '%M' env HOME="$d" XDG_STATE_HOME="$d/state" XDG_RUNTIME_DIR="$d/run" \
    JETON_VAULT="$d/vault.jeton" "$JETON" "$@" </dev/null >/dev/null 2>&1 || true
  kib=$(tail -1 "$work/rss")
  printf '  %-44s peak RSS %7.1f MiB\n' "$label" "$(awk -v k="$kib" 'BEGIN {print k / 1024}')"
}

# jrun DIR ARGS...: jeton on DIR/vault.jeton with DIR as its HOME and its own state and runtime
# directories (so its own agent). Plain prefix assignments: no subshell is timed.
jrun() {
  local d=$1; shift
  HOME=$d XDG_STATE_HOME=$d/state XDG_RUNTIME_DIR=$d/run JETON_VAULT=$d/vault.jeton "$JETON" "$@"
}
# mkjeton DIR ENTRIES KDF: a bench vault in DIR.
mkjeton() {
  mkvault --entries "$2" --kdf "$3" --out "$1/vault.jeton"
  mkdir -p "$1/state" "$1/run" && chmod 700 "$1/run"
}
export JETON_PASSPHRASE=$PASS

printf 'machine: %s, %s cores, %s\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
  "$(nproc)" "$(uname -r)"
printf 'load average at start: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'rounds: %s (medians of interleaved runs)\n\n' "$ROUNDS"

# --- unlock: cold get (KDF + open) against Argon2 alone --------------------------------------
if [ "$ONLY" = all ] || [ "$ONLY" = unlock ]; then
  say "unlock: making a 1,000-entry vault at the default KDF cost"
  mkjeton "$work/unlock" 1000 default
  cold_get() { jrun "$work/unlock" get team-00/service-000500; }
  argon2_debian() { printf pass | argon2 somesaltsomesalt -id -k 262144 -t 3 -p 4 -r; }
  argon2_native() { printf pass | "$native" somesaltsomesalt -id -k 262144 -t 3 -p 4 -r; }
  echo "unlock: Argon2id 256 MiB, t=3, p=4 (SPEC §9: jeton <= 0.6x Debian's argon2)"
  if [ "$native" != none ]; then
    interleave "argon2 (Debian CLI)" argon2_debian "jeton get, cold (KDF + open), 1,000 entries" cold_get \
      "argon2 (C reference, -march=native)" argon2_native
  else
    interleave "argon2 (Debian CLI)" argon2_debian "jeton get, cold (KDF + open), 1,000 entries" cold_get
  fi
  echo
fi

# --- cold paths at 100,000 entries, KDF excluded (cheapest KDF) ------------------------------
if [ "$ONLY" = all ] || [ "$ONLY" = cold ]; then
  say "cold: making vaults of 1,000 and 100,000 entries at the cheapest KDF cost"
  mkjeton "$work/c1k" 1000 cheap
  mkjeton "$work/c100k" 100000 cheap
  mkjeton "$work/d100k" 100000 default
  size=$(stat -c %s "$work/c100k/vault.jeton")
  get_1k() { jrun "$work/c1k" get team-00/service-000500; }
  get_100k() { jrun "$work/c100k" get team-00/service-050000; }
  n=0
  add_100k() { n=$((n + 1)); jrun "$work/c100k" add "bench/new-$n-$RANDOM" <<<"tok-$n"; }
  list_100k() { jrun "$work/c100k" list; }
  echo "cold paths, KDF at its cheapest (8 MiB, t=1, p=1); the 100,000-entry file is $((size / 1024)) KiB"
  echo "  (SPEC §9: open+decrypt+decode < 100 ms, add+save < 250 ms at 100,000 entries)"
  interleave "jeton get, 1,000 entries" get_1k "jeton get, 100,000 entries" get_100k \
    "jeton add, 100,000 entries" add_100k "jeton list, 100,000 entries" list_100k
  echo "peak memory (SPEC §9: < KDF memory + 3x file size = $(( (262144 * 1024 + 3 * size) / 1048576 )) MiB at the default KDF)"
  peak_rss "jeton get, 100,000 entries, default KDF" "$work/d100k" get team-00/service-050000
  peak_rss "jeton add, 100,000 entries, default KDF" "$work/d100k" add bench/rss --generate
  peak_rss "jeton get, 100,000 entries, cheapest KDF" "$work/c100k" get team-00/service-050000
  echo
fi

# --- warm get through the agent, against pass with a warm gpg-agent --------------------------
if [ "$ONLY" = all ] || [ "$ONLY" = agent ]; then
  echo "warm get (SPEC §9: jeton with its agent >= 10x faster than pass at 1,000 entries;"
  echo "  at 100,000 entries <= 2x its own 1,000-entry time)"
  if ! "$JETON" unlock --help >/dev/null 2>&1; then
    echo "  not measured: this jeton has no agent (\`jeton unlock\`)"
  else
    say "agent: making a pass store of 1,000 entries (gpg ed25519/cv25519, no passphrase)"
    export GNUPGHOME=$work/gnupg PASSWORD_STORE_DIR=$work/pass
    mkdir -p "$GNUPGHOME" && chmod 700 "$GNUPGHOME"
    gpg --batch -q --pinentry-mode loopback --passphrase '' \
      --quick-gen-key 'jeton bench <bench@example.invalid>' ed25519 cert,sign never 2>/dev/null
    fpr=$(gpg --batch --with-colons --list-keys bench@example.invalid | awk -F: '/^fpr/ {print $10; exit}')
    gpg --batch -q --pinentry-mode loopback --passphrase '' --quick-add-key "$fpr" cv25519 encr never 2>/dev/null
    pass init "$fpr" >/dev/null
    for ((i = 0; i < 1000; i++)); do
      printf 'tok-%06d-%s\n' "$i" "$RANDOM$RANDOM" |
        pass insert -m -f "$(printf 'team-%02d/service-%06d' $((i % 50)) "$i")" >/dev/null
    done
    mkjeton "$work/a1k" 1000 default
    mkjeton "$work/a100k" 100000 default
    # One agent (one runtime directory) holds both vaults; JETON_VAULT picks one.
    mkdir -p "$work/agent/state" "$work/agent/run" && chmod 700 "$work/agent/run"
    jenv="HOME=$work/agent XDG_STATE_HOME=$work/agent/state XDG_RUNTIME_DIR=$work/agent/run"
    for d in a1k a100k; do
      env $jenv JETON_VAULT="$work/$d/vault.jeton" "$JETON" unlock >/dev/null
    done
    agents+=("$work/agent")
    unset JETON_PASSPHRASE # from here on only the agent holds the key
    # Timed without a shell (benches/interleave.rs): at about 2 ms a run, the fork of a bash
    # around each one would be a noticeable part of what is measured.
    "$INTERLEAVE" --rounds "$ROUNDS" \
      "pass show (warm gpg-agent), 1,000 entries" "pass show team-00/service-000500" \
      "jeton get (agent unlocked), 1,000 entries" \
      "$jenv JETON_VAULT=$work/a1k/vault.jeton $JETON get team-00/service-000500" \
      "jeton get (agent unlocked), 100,000 entries" \
      "$jenv JETON_VAULT=$work/a100k/vault.jeton $JETON get team-00/service-050000" \
      "/bin/true (what starting any command costs)" /bin/true
    # The same two, each started directly by hyperfine (no shell around either), in one
    # environment: pass reads only GNUPGHOME and PASSWORD_STORE_DIR, jeton the rest.
    if [ "${HYPERFINE:-1}" = 1 ]; then
      env $jenv JETON_VAULT="$work/a1k/vault.jeton" hyperfine -N --warmup 10 --runs "$((ROUNDS * 20))" \
        'pass show team-00/service-000500' "$JETON get team-00/service-000500" 2>&1 |
        grep -E 'Benchmark|Time|faster|±' | sed 's/^/  /'
    fi
  fi
fi
