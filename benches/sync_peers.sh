#!/usr/bin/env bash
# Sync beside pass and git on the same data: two devices share a bare git repository on local
# disk; each round one device changes CHANGED entries and syncs. Prints, per size and round, the
# bytes the push added to the remote (git's own count of its object store) and the time of the
# sync, for jeton (`jeton sync`, agent unlocked) and pass (`pass git pull --rebase` + `pass git
# push`), and the ratios. docs/PERFORMANCE.md holds the latest figures.
#
#   benches/sync_peers.sh                        # 10,000 entries, 100 changed, 3 rounds
#   SIZES="10000 100000" benches/sync_peers.sh   # more sizes
#   CHANGED=10 ROUNDS=5 benches/sync_peers.sh
#
# Needs: cargo, git, pass, gpg (as root, apt-get installs pass and gnupg if missing).
set -euo pipefail

SIZES=${SIZES:-10000}
CHANGED=${CHANGED:-100}
ROUNDS=${ROUNDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/jeton-sync-peers.XXXXXX")
agents=()
cleanup() {
  for d in "${agents[@]}"; do jrun "$d" lock >/dev/null 2>&1 || true; done
  if [ -n "${GNUPGHOME:-}" ]; then gpgconf --kill gpg-agent >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }

for tool in pass gpg git; do
  if ! command -v "$tool" >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pass gnupg git >/dev/null
    else
      say "missing: $tool (apt-get install pass gnupg git)"
      exit 1
    fi
  fi
done

say "building jeton (release)"
(cd "$root" && cargo build --release --locked -q && cargo bench --locked -q --bench mkvault --no-run 2>/dev/null)
JETON=$root/target/release/jeton
mkvault() { (cd "$root" && cargo bench --locked -q --bench mkvault -- "$@" >/dev/null); }
export JETON_PASSPHRASE='bench passphrase: correct horse battery staple'
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid

# jrun DIR ARGS...: jeton on DIR/vault.jeton with DIR as its HOME and its own agent.
jrun() {
  local d=$1; shift
  HOME=$d XDG_STATE_HOME=$d/state XDG_RUNTIME_DIR=$d/run JETON_VAULT=$d/vault.jeton "$JETON" "$@"
}
jdir() { mkdir -p "$1/state" "$1/run" && chmod 700 "$1/run"; }
# name I: the bench entries' names (benches/support: support::name).
name() { printf 'team-%02d/service-%06d' $(($1 % 50)) "$1"; }
# kib REPO: KiB in a bare repository's object store (loose and packed).
kib() { git -C "$1" count-objects -v | awk '/^size:|^size-pack:/ {s += $2} END {print s}'; }
objects() { git -C "$1" count-objects -v | awk '/^count:|^in-pack:/ {s += $2} END {print s}'; }
now() { printf '%s' "${EPOCHREALTIME/./}"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (b - a) / 1000}'; }

export GNUPGHOME=$work/gnupg
mkdir -p "$GNUPGHOME" && chmod 700 "$GNUPGHOME"
gpg --batch -q --pinentry-mode loopback --passphrase '' \
  --quick-generate-key bench@example.invalid ed25519 sign never 2>/dev/null
fpr=$(gpg --batch --with-colons --list-keys bench@example.invalid | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch -q --pinentry-mode loopback --passphrase '' --quick-add-key "$fpr" cv25519 encr never 2>/dev/null

printf 'machine: %s, %s cores; %s changed entries a round, %s rounds\n' \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)" "$CHANGED" "$ROUNDS"

for n in $SIZES; do
  say "$n entries: making the jeton vault and the pass store"
  # jeton: device a with the vault, device b cloned from the remote.
  a=$work/j$n-a b=$work/j$n-b jr=$work/j$n.git
  jdir "$a" && jdir "$b"
  mkvault --entries "$n" --kdf cheap --out "$a/vault.jeton"
  git init -q --bare "$jr"
  jrun "$a" sync init "file://$jr" >/dev/null
  jrun "$b" sync clone "file://$jr" >/dev/null
  jrun "$a" unlock >/dev/null && agents+=("$a")
  jrun "$b" unlock >/dev/null && agents+=("$b")
  jrun "$b" sync >/dev/null

  # pass: the same names, one file each, in a git repository pushed to a bare remote.
  pa=$work/p$n-a pb=$work/p$n-b pr=$work/p$n.git
  mkdir -p "$pa"
  (
    cd "$pa"
    printf '%s\n' "$fpr" >.gpg-id
    for ((i = 0; i < n; i++)); do
      f=$(name "$i").gpg
      mkdir -p "$(dirname "$f")"
      printf 'bench-secret-%06d-0123456789abcdefghijklmnopqrstuvwxyz\n' "$i" >"${f%.gpg}"
    done
    find . -name '*.gpg' -prune -o -type f ! -name .gpg-id -print0 |
      xargs -0 -n 2000 gpg --batch -q --yes -r "$fpr" --encrypt-files
    find . -type f ! -name '*.gpg' ! -name .gpg-id -delete
    git init -q -b main && git add -A && git commit -q -m init
  )
  git init -q --bare "$pr"
  git -C "$pa" remote add origin "$pr" && git -C "$pa" push -q origin HEAD:main
  git -C "$pa" branch -q -u origin/main 2>/dev/null || git -C "$pa" branch -q --set-upstream-to=origin/main
  git clone -q -b main "$pr" "$pb"

  printf '\n%s entries\n' "$n"
  printf '  %-6s %-28s %-28s %s\n' round "jeton: pushed KiB, objects, ms" "pass: pushed KiB, objects, ms" "jeton/pass bytes, time"
  for ((r = 1; r <= ROUNDS; r++)); do
    first=$(((r * 977) % (n - CHANGED)))
    for ((i = first; i < first + CHANGED; i++)); do
      jrun "$a" edit "$(name "$i")" --note "round $r" >/dev/null
      printf 'bench-secret-%06d-round-%d\n' "$i" "$r" |
        PASSWORD_STORE_DIR=$pa pass insert -m -f "$(name "$i")" >/dev/null
    done
    k0=$(kib "$jr") o0=$(objects "$jr") t0=$(now)
    jrun "$a" sync >/dev/null
    t1=$(now) k1=$(kib "$jr") o1=$(objects "$jr")
    jrun "$b" sync >/dev/null
    p0=$(kib "$pr") q0=$(objects "$pr") s0=$(now)
    (cd "$pa" && git pull -q --rebase && git push -q)
    s1=$(now) p1=$(kib "$pr") q1=$(objects "$pr")
    (cd "$pb" && git pull -q --rebase)
    jk=$((k1 - k0)) pk=$((p1 - p0)) jt=$(ms "$t0" "$t1") pt=$(ms "$s0" "$s1")
    printf '  %-6s %-28s %-28s %s\n' "$r" "$jk KiB, $((o1 - o0)), $jt ms" "$pk KiB, $((q1 - q0)), $pt ms" \
      "$(awk -v a="$jk" -v b="$pk" -v c="$jt" -v d="$pt" 'BEGIN {printf "%.2fx, %.2fx", a / (b ? b : 1), c / (d ? d : 1)}')"
  done
  # What a new device fetches and keeps: `jeton sync clone` against `git clone` + `pass show`.
  c=$work/j$n-c && jdir "$c"
  t0=$(now)
  jrun "$c" sync clone "file://$jr" >/dev/null
  t1=$(now)
  git clone -q -b main "$pr" "$work/p$n-c"
  PASSWORD_STORE_DIR=$work/p$n-c pass show "$(name 1)" >/dev/null
  t2=$(now)
  printf '  new device: jeton sync clone %s ms, %s on disk; git clone + pass show %s ms, %s on disk\n' \
    "$(ms "$t0" "$t1")" "$(du -sh "$c" | cut -f1)" "$(ms "$t1" "$t2")" "$(du -sh "$work/p$n-c" | cut -f1)"
  jrun "$a" lock >/dev/null 2>&1 || true
  jrun "$b" lock >/dev/null 2>&1 || true
done
