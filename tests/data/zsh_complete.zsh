# Prints what zsh's completion system offers for a command line, as on TAB at its end.
# usage: zsh -f zsh_complete.zsh SCRIPT LINE
# A real interactive zsh runs in a pseudo-terminal (zsh/zpty) with compinit and SCRIPT sourced;
# compadd is wrapped so every match it adds is printed as "CAND:<match><suffix>" between two NUL
# lines (compprefuncs/comppostfuncs), and the shell exits after one completion.
zmodload zsh/zpty || exit 90
zpty z zsh -f -i
zpty -w z 'PROMPT=""; RPROMPT=""'
zpty -w z 'autoload -U compinit && compinit -u -D'
zpty -w z "source ${(q)1}"
zpty -w z 'bindkey "^I" complete-word'
zpty -w z 'null-line () { echo -E - $'"'"'\0'"'"' }; compprefuncs=( null-line ); comppostfuncs=( null-line exit )'
zpty -w z 'zstyle ":completion:*" list-grouped false; zstyle ":completion:*" insert-tab false'
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits; builtin compadd -A __hits "$@"
  local -A apre hpre hsuf asuf; zparseopts -E P:=apre p:=hpre S:=asuf s:=hsuf
  local h; for h in $__hits; do echo -E - "CAND:${apre[-P]}${hpre[-p]}$h${hsuf[-s]}${asuf[-S]}"; done
}'
zpty -w -n z "$2"$'\t'
integer seen=0
while zpty -r z line; do
  if [[ $line == *$'\0'* ]]; then
    (( seen++ )) && exit 0 || continue
  fi
  (( seen )) && [[ $line == CAND:* ]] && print -r -- "${${line#CAND:}%$'\r'*}"
done
exit 91
