#!/usr/bin/env bash
# Server benchmark (not a test): index-server in embedded mode on the community registry
# snapshot, against nginx serving the very same response bodies as static files, with wrk.
#
# Usage: scripts/bench-server.sh
#   BENCH_DURATION=2s BENCH_ROUNDS=5 BENCH_CONNECTIONS=32 BENCH_THREADS=2 BENCH_STARTS=5
#   (environment, optional)
#   RUST_LOG is passed to the server (default: info, as deployed: 4xx and 5xx answers are
#   logged, 2xx and 3xx at debug).
#   BENCH_SERVER_BIN=PATH benchmarks that index-server binary instead of building one (to compare
#   two builds in one session, alternately).
#
# Installs nginx and wrk (Debian packages) when they are missing, builds index-server in release,
# then for each route runs wrk against the server and against nginx with the same settings,
# alternately, BENCH_ROUNDS times each (the medians resist other load on the machine).
# Prints one `name: value unit` line per figure: requests/s and p99 latency per route and
# server (medians of the rounds), the server's resident memory after the run, the time from
# process start to the first 200 on /health (median of BENCH_STARTS starts), then the
# server/nginx ratios and a last line against the targets. Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail
export LC_ALL=C # `$EPOCHREALTIME` and wrk's figures with a decimal point
cd "$(dirname "$0")/.."

duration="${BENCH_DURATION:-2s}"
rounds="${BENCH_ROUNDS:-5}"
connections="${BENCH_CONNECTIONS:-32}"
threads="${BENCH_THREADS:-2}"
starts="${BENCH_STARTS:-5}"
fixture="../shared/fixtures/community-registry"
server_bin="${BENCH_SERVER_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/index-server}"

