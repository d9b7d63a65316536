#!/bin/sh
# witness-agent.sh: the shell agent for hosts without Node. One signed push of
# heartbeat.json and circuit.json to the witness Worker per run (run it every minute
# from a systemd timer, cron or launchd). POSIX sh, curl and openssl only; speaks the
# same ping protocol v1 as the Node agent. It does NOT apply remote pauses (see
# agent/README.md): use the Node agent with --allow-remote-pause for that.
#
# Environment: WITNESS_URL, WITNESS_HOST, WITNESS_SECRET or WITNESS_SECRET_FILE,
# WITNESS_HEARTBEAT (data/heartbeat.json), WITNESS_CIRCUIT (data/circuit.json),
# WITNESS_STATE_FILE (${XDG_STATE_HOME:-$HOME/.local/state}/witness/agent.state).
# Exit codes: 0 accepted, 1 not accepted, 2 bad configuration.

set -u
umask 077
LC_ALL=C
export LC_ALL

VERSION=0.1.0
MAX_FILE_TEXT_BYTES=8192
MAX_BODY_BYTES=32768
REQUEST_TIMEOUT_SECONDS=10
MAX_ATTEMPTS=3
# A Retry-After longer than this ends the run (the timer starts the next one) instead of
# holding it: the header can come from anything between here and the Worker.
MAX_RETRY_AFTER_SECONDS=30
# A file caught empty or half-rewritten is read again after these pauses (seconds), as
# the Node agent does; what persists is sent as it is.
TORN_READ_RETRY_DELAYS="0.05 0.25"

usage() {
  cat <<'EOF'
witness-agent.sh: push heartbeat.json and circuit.json to a witness Worker, once.

Usage: witness-agent.sh [--once] [--verbose]
       witness-agent.sh --sign <timestamp-ms>   (print the signature of the body on stdin)

Settings come from the environment: WITNESS_URL, WITNESS_HOST, WITNESS_SECRET_FILE
(chmod 600) or WITNESS_SECRET, WITNESS_HEARTBEAT, WITNESS_CIRCUIT, WITNESS_STATE_FILE.
Remote pause is not supported by the shell agent; use the Node agent for it.
Exit codes: 0 accepted, 1 not accepted, 2 bad configuration.
EOF
}

log() { printf '%s witness-agent.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
warn() { log "$@" >&2; }
# A configuration mistake: one line, what is wrong and how to fix it.
config_error() { printf 'witness-agent.sh: %s\n' "$*" >&2; exit 2; }

verbose=0
sign_timestamp=
while [ $# -gt 0 ]; do
  case $1 in
    --once) ;;
    --verbose) verbose=1 ;;
    -h | --help) usage; exit 0 ;;
    -V | --version) echo "witness-agent.sh $VERSION"; exit 0 ;;
    --sign)
      [ $# -ge 2 ] || config_error "--sign needs a timestamp in Unix milliseconds"
      sign_timestamp=$2
      shift ;;
    *) config_error "unknown option $1; run witness-agent.sh --help for the options" ;;
  esac
  shift
done

for tool in curl openssl od awk; do
  command -v "$tool" >/dev/null 2>&1 || config_error "$tool is not installed; install it (the shell agent needs curl and openssl)"
done

# ---- configuration -----------------------------------------------------------------

