#!/bin/sh
# install.sh: installs the witness agent on this host in one command, and can be run
# again at any time: it changes only what differs, and never touches an existing
# /etc/witness/agent.env (it holds the host secret).
#
#   sudo agent/install.sh --url https://witness.<you>.workers.dev --host trader-1 \
#     --heartbeat /home/trader/pipeline/data/heartbeat.json \
#     --circuit /home/trader/pipeline/data/circuit.json --pipeline-user trader
#
# Linux (systemd): the Node agent as witness-agent.service (or, with --shell, the shell
# agent from witness-agent-shell.timer), run as the system user `witness`. macOS
# (--launchd, the default there): a launchd daemon run as the pipeline's user.
# --root DIR installs under DIR instead of / and runs no useradd, chgrp, systemctl or
# launchctl: it writes those commands to DIR/install-actions.log (tests, packaging).
set -eu
umask 022

PREFIX=/opt/witness
ETC=/etc/witness
ENV_FILE=$ETC/agent.env
UNIT_DIR=/etc/systemd/system
PLIST_DIR=/Library/LaunchDaemons
PLIST_LABEL=com.witness.agent
AGENT_USER=witness
AGENT_GROUP=witness
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  cat <<'EOF'
Usage: sudo agent/install.sh [options]

  --url URL             the Worker's address (written to a new agent.env)
  --host ID             this host's id in the Worker's config (new agent.env)
  --heartbeat PATH      absolute path of heartbeat.json (new agent.env)
  --circuit PATH        absolute path of circuit.json (new agent.env); its directory
                        is the only one the agent may write to
  --secret-stdin        read the host secret from stdin into a new agent.env
  --allow-remote-pause  let the Worker pause the circuit (new agent.env)
  --pipeline-user USER  the user whose pipeline writes the files; joins the group
                        `witness`, which then owns the data directory (default: the
                        directory's owner)
  --shell               install the shell agent and its timer instead of the Node agent
  --launchd             install for macOS launchd (the default on macOS)
  --bundle FILE         the Node agent (default: dist/witness-agent.mjs of this repo,
                        or witness-agent.mjs beside this script)
  --node PATH           the Node.js binary, 18 or newer (default: `command -v node`)
  --root DIR            install under DIR; side effects go to DIR/install-actions.log
  --help
Settings given for an existing agent.env are ignored (it is never overwritten): edit it
with sudoedit /etc/witness/agent.env, then run this again.
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
# A mistake of the caller: one line saying what is wrong and how to fix it.
fail() { printf 'install.sh: %s\n' "$*" >&2; exit 2; }

url= host= heartbeat= circuit= secret_stdin=0 allow_pause=0 pipeline_user= kind=node
platform=systemd bundle= node= root=
[ "$(uname -s)" = Darwin ] && platform=launchd
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || fail "$1 needs a value; run agent/install.sh --help"; }
while [ $# -gt 0 ]; do
  case $1 in
    --url) need_value "$@"; url=$2; shift ;;
    --host) need_value "$@"; host=$2; shift ;;
    --heartbeat) need_value "$@"; heartbeat=$2; shift ;;
    --circuit) need_value "$@"; circuit=$2; shift ;;
    --secret-stdin) secret_stdin=1 ;;
    --allow-remote-pause) allow_pause=1 ;;
    --pipeline-user) need_value "$@"; pipeline_user=$2; shift ;;
    --shell) kind=shell ;;
    --launchd) platform=launchd ;;
    --bundle) need_value "$@"; bundle=$2; shift ;;
    --node) need_value "$@"; node=$2; shift ;;
    --root) need_value "$@"; root=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) fail "unknown option $1; run agent/install.sh --help for the options" ;;
  esac
  shift
done

if [ -n "$root" ]; then
  [ -d "$root" ] || fail "--root $root is not a directory; create it first"
  root=$(cd "$root" && pwd)
  actions_log=$root/install-actions.log
elif [ "$(id -u)" -ne 0 ]; then
  fail "run it as root (sudo agent/install.sh …): it creates a system user and installs a service"
fi
[ "$platform" = launchd ] && [ "$kind" = shell ] && fail "--shell is for systemd hosts; on macOS install the Node agent (drop --shell)"

# A command with effects outside the installed files: run it, or in --root mode log it.
effect() {
  if [ -n "$root" ]; then
    printf '%s\n' "$*" >> "$actions_log"
  else
    "$@"
  fi
}

# put SOURCE DEST MODE: installs a file only if its bytes or mode differ, so a second
# run leaves every file (and its mtime) as it was.
changed=0
put() {
  dest=$root$2
  mkdir -p "$(dirname "$dest")"
  if [ -f "$dest" ] && cmp -s "$1" "$dest" && [ "$(file_mode "$dest")" = "$3" ]; then
    return 0
  fi
  cp "$1" "$dest.install-tmp"
  chmod "$3" "$dest.install-tmp"
  mv -f "$dest.install-tmp" "$dest"
  say "installed $2"
  changed=1
}