say() { echo "bench-server: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# --- Cleanup: every process started here is stopped on exit, whatever the reason. ---------------
tmp=""
pids=()
policy_rc_d=""
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        stop "$pid"
    done
    [ -z "$policy_rc_d" ] || rm -f "$policy_rc_d"
    [ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one process started here (SIGTERM, then SIGKILL after 5 s) and forgets it.
stop() {
    local pid=$1 i deadline=$((${EPOCHREALTIME/./} + 5000000))
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((${EPOCHREALTIME/./} < deadline)); do
        nap
    done
    # Not reaped yet, so the pid cannot have been reused.
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local kept=()
    for i in "${pids[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
    pids=("${kept[@]}")
}

# Sleeps about 1 ms without starting a process (which would compete with what is measured):
# a read with a timeout on a pipe nobody writes to.
exec {nap_fd}<> <(:)
nap() { read -r -t 0.001 -u "$nap_fd" || true; }

# --- What the benchmark needs ---------------------------------------------------------------------
find_nginx() { command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
packages=()
[ -n "$(find_nginx)" ] || packages+=(nginx)
command -v wrk >/dev/null || packages+=(wrk)
for tool in cargo curl cmp; do
    command -v "$tool" >/dev/null || die "missing $tool: install the Rust toolchain, curl and diffutils"
done
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        die "missing ${packages[*]}: install them as root with" \
            "apt-get install --no-install-recommends nginx-light wrk (or nginx)"
    fi
    export DEBIAN_FRONTEND=noninteractive
    say "installing ${packages[*]}"
    apt-get update -qq || die "apt-get update failed"
    wanted=()
    for p in "${packages[@]}"; do
        # nginx-light (smaller) where the release still has it, else nginx.
        if [ "$p" = nginx ] && apt-cache show nginx-light >/dev/null 2>&1; then p=nginx-light; fi
        wanted+=("$p")
    done
    # Installing nginx starts its system service on port 80. A policy-rc.d refusing every
    # service start keeps the machine as it was: this script runs an nginx of its own.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy_rc_d=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy_rc_d"
        chmod 755 "$policy_rc_d"
    fi
    apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null ||
        die "cannot install ${wanted[*]} (apt-get install failed)"
    if [ -n "$policy_rc_d" ]; then
        rm -f "$policy_rc_d"
        policy_rc_d=""
    fi
fi
nginx_bin="$(find_nginx)"
[ -n "$nginx_bin" ] || die "nginx is not installed"
[ -d "$fixture/stacks" ] || die "the community registry snapshot is missing: $fixture"

schemas/fetch-devfile-schemas.sh >&2
if [ -z "${BENCH_SERVER_BIN:-}" ]; then
    say "building index-server (release)"
    cargo build --release --locked -p index-server >&2
fi
[ -x "$server_bin" ] || die "no binary at $server_bin (is CARGO_TARGET_DIR set as for the build?)"

tmp="$(mktemp -d)"
# nginx's workers run as an unprivileged user when it is started as root: they must read www/.
chmod 755 "$tmp"
cp -R "$fixture" "$tmp/registry"

# --- Helpers ---------------------------------------------------------------------------------------
# A port nothing listens on (the server cannot be asked for port 0 and tell which one it got),
# below the ephemeral range, where outgoing connections (wrk's, other programs') could hold it.
free_port() {
    local port fd low _high
    read -r low _high </proc/sys/net/ipv4/ip_local_port_range
    ((low > 11000)) || low=61000
    for _ in $(seq 100); do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
            echo "$port"
            return
        fi
        exec {fd}>&-
    done
    die "no free port found"
}

# Whether GET /health on 127.0.0.1:$1 answers 200. Bash's /dev/tcp, so that polling starts no
# process.
health_ok() {
    local fd line
    { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&"$fd" 2>/dev/null || true
    IFS= read -r -t 2 -u "$fd" line || true
    exec {fd}>&-
    [[ $line == "HTTP/1.1 200"* ]]
}

# Waits (10 s at most) until the server $2 on port $1 answers 200 on /health.
wait_health() {
    local port=$1 pid=$2 deadline=$((${EPOCHREALTIME/./} + 10000000))
    until health_ok "$port"; do
        kill -0 "$pid" 2>/dev/null || die "the server exited before answering /health (log: below)
$(tail -n 20 "$tmp/server.log")"
        ((${EPOCHREALTIME/./} < deadline)) || die "the server did not answer /health within 10 s"
        nap
    done
}

# Starts the server on 127.0.0.1:$1 with the rest as arguments; sets server_pid.
start_server() {
    local port=$1
    shift
    "$server_bin" --listen "127.0.0.1:$port" "$@" 2>>"$tmp/server.log" &
    server_pid=$!
    pids+=("$server_pid")
}

# Starts the server with "$@" (plus --listen) $starts times, one after the other, and sets
# start_median_ms to the median time in ms from starting the process to the first 200 on
# /health. Another mode (e.g. the OCI store) is measured by calling it with that mode's
# arguments. (Not run in a subshell, so that the exit trap knows every server it started.)
measure_start() {
    local times=() i port t0 t1
    for ((i = 0; i < starts; i++)); do
        port="$(free_port)"
        t0=${EPOCHREALTIME/./}
        start_server "$port" "$@"
        wait_health "$port" "$server_pid"
        t1=${EPOCHREALTIME/./}
        times+=($((t1 - t0)))
        stop "$server_pid"
    done
    start_median_ms="$(printf '%s\n' "${times[@]}" | sort -n |
        awk '{ t[NR] = $1 } END { printf "%.1f", t[int((NR + 1) / 2)] / 1000 }')"
}

# Runs wrk against $2 and sets rps (requests/s) and p99 (ms); fails on errors or non-2xx answers.
run_wrk() {
    local name=$1 url=$2 out figures
    out="$(wrk -t"$threads" -c"$connections" -d"$duration" --timeout 5s --latency "$url")" ||
        die "wrk failed on $url"
    echo "$out" >"$tmp/wrk-$name.txt"
    if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
        die "$name: non-2xx answers from $url:
$out"
    fi
    if grep -q 'Socket errors' <<<"$out"; then
        die "$name: socket errors on $url:
$out"
    fi
    figures="$(awk '
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            p99 = v * (unit == "us" ? 0.001 : unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : -1)
        }
        END {
            if (rps == "" || p99 == "" || p99 < 0) exit 1
            printf "%.0f %.2f\n", rps, p99
        }' <<<"$out")" || die "cannot read wrk's output for $url:
$out"
    read -r rps p99 <<<"$figures"
}

# --- The server, and its bodies as static files -----------------------------------------------
say "starting index-server on the community registry snapshot"
server_port="$(free_port)"
start_server "$server_port" --source "$tmp/registry"
main_pid=$server_pid
wait_health "$server_port" "$main_pid"
server="http://127.0.0.1:$server_port"

www="$tmp/www"
mkdir -p "$www/v2index"
fetch() { curl -sS --fail --max-time 10 -o "$2" "$server$1" || die "cannot fetch $1 from the server"; }
fetch /index "$www/index"
fetch /v2index/all "$www/v2index/all"
fetch '/v2index/all?arch=amd64&tags=Java' "$www/v2index/all-filtered"

# The devfile of java-maven's default version, else of the first stack: read from /index, the
# reference's two-space indented JSON where an entry's own fields are indented by four spaces.
devfile="$(awk '
    /^    "name": / { name = $2; gsub(/[",]/, "", name) }
    /^    "version": / && name != "" {
        version = $2; gsub(/[",]/, "", version)
        if (first == "") first = name "/" version
        if (name == "java-maven") { print name "/" version; found = 1; exit }
        name = ""
    }
    END { if (!found && first != "") print first }' "$www/index")"
[ -n "$devfile" ] || die "no stack with a version in /index"
mkdir -p "$www/devfiles/${devfile%/*}"
fetch "/devfiles/$devfile" "$www/devfiles/$devfile"
chmod -R a+rX "$www"

nginx_dir="$tmp/nginx"
mkdir -p "$nginx_dir"
nginx_port="$(free_port)"
cat >"$nginx_dir/nginx.conf" <<EOF
# One worker per core, each pinned to its core as the server pins its workers; connections kept
# alive as wrk and HTTP clients do.
worker_processes $(nproc);
worker_cpu_affinity auto;
daemon off;
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    open_file_cache max=64 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path $nginx_dir/body;
    proxy_temp_path $nginx_dir/proxy;
    server_tokens off;
    # File names have no extension: the type is chosen by location.
    types {}
    default_type application/json;
    server {
        listen 127.0.0.1:$nginx_port;
        root $www;
        location /devfiles/ {
            default_type "text/plain; charset=utf-8";
        }
    }
}
EOF
"$nginx_bin" -p "$nginx_dir" -e "$nginx_dir/error.log" -c "$nginx_dir/nginx.conf" &
nginx_pid=$!
pids+=("$nginx_pid")
nginx="http://127.0.0.1:$nginx_port"
for ((i = 0; ; i++)); do
    curl -sf -o /dev/null "$nginx/index" && break
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx exited: $(cat "$nginx_dir/error.log" 2>/dev/null)"
    ((i < 500)) || die "nginx did not answer within 5 s"
    sleep 0.01
done

# route name, server path, nginx path
routes=(
    "v2index_all /v2index/all /v2index/all"
    "index /index /index"
    "devfile /devfiles/$devfile /devfiles/$devfile"
    "v2index_filtered /v2index/all?arch=amd64&tags=Java /v2index/all-filtered"
)

# nginx must serve exactly what the server serves, with the same content type.
for route in "${routes[@]}"; do
    read -r name server_path nginx_path <<<"$route"
    curl -sS --fail -o "$tmp/server.body" -w '%{content_type}' "$server$server_path" >"$tmp/server.type"
    curl -sS --fail -o "$tmp/nginx.body" -w '%{content_type}' "$nginx$nginx_path" >"$tmp/nginx.type"
    cmp "$tmp/server.body" "$tmp/nginx.body" ||
        die "$name: nginx's body differs from the server's ($server_path vs $nginx_path)"
    [ "$(cat "$tmp/server.type")" = "$(cat "$tmp/nginx.type")" ] ||
        die "$name: content types differ: server $(cat "$tmp/server.type"), nginx $(cat "$tmp/nginx.type")"
    say "$name: $(wc -c <"$tmp/server.body") bytes, $(cat "$tmp/server.type"), identical"
done

# --- Throughput and latency ----------------------------------------------------------------------
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
say "wrk -t$threads -c$connections -d$duration against each route, server and nginx alternately," \
    "$rounds rounds"
declare -A ratio
for route in "${routes[@]}"; do
    read -r name server_path nginx_path <<<"$route"
    server_rpss=() server_p99s=() nginx_rpss=() nginx_p99s=()
    for ((round = 1; round <= rounds; round++)); do
        run_wrk "${name}_server_$round" "$server$server_path"
        server_rpss+=("$rps") server_p99s+=("$p99")
        run_wrk "${name}_nginx_$round" "$nginx$nginx_path"
        nginx_rpss+=("$rps") nginx_p99s+=("$p99")
    done
    # Every round on standard error: where wrk's threads happen to run moves a round by tens
    # of percent, for the server and for nginx alike.
    say "$name rounds (req/s): server ${server_rpss[*]}; nginx ${nginx_rpss[*]}"
    server_rps="$(median "${server_rpss[@]}")" server_p99="$(median "${server_p99s[@]}")"
    nginx_rps="$(median "${nginx_rpss[@]}")" nginx_p99="$(median "${nginx_p99s[@]}")"
    echo "${name}_server_rps: $server_rps req/s"
    echo "${name}_nginx_rps: $nginx_rps req/s"
    echo "${name}_server_p99: $server_p99 ms"
    echo "${name}_nginx_p99: $nginx_p99 ms"
    ratio[$name]="$(awk -v s="$server_rps" -v n="$nginx_rps" 'BEGIN { printf "%.2f", s / n }')"
done

rss_kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$main_pid/status")"
rss_mb="$(awk -v kb="$rss_kb" 'BEGIN { printf "%.1f", kb / 1024 }')"
echo "server_rss: $rss_mb MB"
stop "$main_pid"
stop "$nginx_pid"

measure_start --source "$tmp/registry"
start_ms=$start_median_ms
echo "server_start_to_health: $start_ms ms"

for route in "${routes[@]}"; do
    read -r name _ <<<"$route"
    echo "${name}_ratio: ${ratio[$name]}x (server/nginx req/s)"
done
unfiltered_min="$(printf '%s\n' "${ratio[v2index_all]}" "${ratio[index]}" "${ratio[devfile]}" | sort -n | head -n 1)"
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = op == ">=" ? v >= t : v < t; print ok ? "met" : "missed" }'; }
echo "ratio: unfiltered routes at ${unfiltered_min}x nginx's req/s at worst" \
    "(target: at least 1x, $(verdict "$unfiltered_min" 1 '>=')); filtered at ${ratio[v2index_filtered]}x" \
    "(target: at least 0.5x, $(verdict "${ratio[v2index_filtered]}" 0.5 '>=')); start $start_ms ms" \
    "(target: under 300 ms, $(verdict "$start_ms" 300 '<')); RSS $rss_mb MB" \
    "(target: under 50 MB, $(verdict "$rss_mb" 50 '<'))"