secret=
load_secret() {
  if [ -n "${WITNESS_SECRET:-}" ] && [ -n "${WITNESS_SECRET_FILE:-}" ]; then
    config_error "both WITNESS_SECRET and WITNESS_SECRET_FILE are set; keep only one (the file is safer)"
  fi
  if [ -n "${WITNESS_SECRET_FILE:-}" ]; then
    f=$WITNESS_SECRET_FILE
    [ -e "$f" ] || config_error "cannot read the secret file $f (ENOENT); check WITNESS_SECRET_FILE"
    [ -f "$f" ] || config_error "the secret file $f is not a regular file; point WITNESS_SECRET_FILE at the file holding the host secret"
    [ -r "$f" ] || config_error "cannot read the secret file $f (EACCES); make it readable by the agent's user (and only by it: chmod 600)"
    # Permission string like -rw-------: characters 5-10 are group and other.
    perms=$(ls -ln "$f" | awk '{ print substr($1, 5, 6) }')
    case $perms in
      ------) ;;
      *) config_error "the secret file $f is readable by other users; run: chmod 600 $f" ;;
    esac
    secret=$(cat "$f") || config_error "cannot read the secret file $f; check its permissions"
    source_name="the secret file $f"
  elif [ -n "${WITNESS_SECRET:-}" ]; then
    secret=$WITNESS_SECRET
    source_name=WITNESS_SECRET
  else
    config_error "no host secret: set WITNESS_SECRET_FILE to a chmod-600 file holding the secret printed by \`npm run host-secret -- <host>\` (or set WITNESS_SECRET)"
  fi
  # Trim surrounding blanks and line breaks, as the Node agent does.
  secret=$(printf '%s' "$secret" | awk 'BEGIN { RS = "\001" } { gsub(/^[ \t\r\n]+|[ \t\r\n]+$/, ""); printf "%s", $0 }')
  case $secret in
    *[[:space:]]*) config_error "$source_name holds a secret with spaces or line breaks inside it; it must be the single line printed by \`npm run host-secret -- <host>\`" ;;
  esac
  [ "${#secret}" -ge 16 ] || config_error "$source_name holds a secret of ${#secret} characters, too short to be a host secret; paste the one printed by \`npm run host-secret -- <host>\`"
}

load_config() {
  url=${WITNESS_URL:-}
  [ -n "$url" ] || config_error "WITNESS_URL is not set; set it to your Worker's address, e.g. WITNESS_URL=https://witness.example.workers.dev"
  case $url in
    https://?*) ;;
    http://localhost | http://localhost[:/]* | http://127.0.0.1 | http://127.0.0.1[:/]* | http://\[::1\]*) ;;
    *) config_error "WITNESS_URL must start with https:// (got $url); plain http is only allowed for localhost" ;;
  esac
  case $url in
    *[?#]* | *[[:space:]]*) config_error "WITNESS_URL must be only the Worker's base address (got $url)" ;;
  esac
  while :; do
    case $url in */) url=${url%/} ;; *) break ;; esac
  done

  host=${WITNESS_HOST:-}
  [ -n "$host" ] || config_error "WITNESS_HOST is not set; set it to this host's id as configured in the Worker, e.g. WITNESS_HOST=trader-1"
  case $host in
    [a-z0-9]*) ;;
    *) config_error "WITNESS_HOST \"$host\" is not a valid host id; use 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit" ;;
  esac
  case $host in
    *[!a-z0-9._-]*) config_error "WITNESS_HOST \"$host\" is not a valid host id; use 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit" ;;
  esac
  [ "${#host}" -le 63 ] || config_error "WITNESS_HOST is longer than 63 characters; use the host id as configured in the Worker"

  heartbeat_path=${WITNESS_HEARTBEAT:-data/heartbeat.json}
  circuit_path=${WITNESS_CIRCUIT:-data/circuit.json}
  state_file=${WITNESS_STATE_FILE:-${XDG_STATE_HOME:-${HOME:-/nonexistent}/.local/state}/witness/agent.state}
  ping_url="$url/v1/ping/$host"
}

# ---- scratch space (private: umask 077) --------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/witness-agent.XXXXXX") || config_error "cannot create a temporary directory; check TMPDIR"
trap 'rm -rf "$work"' EXIT
trap 'rm -rf "$work"; exit 143' TERM
trap 'rm -rf "$work"; exit 130' INT

# ---- signing -------------------------------------------------------------------------
# HMAC-SHA256 built from two plain SHA-256 runs, because `openssl dgst -hmac KEY` would
# put the secret on the command line, where other users can read it (ps, /proc).

# Prints printf-format octal escapes for the 64-byte key block XOR pad ($1, decimal).
key_pad_format() {
  od -An -v -tu1 "$work/key" | awk -v pad="$1" '
    function xor(a, b,   r, p) {
      r = 0; p = 1
      while (a > 0 || b > 0) {
        if ((a % 2) != (b % 2)) r += p
        a = int(a / 2); b = int(b / 2); p *= 2
      }
      return r
    }
    { for (i = 1; i <= NF; i++) key[n++] = $i + 0 }
    END { for (i = 0; i < 64; i++) printf "\\%03o", xor(i < n ? key[i] : 0, pad) }'
}

