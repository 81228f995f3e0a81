# yaml.awk: flattens the small YAML subset of cloud-init NoCloud seeds
# (meta-data, user-data) into lines "PATH<TAB>VALUE" for busybox sh.
#
#   key: value            -> key<TAB>value
#   parent:                  (nested mappings join keys with ".")
#     child: value        -> parent.child<TAB>value
#   list:
#     - item              -> list<TAB>item          (one line per item)
#   list: [a, "b c"]      -> list<TAB>a, list<TAB>b c
#   key: |                   (block scalar: one line per text line,
#     line 1              -> key<TAB>line 1          indentation removed,
#     line 2              -> key<TAB>line 2          blank lines kept)
#   - name: x             -> list.-.name<TAB>x     (mappings inside lists)
#
# With -v prefix=P it prints shell assignments instead, one per path, for
# ". file" in busybox sh: P<path with every non-alphanumeric as _>='value',
# the values of a repeated path (list items, block lines) joined by newlines:
#   awk -v prefix=ud_ -f yaml.awk user-data  ->  ud_ssh_keys_ed25519_private='...'
#
# Values may be plain, 'single' or "double" quoted. Comments (# at the start
# of a line, or " #" after a plain value) and "---" are skipped. Anything else
# (anchors, tags, multi-line plain scalars) is not YAML this parser reads.

function emit(path, v) {
    if (prefix == "") { print path "\t" v; return }
    if (path in vals) vals[path] = vals[path] "\n" v
    else { vals[path] = v; order[++npaths] = path }
}

function rtrim(s) { sub(/[ \t\r]+$/, "", s); return s }

function unquote(v,   c, n) {
    v = rtrim(v)
    c = substr(v, 1, 1)
    n = length(v)
    if (n >= 2 && c == "\"" && substr(v, n, 1) == "\"") {
        v = substr(v, 2, n - 2)
        gsub(/\\"/, "\"", v)
        gsub(/\\\\/, "\\", v)
        return v
    }
    if (n >= 2 && c == "'" && substr(v, n, 1) == "'") {
        v = substr(v, 2, n - 2)
        gsub(/''/, "'", v)
        return v
    }
    sub(/[ \t]+#.*$/, "", v)
    return v
}

function curpath(   i, p) {
    p = ""
    for (i = 1; i <= depth; i++)
        p = (p == "") ? keys[i] : p "." keys[i]
    return p
}

function join(p, k) { return (p == "") ? k : p "." k }

# Splits a flow sequence "[a, 'b', "c, d"]" into its items.
function flow(path, v,   s, i, c, q, item, out) {
    s = substr(v, 2, length(v) - 2)
    item = ""; q = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (q != "") {
            item = item c
            if (c == q) q = ""
        } else if (c == "\"" || c == "'") {
            q = c; item = item c
        } else if (c == ",") {
            sub(/^[ \t]+/, "", item); item = unquote(item)
            if (item != "") emit(path, item)
            item = ""
        } else {
            item = item c
        }
    }
    sub(/^[ \t]+/, "", item); item = unquote(item)
    if (item != "") emit(path, item)
}

# Emits a scalar value or opens a block scalar / container.
function value(path, ind, v) {
    v = rtrim(v)
    if (v ~ /^[|>][-+0-9]*([ \t]+#.*)?$/) {
        inblock = 1; blockpath = path; blockparent = ind; blockind = -1; blanks = 0
        return
    }
    if (v ~ /^\[.*\]$/) { flow(path, v); return }
    if (v == "" || v ~ /^#/) return
    emit(path, unquote(v))
}

# A "key: value" at indentation ind (also used for the first key of a list item).
function mapping(ind, text,   k, v) {
    while (depth > 0 && inds[depth] >= ind) depth--
    k = text; sub(/:.*$/, "", k)
    v = text; sub(/^[^:]*:[ \t]*/, "", v)
    if (rtrim(v) == "" || v ~ /^#/) {
        depth++; inds[depth] = ind; keys[depth] = k
        return
    }
    value(join(curpath(), k), ind, v)
}

BEGIN { depth = 0; inblock = 0 }

{
    line = $0
    sub(/\r$/, "", line)

    if (inblock) {
        if (line ~ /^[ \t]*$/) { blanks++; next }
        match(line, /^ */)
        if (RLENGTH > blockparent) {
            if (blockind < 0) blockind = RLENGTH
            for (; blanks > 0; blanks--) emit(blockpath, "")
            emit(blockpath, substr(line, blockind + 1))
            next
        }
        inblock = 0
    }

    if (line ~ /^[ \t]*(#.*)?$/ || line ~ /^---/ || line ~ /^\.\.\.$/) next
    match(line, /^ */)
    ind = RLENGTH
    text = substr(line, ind + 1)

    if (text ~ /^-([ \t]|$)/) {
        # list item: pop to the owner of the list (same or smaller indent)
        while (depth > 0 && (inds[depth] > ind || (inds[depth] == ind && keys[depth] == "-"))) depth--
        item = text; sub(/^-[ \t]*/, "", item)
        if (item ~ /^[A-Za-z0-9_.-]+:([ \t]|$)/) {
            depth++; inds[depth] = ind; keys[depth] = "-"
            # the item's keys sit at the column where its text starts
            mapping(ind + length(text) - length(item), item)
            next
        }
        value(curpath(), ind, item)
        next
    }

    if (text ~ /^[A-Za-z0-9_.-]+:([ \t]|$)/) {
        mapping(ind, text)
        next
    }
    # anything else is ignored
}

END {
    for (i = 1; i <= npaths; i++) {
        name = order[i]
        gsub(/[^A-Za-z0-9_]/, "_", name)
        v = vals[order[i]]
        gsub(/'/, "'\\''", v)
        print prefix name "='" v "'"
    }
}