file_mode() { # octal permission bits, e.g. 644 (GNU stat, then BSD stat)
  stat -c %a "$1" 2>/dev/null || stat -f %Lp "$1"
}

# ---- what to install -------------------------------------------------------------------

if [ "$kind" = node ]; then
  if [ -z "$bundle" ]; then
    for candidate in "$here/../dist/witness-agent.mjs" "$here/witness-agent.mjs"; do
      [ -f "$candidate" ] && { bundle=$candidate; break; }
    done
  fi
  [ -n "$bundle" ] && [ -f "$bundle" ] || fail "no agent bundle found; run npm run build:agent first (or pass --bundle dist/witness-agent.mjs)"
  [ -n "$node" ] || node=$(command -v node 2>/dev/null) || node=
  [ -n "$node" ] || fail "Node.js is not installed; install Node 18 or newer (Debian/Ubuntu: apt-get install nodejs), or use --shell"
  node_major=$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null) || node_major=0
  case $node_major in '' | *[!0-9]*) node_major=0 ;; esac
  [ "$node_major" -ge 18 ] || fail "$node is Node $node_major; the agent needs Node 18 or newer (or use --shell)"
  case $node in /*) ;; *) fail "--node must be an absolute path (got $node)" ;; esac
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/witness-install.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# ---- the env file: created once, never overwritten -------------------------------------

# env_value NAME FILE: the value of NAME=… in an env file (quotes removed).
env_value() {
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$2" | tail -n 1 | sed 's/^"\(.*\)"$/\1/; s/^'"'"'\(.*\)'"'"'$/\1/'
}

if [ -f "$root$ENV_FILE" ]; then
  for given in "$url" "$host" "$heartbeat" "$circuit"; do
    [ -z "$given" ] || { say "$ENV_FILE exists and is left as it is; the settings given on the command line are ignored (edit it with sudoedit $ENV_FILE)"; break; }
  done
else
  secret=
  if [ "$secret_stdin" -eq 1 ]; then
    IFS= read -r secret || [ -n "$secret" ] || fail "--secret-stdin read nothing; pipe the secret in, e.g. npm run host-secret -- trader-1 | sudo agent/install.sh --secret-stdin …"
  fi
  # sed replacement text: escape \, & and the | delimiter.
  esc() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }
  set_line() { [ -z "$2" ] || sed -i.bak "s|^#*$1=.*|$1=$(esc "$2")|" "$scratch/agent.env"; }
  cp "$here/systemd/agent.env.example" "$scratch/agent.env"
  set_line WITNESS_URL "$url"
  set_line WITNESS_HOST "$host"
  set_line WITNESS_SECRET "$secret"
  set_line WITNESS_HEARTBEAT "$heartbeat"
  set_line WITNESS_CIRCUIT "$circuit"
  [ "$allow_pause" -eq 1 ] && set_line WITNESS_ALLOW_REMOTE_PAUSE 1
  rm -f "$scratch/agent.env.bak"
  mkdir -p "$root$ETC"
  chmod 755 "$root$ETC"
  # 0600 from the first byte: the secret is never readable by anyone else.
  (umask 077 && cp "$scratch/agent.env" "$root$ENV_FILE")
  chmod 600 "$root$ENV_FILE"
  say "created $ENV_FILE (mode 0600)"
  changed=1
fi
env_file=$root$ENV_FILE
[ "$(file_mode "$env_file")" = 600 ] || { chmod 600 "$env_file"; say "$ENV_FILE was readable by others; now chmod 600"; }

circuit=$(env_value WITNESS_CIRCUIT "$env_file")
heartbeat=$(env_value WITNESS_HEARTBEAT "$env_file")
case $circuit in /*) ;; *) fail "WITNESS_CIRCUIT in $ENV_FILE must be an absolute path (got \"$circuit\"); pass --circuit /path/to/circuit.json or edit the file" ;; esac
case $heartbeat in /*) ;; *) fail "WITNESS_HEARTBEAT in $ENV_FILE must be an absolute path (got \"$heartbeat\"); pass --heartbeat /path/to/heartbeat.json or edit the file" ;; esac
data_dir=$(dirname "$circuit")
heartbeat_dir=$(dirname "$heartbeat")

# ---- the user, and a data directory the pipeline and the agent share -------------------

# The agent replaces circuit.json (remote pause) by a new file, which it can give the
# old file's group but not its owner. A directory owned by the group `witness`,
# setgid, with the pipeline's user in that group, keeps every circuit.json readable
# and writable by the pipeline, whoever wrote it last.
if [ -z "$pipeline_user" ] && [ -d "$root$data_dir" ]; then
  owner=$(stat -c %U "$root$data_dir" 2>/dev/null || stat -f %Su "$root$data_dir")
  [ "$owner" = root ] || pipeline_user=$owner
fi

if [ -n "$pipeline_user" ] && ! id "$pipeline_user" >/dev/null 2>&1; then
  fail "there is no user $pipeline_user; pass --pipeline-user with the user that runs your pipeline"
fi

if [ "$platform" = systemd ]; then
  getent group "$AGENT_GROUP" >/dev/null 2>&1 || effect groupadd --system "$AGENT_GROUP"
  if ! id "$AGENT_USER" >/dev/null 2>&1; then
    effect useradd --system --gid "$AGENT_GROUP" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$AGENT_USER"
  fi
  if [ -n "$pipeline_user" ] && ! id -nG "$pipeline_user" 2>/dev/null | tr ' ' '\n' | grep -qx "$AGENT_GROUP"; then
    effect usermod -a -G "$AGENT_GROUP" "$pipeline_user"
  fi
  if [ -d "$root$data_dir" ]; then
    group=$(stat -c %G "$root$data_dir")
    [ "$group" = "$AGENT_GROUP" ] || effect chgrp "$AGENT_GROUP" "$root$data_dir"
    # rwx for the group, setgid so new files get the group; "other" is left as it was.
    mode=$(file_mode "$root$data_dir")
    chmod g+rwxs "$root$data_dir"
    [ "$(file_mode "$root$data_dir")" = "$mode" ] || say "$data_dir is now group-writable and setgid (mode $(file_mode "$root$data_dir"))"
    # The agent reads the heartbeat; the circuit, once it paused it, the pipeline must
    # be able to rewrite in place too.
    for file in "$circuit:g+rw" "$heartbeat:g+r"; do
      path=${file%:*}
      [ -f "$root$path" ] || continue
      [ "$(stat -c %G "$root$path")" = "$AGENT_GROUP" ] || effect chgrp "$AGENT_GROUP" "$root$path"
      chmod "${file##*:}" "$root$path"
    done
  else
    say "warning: $data_dir does not exist yet; create it, then run this again so the pipeline and the agent share it"
  fi
fi

# The agent's user must reach both files through every directory above them.
if [ -z "$root" ] && [ "$platform" = systemd ] && command -v runuser >/dev/null 2>&1 && id "$AGENT_USER" >/dev/null 2>&1; then
  for path in "$heartbeat" "$data_dir"; do
    [ -e "$path" ] || continue
    runuser -u "$AGENT_USER" -- test -r "$path" ||
      say "warning: the user $AGENT_USER cannot read $path; let it through the directories above (e.g. chmod o+x or chgrp $AGENT_GROUP on each), then run this again"
  done
fi

# ---- the agent and its service ----------------------------------------------------------

if [ "$kind" = node ]; then
  put "$bundle" "$PREFIX/witness-agent.mjs" 755
else
  put "$here/witness-agent.sh" "$PREFIX/witness-agent.sh" 755
fi

if [ "$platform" = systemd ]; then
  if [ "$kind" = node ]; then
    unit=witness-agent.service
    enable=witness-agent.service
  else
    unit=witness-agent-shell.service
    enable=witness-agent-shell.timer
  fi
  esc() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }
  sed -e "s|^ExecStart=/usr/bin/node |ExecStart=$(esc "${node:-/usr/bin/node}") |" \
    -e "s|^ReadWritePaths=.*|ReadWritePaths=-$(esc "$data_dir")|" \
    "$here/systemd/$unit" > "$scratch/$unit"
  # The shell agent writes only its state file; it gets no ReadWritePaths line.
  units_before=$changed
  changed=0
  put "$scratch/$unit" "$UNIT_DIR/$unit" 644
  [ "$kind" = shell ] && put "$here/systemd/witness-agent-shell.timer" "$UNIT_DIR/witness-agent-shell.timer" 644
  units_changed=$changed
  [ "$units_before" -eq 1 ] && changed=1
  [ "$units_changed" -eq 0 ] || effect systemctl daemon-reload
  if grep -q '^WITNESS_SECRET=paste-' "$env_file"; then
    effect systemctl enable "$enable"
    say "next: put the host secret in $ENV_FILE (sudoedit $ENV_FILE), then: systemctl start $enable"
  else
    effect systemctl enable "$enable"
    # A restart picks up a new bundle or unit; an unchanged one is left running.
    if [ "$changed" -eq 1 ]; then effect systemctl restart "$enable"; else effect systemctl start "$enable"; fi
    say "running: journalctl -u ${unit%.service} -f shows its log"
  fi
else
  user=${pipeline_user:-${SUDO_USER:-$(id -un)}}
  esc() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }
  sed -e "s|<string>/opt/homebrew/bin/node</string>|<string>$(esc "$node")</string>|" \
    -e "s|<string>trader</string>|<string>$(esc "$user")</string>|" \
    "$here/launchd/$PLIST_LABEL.plist" > "$scratch/$PLIST_LABEL.plist"
  changed=0
  put "$scratch/$PLIST_LABEL.plist" "$PLIST_DIR/$PLIST_LABEL.plist" 644
  # launchd has no EnvironmentFile: the daemon sources agent.env, so its user owns it.
  effect chown "$user" "$env_file"
  if [ "$changed" -eq 1 ]; then
    effect launchctl bootout "system/$PLIST_LABEL" 2>/dev/null || true
    effect launchctl bootstrap system "$PLIST_DIR/$PLIST_LABEL.plist"
  fi
  say "running as $user: tail -f /var/log/witness-agent.log shows its log"
fi