# hmac_hex MESSAGE_FILE: lowercase hex HMAC-SHA256 of the file with $secret as key.
hmac_hex() {
  printf '%s' "$secret" > "$work/key"
  if [ "$(wc -c < "$work/key" | tr -d ' ')" -gt 64 ]; then
    openssl dgst -sha256 -binary < "$work/key" > "$work/key.hashed" && mv "$work/key.hashed" "$work/key"
  fi
  # printf is a shell builtin: the pad bytes never appear in a process list.
  printf "$(key_pad_format 54)" > "$work/ipad"
  printf "$(key_pad_format 92)" > "$work/opad"
  cat "$work/ipad" "$1" | openssl dgst -sha256 -binary > "$work/inner"
  cat "$work/opad" "$work/inner" | openssl dgst -sha256 | awk '{ print $NF }'
  rm -f "$work/key" "$work/ipad" "$work/opad" "$work/inner"
}

# sign TIMESTAMP BODY_FILE
sign() {
  { printf '%s.' "$1"; cat "$2"; } > "$work/message"
  hmac_hex "$work/message"
}

if [ -n "$sign_timestamp" ]; then
  load_secret
  cat > "$work/stdin-body"
  sign "$sign_timestamp" "$work/stdin-body"
  exit 0
fi

load_config
load_secret

# ---- small helpers -----------------------------------------------------------------

now_ms() {
  ms=$(date +%s%3N 2>/dev/null)
  case $ms in
    *[!0-9]* | '') ms="$(date +%s)000" ;;
  esac
  printf '%s' "$ms"
}

is_number() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# JSON string body (without quotes) of a file's bytes: escapes quote, backslash and
# control characters; invalid UTF-8 becomes U+FFFD so the body is always valid UTF-8.
json_escape_file() {
  od -An -v -tu1 "$1" | awk '
    { for (i = 1; i <= NF; i++) b[n++] = $i + 0 }
    END {
      i = 0
      while (i < n) {
        c = b[i]
        if (c < 128) {
          if (c == 34) printf "\\\""
          else if (c == 92) printf "\\\\"
          else if (c == 10) printf "\\n"
          else if (c == 13) printf "\\r"
          else if (c == 9) printf "\\t"
          else if (c == 8) printf "\\b"
          else if (c == 12) printf "\\f"
          else if (c < 32) printf "\\u%04x", c
          else printf "%c", c
          i++
          continue
        }
        len = 0; lo = 128; hi = 191
        if (c >= 194 && c <= 223) len = 2
        else if (c >= 224 && c <= 239) { len = 3; if (c == 224) lo = 160; if (c == 237) hi = 159 }
        else if (c >= 240 && c <= 244) { len = 4; if (c == 240) lo = 144; if (c == 244) hi = 143 }
        ok = (len > 0 && i + len <= n)
        if (ok && (b[i + 1] < lo || b[i + 1] > hi)) ok = 0
        for (k = 2; ok && k < len; k++) if (b[i + k] < 128 || b[i + k] > 191) ok = 0
        if (!ok) { printf "\\ufffd"; i++; continue }
        for (k = 0; k < len; k++) printf "%c", b[i + k]
        i += len
      }
    }'
}

json_escape_string() {
  printf '%s' "$1" > "$work/string"
  json_escape_file "$work/string"
}

file_mtime_ms() {
  s=$(stat -c %Y "$1" 2>/dev/null) || s=
  is_number "$s" || s=$(stat -f %m "$1" 2>/dev/null) || s=
  is_number "$s" && printf '%s000' "$s"
}

# file_report PATH NAME FORCE_TOO_LARGE: writes $work/NAME.json (a FileReport) and
# sets state_NAME. Every bad file is reported as what it is, never as ok. A pipeline
# that rewrites its file in place (truncate, then write) can be caught half way: such a
# read gets a second look before it becomes a page at 3 AM.
file_report() {
  file_report_once "$@"
  for pause in $TORN_READ_RETRY_DELAYS; do
    looks_torn "$2" || return 0
    sleep "$pause" 2>/dev/null || sleep 1
    file_report_once "$@"
  done
}

