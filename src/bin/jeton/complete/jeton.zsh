#compdef jeton
# zsh completion for jeton (`jeton completions zsh`): save it as `_jeton` in a folder of
# $fpath before compinit runs, or source it after compinit. On TAB it runs `jeton` with
# JETON_COMPLETE=zsh and the words up to the cursor; jeton prints one candidate a line
# (`value<TAB>description`), and a line with no value is a message to show.
_jeton() {
    local -a lines plain open
    local line value help hint
    lines=("${(@f)$(JETON_COMPLETE=zsh jeton -- "${(@)words[1,CURRENT]}" </dev/null 2>/dev/null)}")
    for line in $lines; do
        value=${line%%$'\t'*}
        help=
        [[ $line == *$'\t'* ]] && help=${line#*$'\t'}
        if [[ -z $value ]]; then
            hint=$help
            continue
        fi
        # _describe reads `value:description`.
        value=${value//\\/\\\\}
        value=${value//:/\\:}
        [[ -n $help ]] && value+=:$help
        # A folder (`github/`) or a team (`ops:`) goes on: no space after it.
        if [[ ${line%%$'\t'*} == *[/:] ]]; then
            open+=("$value")
        else
            plain+=("$value")
        fi
    done
    local ret=1
    (( $#plain )) && _describe -V values plain && ret=0
    (( $#open )) && _describe -V values open -S '' && ret=0
    [[ -n $hint ]] && _message -r "$hint"
    return ret
}
# Autoloaded from $fpath, this file runs on the first TAB: complete that TAB too.
if [[ $funcstack[1] == _jeton ]]; then
    _jeton "$@"
else
    compdef _jeton jeton
fi
