#!/usr/bin/env bash
# Tells a devfile registry server that the main branch of its stacks repository moved: run in a
# checkout of the stacks repository after a push, with the range the push moved the branch over.
#
#   post-merge.sh [--server URL] [--wait] [--dry-run] BEFORE AFTER
#
# Works out which stacks changed (`git diff --name-only BEFORE AFTER`: stacks/<name>/... and the
# entries of extraDevfileEntries.yaml) and sends `POST <server>/api/updates` with
# {"commit": AFTER, "stacks": [...]}. When BEFORE is empty, all zeros (the branch's first push) or
# not in the checkout (a force push), it sends no "stacks", which means "check everything"; the
# server checks every stack anyway, the list is informative. See README "Post-merge updates".
#
# Environment: UPDATE_SERVER_URL (or --server); UPDATE_WEBHOOK_SECRET (the body is signed with
# X-Hub-Signature-256) or UPDATE_TOKEN (Authorization: Bearer). Neither is ever printed, nor
# passed to another program on its command line.
#
# Exit codes:
#   0  the trigger was accepted; with --wait: the update went live (or a newer one that replaced
#      it did)
#   1  with --wait: the update failed (its problems are printed)
#   2  usage or local error (arguments, AFTER is not a commit of the checkout, no secret, a tool
#      missing)
#   3  the server refused the credentials (401/403): the secret or token is wrong; never retried
#   4  the server refused the request otherwise (another 4xx, e.g. it takes no updates)
#   5  the server could not be reached, or answered 5xx, on every attempt
#   6  with --wait: no final answer (timed out, or the server no longer knows the update)
set -euo pipefail
shopt -s inherit_errexit

usage() {
    cat <<'EOF'
usage: post-merge.sh [options] BEFORE AFTER

  BEFORE            the commit the branch was at before the push (empty or all zeros: none)
  AFTER             the commit the branch is at after the push
  --server URL      the server (default: $UPDATE_SERVER_URL)
  --wait            follow the update until it is live or failed
  --timeout SECS    how long --wait waits (default 600)
  --interval SECS   how often --wait asks (default 2)
  --retries N       attempts at sending the trigger on connection errors and 5xx (default 5)
  --retry-delay S   the first pause between attempts, doubled each time up to 30 (default 2)
  --dry-run         print the request body and send nothing
  -h, --help        this text

Credentials: UPDATE_WEBHOOK_SECRET (HMAC signature) or UPDATE_TOKEN (bearer token).
Exit codes: 0 accepted/live, 1 update failed, 2 usage, 3 credentials refused, 4 request refused,
5 server unreachable or failing, 6 --wait got no final answer.
EOF
}

say() { printf 'post-merge: %s\n' "$*" >&2; }
die() {
    local code=$1
    shift
    say "$*"
    exit "$code"
}

server=${UPDATE_SERVER_URL:-}
wait=false
dry_run=false
timeout=600
interval=2
retries=5
retry_delay=2
positional=()
while (($#)); do
    case $1 in
        --server) server=${2:?--server needs a URL}; shift 2 ;;
        --server=*) server=${1#*=}; shift ;;
        --wait) wait=true; shift ;;
        --dry-run) dry_run=true; shift ;;
        --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
        --interval) interval=${2:?--interval needs seconds}; shift 2 ;;
        --retries) retries=${2:?--retries needs a number}; shift 2 ;;
        --retry-delay) retry_delay=${2:?--retry-delay needs seconds}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        --) shift; positional+=("$@"); break ;;
        -*) usage >&2; die 2 "unknown option $1" ;;
        *) positional+=("$1"); shift ;;
    esac