# The shell cannot parse JSON; these cheap signs catch a write in progress: empty, the
# size changed while it was read, or the text does not end in "}" (both files are JSON
# objects).
looks_torn() { # NAME
  eval "torn_state=\$state_$1 torn_changed=\$changed_$1"
  case $torn_state in
    empty) return 0 ;;
    ok) ;;
    *) return 1 ;;
  esac
  [ "$torn_changed" = no ] || return 0
  [ "$(tr -d ' \t\r\n' < "$work/$1.copy" | tail -c 1)" = "}" ] || return 0
  return 1
}

file_report_once() {
  eval "changed_$2=no"
  path=$1 name=$2 out="$work/$2.json"
  if [ ! -e "$path" ]; then
    printf '{"state":"missing"}' > "$out"; eval "state_$name=missing"; return
  fi
  mtime=$(file_mtime_ms "$path")
  mtime_field=
  [ -n "$mtime" ] && mtime_field=",\"mtime\":$mtime"
  if [ -d "$path" ]; then
    printf '{"state":"unreadable"%s,"error":"EISDIR"}' "$mtime_field" > "$out"; eval "state_$name=unreadable"; return
  fi
  if [ ! -f "$path" ]; then
    printf '{"state":"unreadable"%s,"error":"not a regular file"}' "$mtime_field" > "$out"; eval "state_$name=unreadable"; return
  fi
  if [ ! -r "$path" ]; then
    printf '{"state":"unreadable"%s,"error":"EACCES"}' "$mtime_field" > "$out"; eval "state_$name=unreadable"; return
  fi
  copy="$work/$name.copy"
  # One read of at most cap + 1 bytes: the size reported is the size of what was read.
  if ! dd if="$path" of="$copy" bs=$((MAX_FILE_TEXT_BYTES + 1)) count=1 2>/dev/null; then
    printf '{"state":"unreadable"%s,"error":"read failed"}' "$mtime_field" > "$out"; eval "state_$name=unreadable"; return
  fi
  size=$(wc -c < "$copy" | tr -d ' ')
  size_now=$(wc -c < "$path" 2>/dev/null | tr -d ' ')
  [ "$size_now" = "$size" ] || eval "changed_$name=yes"
  if [ "$size" -gt "$MAX_FILE_TEXT_BYTES" ] || [ "$3" = yes ]; then
    full=$(wc -c < "$path" 2>/dev/null | tr -d ' ')
    is_number "$full" || full=$size
    [ "$full" -ge "$size" ] || full=$size
    note=
    [ "$3" = yes ] && note=',"error":"text too long for the ping body once JSON-escaped"'
    printf '{"state":"too_large","size":%s%s%s}' "$full" "$mtime_field" "$note" > "$out"; eval "state_$name=too_large"; return
  fi
  if [ "$size" -eq 0 ]; then
    printf '{"state":"empty","size":0%s}' "$mtime_field" > "$out"; eval "state_$name=empty"; return
  fi
  {
    printf '{"state":"ok","size":%s%s,"text":"' "$size" "$mtime_field"
    json_escape_file "$copy"
    printf '"}'
  } > "$out"
  eval "state_$name=ok"
}

boot_id() {
  id=
  if [ -r /proc/sys/kernel/random/boot_id ]; then
    id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
  fi
  if [ -z "$id" ] && command -v sysctl >/dev/null 2>&1; then
    id=$(sysctl -n kern.bootsessionuuid 2>/dev/null) || id=
    if [ -z "$id" ]; then
      sec=$(sysctl -n kern.boottime 2>/dev/null | sed -n 's/.*sec = \([0-9][0-9]*\).*/\1/p')
      [ -n "$sec" ] && id="boottime-$sec"
    fi
  fi
  if [ -z "$id" ] && [ -r /proc/uptime ]; then
    up=$(awk '{ print int($1) }' /proc/uptime)
    # Boot time rounded to 10 minutes, so small clock steps do not look like a reboot.
    id="uptime-$(printf '%s' "$(( ($(date +%s) - up) / 600 ))" | openssl dgst -sha256 | awk '{ print substr($NF, 1, 32) }')"
  fi
  id=$(printf '%s' "$id" | tr -cd 'A-Za-z0-9._:-' | cut -c1-64)
  [ -n "$id" ] || id=unknown
  printf '%s' "$id"
}

