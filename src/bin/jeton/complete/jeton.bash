# bash completion for jeton (`jeton completions bash`). On TAB it runs `jeton` with
# JETON_COMPLETE=bash and the words before the cursor; jeton prints one candidate a line.
_jeton() {
    local line=${COMP_LINE:0:COMP_POINT} word n i glue
    local -a words=()
    # bash splits `ops:db` and `--vault=x` into three words (`:` and `=` are in
    # COMP_WORDBREAKS); jeton gets them back as one word, as the command will see them.
    for (( i = 0; i <= COMP_CWORD; i++ )); do
        word=${COMP_WORDS[i]}
        n=${#words[@]}
        glue=0
        if (( i > 1 )) && [[ $line != [[:blank:]]* ]]; then
            [[ $word == [:=]* || ${words[n-1]} == *[:=] ]] && glue=1
        fi
        line=${line#"${line%%[![:blank:]]*}"}
        # The word under the cursor ends at the cursor.
        (( i == COMP_CWORD )) && word=$line
        line=${line#"$word"}
        if (( glue )); then
            words[n-1]+=$word
        else
            words+=("$word")
        fi
    done
    # bash replaces only its own last piece ($2): `ops:` completes as `ops:` + the rest.
    local current=${words[${#words[@]}-1]} prefix=
    [[ $current == *"$2" ]] && prefix=${current%"$2"}
    COMPREPLY=()
    while IFS= read -r word; do
        [[ $word == "$prefix"* ]] && COMPREPLY+=("${word#"$prefix"}")
    done < <(JETON_COMPLETE=bash jeton -- "${words[@]}" </dev/null 2>/dev/null)
    # A folder (`github/`) or a team (`ops:`) goes on: no space after it.
    if (( ${#COMPREPLY[@]} == 1 )) && [[ ${COMPREPLY[0]} == *[/:=] ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _jeton jeton