done
if ((${#positional[@]} != 2)); then
    usage >&2
    die 2 "expected BEFORE and AFTER, got ${#positional[@]} argument(s)"
fi
before=${positional[0]}
after=${positional[1]}
[[ $retries =~ ^[1-9][0-9]*$ ]] || die 2 "--retries must be a positive number, not $retries"
for value in "$timeout" "$interval" "$retry_delay"; do
    [[ $value =~ ^[0-9]+(\.[0-9]+)?$ ]] || die 2 "not a number of seconds: $value"
done
for tool in git jq curl openssl od; do
    command -v "$tool" >/dev/null || die 2 "$tool is needed and not installed"
done

git rev-parse --git-dir >/dev/null 2>&1 || die 2 "$(pwd) is not a Git checkout of the stacks repository"
after=$(git rev-parse --verify --quiet "$after^{commit}") ||
    die 2 "AFTER ${positional[1]} is not a commit of this checkout"

# The entries of extraDevfileEntries.yaml at a commit, one a line: "<name><TAB><its text>". An
# entry starts at a list item directly under a top-level key (samples:, stacks:) and runs to
# the next one; its name is its `name:` key. A file without entries (missing, empty) gives
# nothing; an entry without a name gives an empty name.
extra_entries() {
    git show "$1:extraDevfileEntries.yaml" 2>/dev/null | awk '
        function flush() { if (text != "") print name "\t" text; text = ""; name = "" }
        /^[^ \t#-]/ { flush(); item = -1; next }            # a top-level key
        {
            match($0, /^ */); indent = RLENGTH
            if (item < 0 && substr($0, indent + 1, 2) == "- ") item = indent
            if (item < 0) next
            rest = substr($0, indent + 1)
            if (indent == item && substr(rest, 1, 2) == "- ") {
                flush(); rest = substr(rest, 3); key = item + 2
            } else if (indent != key) { rest = "" }
            if (rest ~ /^name:/) { sub(/^name:[ \t]*/, "", rest); gsub(/["\047]|[ \t]+$/, "", rest); name = rest }
            text = text "\\n" $0
        }
        END { flush() }'
}

# The names of the stacks (and samples) that the push changed, as a JSON array, or nothing when
# the push range is unknown.
changed_names() {
    if [[ -z $before || $before =~ ^0+$ ]]; then
        say "no previous commit (the branch's first push): every stack is checked"
        return
    fi
    if ! git cat-file -e "$before^{commit}" 2>/dev/null; then
        say "BEFORE $before is not in this checkout (a force push, or a shallow clone): every stack is checked"
        return
    fi
    local names=() path
    # --no-renames: a moved stack is a removed one and an added one.
    while IFS= read -r -d '' path; do
        if [[ $path =~ ^stacks/([^/]+)/ ]]; then
            names+=("${BASH_REMATCH[1]}")
        elif [[ $path == extraDevfileEntries.yaml ]]; then
            local entries
            entries=$(sort <(extra_entries "$before") <(extra_entries "$after") | uniq -u | cut -f1 | sort -u)
            if grep -qx '' <<<"$entries"; then
                say "an entry of extraDevfileEntries.yaml has no name: every stack is checked"
                return
            fi
            [[ -n $entries ]] && mapfile -t -O "${#names[@]}" names <<<"$entries"
        fi
    done < <(git diff -z --name-only --no-renames "$before" "$after" --)
    if ((${#names[@]} == 0)); then
        echo '[]'
    else
        printf '%s\n' "${names[@]}" | sort -u | jq -R . | jq -cs .
    fi
}

stacks=$(changed_names)
if [[ -n $stacks ]]; then
    body=$(jq -cn --arg commit "$after" --argjson stacks "$stacks" '{commit: $commit, stacks: $stacks}')
else
    body=$(jq -cn --arg commit "$after" '{commit: $commit}')
fi

if $dry_run; then
    say "dry run: would POST to ${server:-<no server set>}/api/updates:"
    printf '%s\n' "$body"
    exit 0
fi

[[ -n $server ]] || die 2 "no server: set UPDATE_SERVER_URL or pass --server URL"
server=${server%/}
secret=${UPDATE_WEBHOOK_SECRET:-}
token=${UPDATE_TOKEN:-}
[[ -n $secret || -n $token ]] || die 2 "no credentials: set UPDATE_WEBHOOK_SECRET or UPDATE_TOKEN"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
umask 077
printf '%s' "$body" >"$tmp/body"

# HMAC-SHA256 (RFC 2104) of the file $2 with the key $1, in hex ($2.inner is scratch). Built on `openssl dgst` rather
# than `openssl dgst -hmac KEY` so that the key never is a process argument (anyone who can list
# processes could read it there): printf is a shell builtin.
hmac_sha256() {
    local key ipad='' opad='' i byte escape
    key=$(printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n')
    if ((${#key} > 128)); then
        key=$(printf '%s' "$1" | openssl dgst -sha256 -r | cut -c1-64)
    fi
    while ((${#key} < 128)); do key+=0; done
    for ((i = 0; i < 128; i += 2)); do
        byte=$((16#${key:i:2}))
        printf -v escape '\\x%02x' $((byte ^ 0x36))
        ipad+=$escape
        printf -v escape '\\x%02x' $((byte ^ 0x5c))
        opad+=$escape
    done
    { printf '%b' "$ipad"; cat "$2"; } | openssl dgst -sha256 -binary >"$2.inner"
    { printf '%b' "$opad"; cat "$2.inner"; } | openssl dgst -sha256 -r | cut -c1-64
}

# Headers go through a file (`curl -H @file`) so that they are not curl arguments either.
if [[ -n $secret ]]; then
    printf 'X-Hub-Signature-256: sha256=%s\n' "$(hmac_sha256 "$secret" "$tmp/body")" >"$tmp/auth"
    auth="a signature"
else
    printf 'Authorization: Bearer %s\n' "$token" >"$tmp/auth"
    auth="a bearer token"
fi

# One HTTP request: sets $status (000 when curl failed, its message in $tmp/error) and leaves the
# answer in $tmp/answer and its headers in $tmp/headers. Returns curl's exit code.
request() {
    local method=$1 url=$2 args=(-sS -o "$tmp/answer" -D "$tmp/headers" -w '%{http_code}' --connect-timeout 10 --max-time 60)
    if [[ $method == POST ]]; then
        args+=(-X POST -H 'Content-Type: application/json' -H "@$tmp/auth" --data-binary "@$tmp/body")
    fi
    : >"$tmp/answer"
    status=$(curl "${args[@]}" "$url" 2>"$tmp/error") && return 0
    local code=$?
    status=000
    return "$code"
}

# The "message" of a JSON answer, else the answer itself.
answer_message() { jq -r '.message // .status // empty' "$tmp/answer" 2>/dev/null || head -c 500 "$tmp/answer"; }

say "POST $server/api/updates for $after with $auth: $body"
attempt=1
delay=$retry_delay
while :; do
    if request POST "$server/api/updates"; then
        case $status in
            5?? | 408 | 429) why="HTTP $status: $(answer_message)" ;;
            *) break ;;
        esac
    else
        code=$?
        # Malformed URL, unsupported protocol: trying again changes nothing.
        case $code in 1 | 2 | 3) die 2 "curl cannot send to $server: $(cat "$tmp/error")" ;; esac
        why=$(cat "$tmp/error")
    fi
    ((attempt < retries)) || die 5 "giving up after $attempt attempt(s): $why"
    say "attempt $attempt of $retries: $why; trying again in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$(awk -v d="$delay" 'BEGIN { d *= 2; print (d > 30 ? 30 : d) }')
done

case $status in
    200 | 202) ;;
    401 | 403) die 3 "the server refused the credentials (HTTP $status): $(answer_message)" ;;
    4??) die 4 "the server refused the trigger (HTTP $status): $(answer_message)" ;;
    *) die 5 "unexpected answer HTTP $status: $(answer_message)" ;;
esac
id=$(jq -r '.id // empty' "$tmp/answer")
location=$(tr -d '\r' <"$tmp/headers" | awk 'tolower($1) == "location:" { print $2 }' | tail -n 1)
[[ -n $id && -n $location ]] || die 5 "HTTP $status without an update id and Location: $(head -c 500 "$tmp/answer")"
[[ $location == /* ]] && location=$server$location
if [[ $status == 200 ]]; then
    say "the server already had update $id for this commit"
else
    say "update $id queued"
fi
printf 'id=%s\nlocation=%s\n' "$id" "$location"
$wait || exit 0

# --wait: poll the job until it is final; a job superseded by a newer one is followed to that one.
deadline=$(($(date +%s) + ${timeout%.*}))
unreachable=false
while :; do
    if request GET "$location" && [[ $status == 200 ]]; then
        unreachable=false
        job_status=$(jq -r .status "$tmp/answer")
        case $job_status in
            live)
                say "update $id is live: $(jq -r '.index_digest // "the index"' "$tmp/answer") at $(jq -r .commit "$tmp/answer")"
                jq -r '.changes[] | "  \(.change) \(.name)" + (if (.versions | length) > 0 then " (\(.versions | join(", ")))" else "" end)' "$tmp/answer" >&2
                printf 'status=live\n'
                exit 0
                ;;
            failed)
                say "update $id failed:"
                jq -r '.problems[] | select(.severity == "error")
                    | "error: \(.file)\(if .line > 0 then ":\(.line)" else "" end): [\(.rule)] \(.message)"' "$tmp/answer" >&2
                jq -r '.log[-5:][] | "  log: \(.)"' "$tmp/answer" >&2
                if [[ ${GITHUB_ACTIONS:-} == true ]]; then
                    # Workflow commands: each error becomes an annotation on its file and line.
                    jq -r '.problems[] | select(.severity == "error")
                        | "::error file=\(.file)\(if .line > 0 then ",line=\(.line)" else "" end),title=\(.rule)::\(.message | gsub("%"; "%25") | gsub("\r"; "%0D") | gsub("\n"; "%0A"))"' "$tmp/answer"
                fi
                printf 'status=failed\n'
                exit 1
                ;;
            superseded)
                next=$(jq -r '.superseded_by // empty' "$tmp/answer")
                if [[ -z $next ]]; then
                    # The registry already serves a newer commit of the branch, which has this one.
                    say "update $id is superseded: $(jq -r '.log[-1] // "a newer commit is served"' "$tmp/answer")"
                    printf 'status=superseded\n'
                    exit 0
                fi
                say "update $id is superseded by $next (a newer commit): following it"
                id=$next
                location=$server/api/updates/$next
                continue
                ;;
        esac
    elif [[ $status == 404 ]]; then
        die 6 "the server no longer knows update $id (restarted?); it converges on the branch head by itself"
    elif [[ $status == 4?? ]]; then
        die 4 "GET $location: HTTP $status: $(answer_message)"
    elif ! $unreachable; then
        unreachable=true
        say "cannot read update $id ($( [[ $status == 000 ]] && cat "$tmp/error" || echo "HTTP $status")); still waiting"
    fi
    (($(date +%s) < deadline)) || die 6 "update $id is still ${job_status:-unknown} after ${timeout}s"
    sleep "$interval"
done