# ---- state kept between runs (seq, start time, the last push outage) ----------------

st_seq=0 st_started_at= st_outage_since= st_outage_until= st_outage_failures=0 st_outage_error=
st_state_heartbeat= st_state_circuit= st_last_logged=
load_state() {
  [ -r "$state_file" ] || return 0
  while IFS='=' read -r key value; do
    case $key in
      seq) is_number "$value" && st_seq=$value ;;
      started_at) is_number "$value" && st_started_at=$value ;;
      outage_since) is_number "$value" && st_outage_since=$value ;;
      outage_until) is_number "$value" && st_outage_until=$value ;;
      outage_failures) is_number "$value" && st_outage_failures=$value ;;
      outage_error) st_outage_error=$value ;;
      state_heartbeat) st_state_heartbeat=$value ;;
      state_circuit) st_state_circuit=$value ;;
      last_logged) st_last_logged=$value ;;
    esac
  done < "$state_file"
}

# Without its state every run would look like a new agent start (seq 1, a new start
# time, the outage forgotten), so a state file it cannot keep is a configuration error.
state_fix() {
  user=$(id -un 2>/dev/null) || user=$(id -u)
  printf 'set WITNESS_STATE_FILE to a file in a directory %s can write, or make it so: mkdir -p %s && chown %s %s' "$user" "$1" "$user" "$1"
}

check_state_file() {
  dir=$(dirname "$state_file")
  [ ! -d "$state_file" ] || config_error "WITNESS_STATE_FILE $state_file is a directory; point it at a file, e.g. WITNESS_STATE_FILE=$state_file/agent.state"
  mkdir -p "$dir" 2>/dev/null || config_error "cannot create $dir for WITNESS_STATE_FILE $state_file; $(state_fix "$dir")"
  probe="$state_file.tmp.$$"
  if (: > "$probe") 2>/dev/null; then rm -f "$probe"; else config_error "cannot write WITNESS_STATE_FILE $state_file; $(state_fix "$dir")"; fi
  if [ -e "$state_file" ] && [ ! -r "$state_file" ]; then
    config_error "cannot read WITNESS_STATE_FILE $state_file; $(state_fix "$dir")"
  fi
}

save_state() {
  dir=$(dirname "$state_file")
  mkdir -p "$dir" 2>/dev/null || config_error "cannot create $dir for WITNESS_STATE_FILE $state_file; $(state_fix "$dir")"
  tmp="$state_file.tmp.$$"
  if {
    printf 'seq=%s\nstarted_at=%s\n' "$st_seq" "$st_started_at"
    printf 'outage_since=%s\noutage_until=%s\noutage_failures=%s\noutage_error=%s\n' \
      "$st_outage_since" "$st_outage_until" "$st_outage_failures" "$st_outage_error"
    printf 'state_heartbeat=%s\nstate_circuit=%s\nlast_logged=%s\n' "$st_state_heartbeat" "$st_state_circuit" "$st_last_logged"
  } > "$tmp" && mv -f "$tmp" "$state_file"; then
    :
  else
    rm -f "$tmp"
    config_error "cannot write WITNESS_STATE_FILE $state_file; $(state_fix "$dir")"
  fi
}

# Only safe characters go into the state file and the log.
clean_error() { printf '%s' "$1" | tr -c 'A-Za-z0-9 :._()/,-' ' ' | cut -c1-180; }

outage_json() {
  if [ "$st_outage_failures" -eq 0 ] || [ -z "$st_outage_since" ]; then
    printf 'null'
    return
  fi
  printf '{"since":%s' "$st_outage_since"
  [ -n "$st_outage_until" ] && printf ',"until":%s' "$st_outage_until"
  printf ',"failures":%s' "$st_outage_failures"
  [ -n "$st_outage_error" ] && printf ',"lastError":"%s"' "$(json_escape_string "$st_outage_error")"
  printf '}'
}

