# fish completion for jeton (`jeton completions fish`). On TAB it runs `jeton` with
# JETON_COMPLETE=fish and the words up to the cursor; jeton prints one candidate a line
# (`value<TAB>description`).
complete --keep-order --exclusive --command jeton --arguments "(JETON_COMPLETE=fish jeton -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token) </dev/null 2>/dev/null)"