note_failure() {
  error=$(clean_error "$1")
  if [ "$st_outage_failures" -eq 0 ] || [ -n "$st_outage_until" ]; then
    st_outage_since=$(now_ms) st_outage_until= st_outage_failures=1
  else
    st_outage_failures=$((st_outage_failures + 1))
  fi
  st_outage_error=$error
  if [ "$st_outage_failures" -eq 1 ] || [ "$error" != "$st_last_logged" ] || [ "$verbose" -eq 1 ]; then
    warn "push failing: $error${2:-} ($st_outage_failures failures since $(date -u +%H:%M:%SZ -d "@$((st_outage_since / 1000))" 2>/dev/null || echo the first))"
    st_last_logged=$error
  fi
}

note_success() {
  if [ "$st_outage_failures" -gt 0 ] && [ -z "$st_outage_until" ]; then
    st_outage_until=$(now_ms)
    minutes=$(awk -v a="$st_outage_since" -v b="$st_outage_until" 'BEGIN { printf "%.1f", (b - a) / 60000 }')
    log "push recovered after $st_outage_failures failures over $minutes min (last error: $st_outage_error)"
  fi
  st_last_logged=
}

note_file_state() { # NAME PATH NEW_STATE
  eval "previous=\$st_state_$1"
  if [ "$previous" != "$3" ]; then
    if [ "$3" = ok ] || { [ "$1" = circuit ] && [ "$3" = missing ]; }; then
      log "$1 $2: ${previous:-unknown} -> $3"
    else
      warn "$1 $2: ${previous:-unknown} -> $3"
    fi
    eval "st_state_$1=\$3"
  fi
}

# ---- one push ------------------------------------------------------------------------

build_body() {
  st_seq=$((st_seq + 1))
  force_heartbeat=no force_circuit=no
  while :; do
    file_report "$heartbeat_path" heartbeat "$force_heartbeat"
    file_report "$circuit_path" circuit "$force_circuit"
    {
      printf '{"v":1,"seq":%s,"sentAt":%s,' "$st_seq" "$(now_ms)"
      printf '"agent":{"version":"%s","startedAt":%s,"bootId":"%s","kind":"shell","mode":"service"},' "$VERSION" "$st_started_at" "$boot"
      printf '"lastPushOutage":%s,"files":{"heartbeat":' "$(outage_json)"
      cat "$work/heartbeat.json"
      printf ',"circuit":'
      cat "$work/circuit.json"
      printf '}}'
    } > "$work/body"
    [ "$(wc -c < "$work/body" | tr -d ' ')" -le "$MAX_BODY_BYTES" ] && break
    # JSON escaping can grow text sixfold: report the bigger file as too_large.
    if [ "$force_heartbeat" = yes ] || [ "$force_circuit" = yes ]; then
      force_heartbeat=yes force_circuit=yes
    elif [ "$(wc -c < "$work/heartbeat.json")" -ge "$(wc -c < "$work/circuit.json")" ]; then
      force_heartbeat=yes
    else
      force_circuit=yes
    fi
  done
  note_file_state heartbeat "$heartbeat_path" "$state_heartbeat"
  note_file_state circuit "$circuit_path" "$state_circuit"
}

# Sets http_status, result (accepted|retry|rejected) and failure.
push_attempt() {
  timestamp=$(now_ms)
  signature=$(sign "$timestamp" "$work/body")
  : > "$work/response"
  : > "$work/headers"
  http_status=$(curl -sS --max-time "$REQUEST_TIMEOUT_SECONDS" -o "$work/response" -D "$work/headers" \
    -w '%{http_code}' -X POST \
    -H 'content-type: application/json' \
    -H "X-Witness-Timestamp: $timestamp" \
    -H "X-Witness-Signature: $signature" \
    --data-binary "@$work/body" "$ping_url" 2> "$work/curl-error")
  curl_status=$?
  retry_after=
  # For the log only: the failure itself (kept in the state, sent as lastError) stays short.
  hint=
  if [ "$curl_status" -ne 0 ]; then
    result=retry
    failure="network error: $(head -n 1 "$work/curl-error" | sed 's/^curl: ([0-9]*) //')"
    return
  fi
  worker_error=$(sed -n 's/.*"error"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/response" | head -n 1)
  worker_field=$(sed -n 's/.*"field"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/response" | head -n 1)
  case $http_status in
    200)
      if grep -q '"ok"[[:space:]]*:[[:space:]]*true' "$work/response"; then
        result=accepted
      else
        result=rejected
        failure="HTTP 200 but not a witness answer (is WITNESS_URL the Worker's address?)"
      fi ;;
    408 | 429 | 5[0-9][0-9])
      result=retry
      failure="HTTP $http_status${worker_error:+: $worker_error}"
      retry_after=$(tr -d '\r' < "$work/headers" | awk 'tolower($1) == "retry-after:" { print $2 }' | tail -n 1) ;;
    *)
      result=rejected
      failure="HTTP $http_status${worker_error:+: $worker_error}"
      case "$http_status:$worker_field:$worker_error" in
        # A header the Worker calls missing or malformed is a bug here, not the clock.
        401:*[Mm]issing* | 401:*[Mm]alformed*) ;;
        401:[Xx]-[Ww]itness-[Tt]imestamp:* | 401:*[Tt]imestamp* | 401:*[Cc]lock*) hint=$(clock_hint "$timestamp") ;;
        401:*) hint=" (check that WITNESS_SECRET is the one printed by npm run host-secret -- <host>)" ;;
        404:*) hint=" (is WITNESS_HOST declared in the Worker's configuration?)" ;;
      esac ;;
  esac
}

# The Worker refused our time, not our secret: say how far off the clock is (from the
# response's Date header) and how to fix it.
clock_hint() { # TIMESTAMP_MS
  server_date=$(tr -d '\r' < "$work/headers" | sed -n 's/^[Dd][Aa][Tt][Ee]:[[:space:]]*//p' | tail -n 1)
  server_s=
  if [ -n "$server_date" ]; then
    server_s=$(date -u -d "$server_date" +%s 2>/dev/null) ||
      server_s=$(date -u -j -f '%a, %d %b %Y %H:%M:%S GMT' "$server_date" +%s 2>/dev/null) || server_s=
  fi
  case $(uname -s 2>/dev/null) in
    Darwin) ntp="sudo sntp -sS time.apple.com" ;;
    *) ntp="sudo timedatectl set-ntp true" ;;
  esac
  if is_number "$server_s"; then
    offset=$(( $1 / 1000 - server_s ))
    if [ "$offset" -ge 0 ]; then off="$offset s ahead of"; else off="$(( -offset )) s behind"; fi
    printf " (this host's clock is %s the Worker's: enable NTP, e.g. %s)" "$off" "$ntp"
  else
    printf " (this host's clock is outside the Worker's replay window: enable NTP, e.g. %s)" "$ntp"
  fi
}

random_second() { awk 'BEGIN { srand(); print int(rand() * 2) }'; }

check_state_file
load_state
is_number "$st_started_at" || st_started_at=$(now_ms)
boot=$(boot_id)

attempt=1
exit_code=1
while :; do
  build_body
  push_attempt
  if [ "$result" = accepted ]; then
    note_success
    [ "$verbose" -eq 1 ] && log "push #$st_seq accepted"
    if grep -q '"type"[[:space:]]*:[[:space:]]*"pause"' "$work/response"; then
      warn "the Worker sent a remote pause; the shell agent does not apply remote pauses (use the Node agent with --allow-remote-pause)"
    fi
    exit_code=0
    break
  fi
  note_failure "$failure" "$hint"
  [ "$result" = retry ] || break
  [ "$attempt" -lt "$MAX_ATTEMPTS" ] || break
  delay=$((attempt + $(random_second)))
  if is_number "${retry_after:-}" && [ "$retry_after" -gt "$delay" ]; then
    [ "$retry_after" -le "$MAX_RETRY_AFTER_SECONDS" ] || break
    delay=$retry_after
  fi
  save_state
  sleep "$delay"
  attempt=$((attempt + 1))
done
save_state
exit "$exit_code"
