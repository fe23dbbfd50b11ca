#!/usr/bin/env bash
# Installs or updates the notification engine on this server, from a built checkout.
#
# Idempotent: every step compares what is there with what should be there and acts only on
# a difference, so a second run with the same sources changes nothing (and says so). It
# restarts only the services whose unit, program or configuration changed. The
# environment file holding the secrets is created from the template once and never
# overwritten; --env-updates sets single keys in it (the deploy workflow's secrets).
#
# docs/operations.md explains the accounts, groups, modes and units this creates.
set -euo pipefail
# visudo, useradd and the like live in the sbin directories, which an administrator's
# own PATH (a --dry-run as a normal user) may lack.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

readonly PROGRAMS=(notify-bot notify-web notify-gateway notify-runner notify-scripts notify)
readonly SERVICES=(notify-bot notify-web notify-gateway)
# What of a built checkout the installed package needs: the build output (dist/src holds
# the compiled programs and every file they read at run time), the launchers, the
# dependencies, and the guides the units' Documentation= names. Nothing from src/.
readonly APP_PARTS=(package.json package-lock.json bin dist/src node_modules docs)

usage() {
  cat <<'EOF'
Usage: deploy/install.sh [options]

Installs or updates the notification engine from a built checkout (npm ci has run):
service accounts and groups, the package in /opt/notify, the six programs in
/usr/local/bin, the systemd units, the sudoers rule, the data directory, the
environment file (created once, never overwritten), the analysts' docs and examples
in /data/docs, and restarts only what changed. Run it as root. Safe to run again.

Options:
  --root DIR            install under DIR instead of / (tests, image builds); paths
                        inside the installed files stay those of the real system.
                        Implies --no-systemctl.
  --source DIR          the built checkout to install [the directory above this script]
  --dry-run             change nothing; print what would change
  --no-systemctl        do not call systemctl; print what would be run instead
  --no-accounts         do not create or modify accounts and groups (they must exist,
                        or ownership is left as it is, with a warning)
  --env-updates FILE    set the KEY=VALUE lines of FILE ('-': standard input) in the
                        environment file; lines with an empty value are ignored. Values
                        are never printed.
  --bot-user NAME       bot's service account           [notify-bot]
  --web-user NAME       dashboard's service account     [notify-web]
  --gateway-user NAME   gateway's service account       [notify-gateway]
  --data-group NAME     group of the data directory     [data-ops]
  --analyst-group NAME  the analysts' group             [dataread]
  --dispatch-group NAME group of the gateway's socket   [notify-dispatch]
  --app-dir DIR         where the package goes          [/opt/notify]
  --bindir DIR          where the programs go           [/usr/local/bin]
  --sbindir DIR         where notify-add-analyst goes   [/usr/local/sbin]
  --data-dir DIR        shared data directory           [/data/notifications]
  --docs-dir DIR        analysts' docs and examples     [/data/docs]
  --env-file FILE       environment file                [/etc/notify/notify.env]
  --node PATH           the Node.js the programs run on (package.json's
                        engines: 20.19 or newer)     [node on PATH]
  -h, --help            this text
EOF
}

die() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }

ROOT=/
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY_RUN=0
USE_SYSTEMCTL=1
CREATE_ACCOUNTS=1
ENV_UPDATES=
BOT_USER='notify-bot'
WEB_USER='notify-web'
GATEWAY_USER='notify-gateway'
DATA_GROUP='data-ops'
ANALYST_GROUP=dataread
DISPATCH_GROUP='notify-dispatch'
APP_DIR=/opt/notify
BINDIR=/usr/local/bin
SBINDIR=/usr/local/sbin
DATA_DIR=/data/notifications
DOCS_DIR=/data/docs
ENV_FILE=/etc/notify/notify.env
NODE_BIN=
readonly UNIT_DIR=/etc/systemd/system
readonly SUDOERS_FILE=/etc/sudoers.d/notify
readonly LOGROTATE_FILE=/etc/logrotate.d/notify

while (($# > 0)); do
  opt=$1
  val=
  case $opt in
    --*=*)
      val=${opt#*=}
      opt=${opt%%=*}
      ;;
    --root | --source | --env-updates | --*-user | --*-group | --*-dir | --bindir | --sbindir | --env-file | --node)
      (($# >= 2)) || die "$opt needs a value"
      val=$2
      shift
      ;;
  esac
  case $opt in
    --root) ROOT=$val ;;
    --source) SOURCE=$val ;;
    --dry-run) DRY_RUN=1 ;;
    --no-systemctl) USE_SYSTEMCTL=0 ;;
    --no-accounts) CREATE_ACCOUNTS=0 ;;
    --env-updates) ENV_UPDATES=$val ;;
    --bot-user) BOT_USER=$val ;;
    --web-user) WEB_USER=$val ;;
    --gateway-user) GATEWAY_USER=$val ;;
    --data-group) DATA_GROUP=$val ;;
    --analyst-group) ANALYST_GROUP=$val ;;
    --dispatch-group) DISPATCH_GROUP=$val ;;
    --app-dir) APP_DIR=$val ;;
    --bindir) BINDIR=$val ;;
    --sbindir) SBINDIR=$val ;;
    --data-dir) DATA_DIR=$val ;;
    --docs-dir) DOCS_DIR=$val ;;
    --env-file) ENV_FILE=$val ;;
    --node) NODE_BIN=$val ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown option '$opt' (see --help)" ;;
  esac
  shift
done

# ---------------------------------------------------------------------------------------
# Checks before touching anything
# ---------------------------------------------------------------------------------------

for name in "$BOT_USER" "$WEB_USER" "$GATEWAY_USER" "$DATA_GROUP" "$ANALYST_GROUP" "$DISPATCH_GROUP"; do
  [[ $name =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "'$name' is not a valid account or group name"
done
# Paths go into unit files and sed expressions: keep them plain.
for path in "$APP_DIR" "$BINDIR" "$SBINDIR" "$DATA_DIR" "$DOCS_DIR" "$ENV_FILE"; do
  [[ $path =~ ^/[A-Za-z0-9_./-]*$ && $path != */ ]] || die "'$path' must be an absolute path of letters, digits, '_', '.', '-' and '/', without a trailing '/'"
done
[[ -d $ROOT ]] || die "--root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd)
[[ $ROOT == / ]] || USE_SYSTEMCTL=0
SOURCE=$(cd "$SOURCE" 2>/dev/null && pwd) || die "--source: no such directory"
((DRY_RUN)) || ((EUID == 0)) || die "run it as root (sudo $0 ...), or with --dry-run"

for part in bin dist/src node_modules docs package.json; do
  [[ -e $SOURCE/$part ]] || die "$SOURCE/$part is missing: install from a built checkout (npm ci && npm run build)"
done
for prog in "${PROGRAMS[@]}"; do
  [[ -f $SOURCE/bin/$prog.js ]] || die "$SOURCE/bin/$prog.js is missing"
done
for f in deploy/systemd/notify-bot.service.in deploy/sudoers/notify.in deploy/notify.env.example docs/notifications.md; do
  [[ -f $SOURCE/$f ]] || die "$SOURCE/$f is missing"
done

for tool in visudo sha256sum cmp; do
  command -v "$tool" >/dev/null || die "$tool is not installed (sudo and coreutils are needed: apt-get install sudo coreutils diffutils)"
done

# The oldest Node.js the package supports: its package.json's "engines" (">=X.Y").
MIN_NODE=$(sed -n 's/^ *"node": *">= *\([0-9][0-9.]*\)".*/\1/p' "$SOURCE/package.json" | head -n 1)
[[ -n $MIN_NODE ]] || die "$SOURCE/package.json does not state the oldest Node.js it runs on (engines.node \">=X.Y\")"
if [[ -z $NODE_BIN ]]; then
  NODE_BIN=$(command -v node) || die "node is not on PATH: install Node.js $MIN_NODE or newer (docs/operations.md, \"Install\"), or pass --node"
fi
[[ $NODE_BIN == /* && -x $NODE_BIN ]] || die "--node $NODE_BIN is not an executable absolute path"
node_version=$("$NODE_BIN" -p process.versions.node) || die "$NODE_BIN does not run"
# Compares dotted versions numerically, part by part.
if [[ $(printf '%s\n%s\n' "$MIN_NODE" "$node_version" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1) != "$MIN_NODE" ]]; then
  die "$NODE_BIN is Node.js $node_version; this needs $MIN_NODE or newer (Debian 13's nodejs, or the current LTS: docs/operations.md, \"Install\")"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------------------------------
# Change tracking: every change is printed, counted, and may ask for service restarts
# ---------------------------------------------------------------------------------------

CHANGES=0
UNITS_CHANGED=0
ENV_CREATED=0
ENV_UPDATED=0
declare -A RESTART=()

# The path of a system path inside --root.
in_root() { printf '%s%s' "${ROOT%/}" "$1"; }

change() {
  CHANGES=$((CHANGES + 1))
  if ((DRY_RUN)); then printf 'would change: %s\n' "$*"; else printf 'changed: %s\n' "$*"; fi
}

# Runs a command, or only says it would.
run() {
  if ((DRY_RUN)); then return 0; fi
  "$@"
}

restart() {
  local svc
  for svc in "$@"; do RESTART[$svc]=1; done
}

# ---------------------------------------------------------------------------------------
# Accounts and groups (of the running system, also with --root)
# ---------------------------------------------------------------------------------------

# Runs an account command (useradd, groupadd, usermod), trying again while another
# program holds the lock on /etc/passwd or /etc/group.
account_cmd() {
  ((DRY_RUN)) && return 0
  local try err
  for try in 1 2 3 4 5 6 7 8 9 10; do
    if err=$("$@" 2>&1); then return 0; fi
    [[ $err == *lock* ]] || break
    sleep "$try"
  done
  die "$1 failed: $err"
}

uid_of() { getent passwd "$1" | cut -d: -f3 || true; }
gid_of() { getent group "$1" | cut -d: -f3 || true; }

ensure_group() {
  local name=$1 kind=$2
  getent group "$name" >/dev/null && return 0
  change "group $name created"
  if [[ $kind == system ]]; then account_cmd groupadd --system "$name"; else account_cmd groupadd "$name"; fi
}

# ensure_user NAME PRIMARY-GROUP SUPPLEMENTARY-GROUP...
ensure_user() {
  local name=$1 primary=$2 g have
  shift 2
  if ! getent passwd "$name" >/dev/null; then
    change "service account $name created (group $primary, also $*)"
    local supplementary
    supplementary=$(printf '%s,' "$@")
    account_cmd useradd --system --gid "$primary" --groups "${supplementary%,}" --home-dir /nonexistent \
      --no-create-home --shell /usr/sbin/nologin --comment "notification engine ($name)" "$name"
    return 0
  fi
  have=" $(id -nG "$name") "
  for g in "$@"; do
    [[ $have == *" $g "* ]] && continue
    change "$name added to group $g"
    account_cmd usermod --append --groups "$g" "$name"
  done
}

if ((CREATE_ACCOUNTS)); then
  ensure_group "$DATA_GROUP" system
  ensure_group "$DISPATCH_GROUP" system
  ensure_group "$ANALYST_GROUP" people
  ensure_user "$BOT_USER" "$DATA_GROUP" "$ANALYST_GROUP" "$DISPATCH_GROUP"
  ensure_user "$WEB_USER" "$DATA_GROUP" "$ANALYST_GROUP"
  ensure_user "$GATEWAY_USER" "$DISPATCH_GROUP" "$DATA_GROUP"
fi

# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------

declare -A WARNED=()
# Sets OWNER_UID and OWNER_GID to the ids of USER and GROUP; each is empty (after one
# warning per name) when that account or group does not exist.
lookup_owner() {
  OWNER_UID=$(uid_of "$1")
  OWNER_GID=$(gid_of "$2")
  local kind name
  for kind in user group; do
    if [[ $kind == user ]]; then name=$1; else name=$2; fi
    if [[ $kind == user && -n $OWNER_UID ]] || [[ $kind == group && -n $OWNER_GID ]]; then continue; fi
    [[ -n ${WARNED[$kind:$name]:-} ]] && continue
    WARNED[$kind:$name]=1
    # In a dry run the accounts this run would create do not exist yet: no news.
    ((DRY_RUN && CREATE_ACCOUNTS)) || warn "$kind $name does not exist: ownership left as it is"
  done
}

# ensure_attrs PATH MODE USER GROUP: fixes mode and ownership where they differ.
ensure_attrs() {
  local path=$1 mode=$2 p cur
  p=$(in_root "$path")
  [[ -e $p ]] || return 0
  cur=$(stat -c %a "$p")
  if ((8#$cur != 8#$mode)); then
    change "$path: mode $cur -> $mode"
    run chmod "$mode" "$p"
  fi
  lookup_owner "$3" "$4"
  cur=$(stat -c %u:%g "$p")
  if [[ -n $OWNER_UID && ${cur%:*} != "$OWNER_UID" ]]; then
    change "$path: owner -> $3"
    run chown "$OWNER_UID" "$p"
  fi
  if [[ -n $OWNER_GID && ${cur#*:} != "$OWNER_GID" ]]; then
    change "$path: group -> $4"
    run chgrp "$OWNER_GID" "$p"
  fi
}

# Directories a dry run has already said it would create (they still do not exist).
declare -A WOULD_CREATE=()

# ensure_dir PATH MODE USER GROUP
ensure_dir() {
  local p
  p=$(in_root "$1")
  if [[ ! -d $p && -z ${WOULD_CREATE[$1]:-} ]]; then
    change "$1: directory created (mode $2)"
    ((DRY_RUN)) && WOULD_CREATE[$1]=1
    run mkdir -p -m "$2" "$p"
  fi
  ensure_attrs "$@"
}

# Creates a parent directory (0755 root) if it is missing, but leaves an existing one alone.
ensure_parent() {
  [[ -d $(in_root "$1") || -n ${WOULD_CREATE[$1]:-} ]] || ensure_dir "$1" 0755 root root
}

# install_file SRC DEST MODE USER GROUP: replaces DEST atomically when its content differs.
# Returns 0 when it changed the content, 1 when the content was already right.
install_file() {
  local src=$1 dest=$2 mode=$3 user=$4 group=$5 d tmp rc=1
  d=$(in_root "$dest")
  if [[ ! -f $d ]] || ! cmp -s "$src" "$d"; then
    if [[ -e $d ]]; then change "$dest: updated"; else change "$dest: installed"; fi
    if ((!DRY_RUN)); then
      tmp=$(mktemp "$(dirname "$d")/.$(basename "$d").XXXXXX")
      cat "$src" >"$tmp"
      chmod "$mode" "$tmp"
      mv -f "$tmp" "$d"
    fi
    rc=0
  fi
  ensure_attrs "$dest" "$mode" "$user" "$group"
  return "$rc"
}

# render TEMPLATE OUT: fills in the placeholders (@BOT_USER@ and the like).
render() {
  sed -e "s#@BOT_USER@#$BOT_USER#g" -e "s#@WEB_USER@#$WEB_USER#g" \
    -e "s#@GATEWAY_USER@#$GATEWAY_USER#g" -e "s#@DATA_GROUP@#$DATA_GROUP#g" \
    -e "s#@ANALYST_GROUP@#$ANALYST_GROUP#g" -e "s#@DISPATCH_GROUP@#$DISPATCH_GROUP#g" \
    -e "s#@APP_DIR@#$APP_DIR#g" -e "s#@BINDIR@#$BINDIR#g" -e "s#@DATA_DIR@#$DATA_DIR#g" \
    -e "s#@ENV_FILE@#$ENV_FILE#g" "$1" >"$2"
  if grep -q '@[A-Z_]*@' "$2"; then die "$1 has a placeholder install.sh does not know"; fi
}

# ---------------------------------------------------------------------------------------
# The package in APP_DIR: replaced as a whole when anything in it differs from the source
# ---------------------------------------------------------------------------------------

# A fingerprint of a package tree: contents, symlinks and executable bits of APP_PARTS.
tree_manifest() {
  (
    cd "$1" 2>/dev/null || exit 0
    {
      find "${APP_PARTS[@]}" -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
      find "${APP_PARTS[@]}" -type l -printf 'link %p -> %l\n' 2>/dev/null | sort
      find "${APP_PARTS[@]}" -type f -perm /111 -printf 'exec %p\n' 2>/dev/null | sort
    } || true
  )
}

install_app() {
  local app new old part parts=()
  app=$(in_root "$APP_DIR")
  for part in "${APP_PARTS[@]}"; do [[ -e $SOURCE/$part ]] && parts+=("$part"); done
  ensure_parent "$(dirname "$APP_DIR")"
  if [[ ! -d $app ]] || [[ "$(tree_manifest "$SOURCE")" != "$(tree_manifest "$app")" ]]; then
    if [[ -d $app ]]; then change "$APP_DIR: updated from $SOURCE"; else change "$APP_DIR: installed from $SOURCE"; fi
    restart "${SERVICES[@]}"
    if ((!DRY_RUN)); then
      new=$app.new
      old=$app.old
      rm -rf "$new" "$old"
      mkdir "$new"
      (cd "$SOURCE" && cp -a --parents "${parts[@]}" "$new/")
      chown -R 0:0 "$new"
      chmod -R u+rwX,go+rX,go-w "$new"
      chmod 0755 "$new"
      if [[ -d $app ]]; then mv "$app" "$old"; fi
      mv "$new" "$app"
      rm -rf "$old"
    fi
    return 0
  fi
  # Same content: only repair ownership or modes someone loosened.
  if [[ -n $(find "$app" \( ! -uid 0 -o ! -gid 0 -o \( ! -type l -perm /022 \) \) -print -quit) ]]; then
    change "$APP_DIR: ownership and modes repaired (root, not group/world-writable)"
    run chown -R 0:0 "$app"
    run chmod -R go-w "$app"
  fi
}
install_app

# ---------------------------------------------------------------------------------------
# Programs: small wrappers in BINDIR that run the package with the Node.js chosen here
# (cron and sudo start them with a minimal PATH)
# ---------------------------------------------------------------------------------------

ensure_parent "$BINDIR"
for prog in "${PROGRAMS[@]}"; do
  # Node flags the launcher asks for on its "#!/usr/bin/env -S node <flags>" line (the
  # bot's heap settings), so the installed program runs as `npx <program>` does.
  flags=$(sed -n '1s/^#![^ ]*env -S node\(\( -[^ ]*\)*\) *$/\1/p' "$SOURCE/bin/$prog.js")
  cat >"$WORK/$prog" <<EOF
#!/bin/sh
# Installed by deploy/install.sh: runs $prog from $APP_DIR.
exec $NODE_BIN$flags $APP_DIR/bin/$prog.js "\$@"
EOF
  if install_file "$WORK/$prog" "$BINDIR/$prog" 0755 root root; then
    case $prog in notify-bot | notify-web | notify-gateway) restart "$prog" ;; esac
  fi
done

# The add-analyst step, with this install's analysts' group as its default.
ensure_parent "$SBINDIR"
sed -e "s#^DEFAULT_GROUP=.*#DEFAULT_GROUP=$ANALYST_GROUP#" -e "s#^DEFAULT_RUNNER=.*#DEFAULT_RUNNER=$BINDIR/notify-runner#" \
  "$SOURCE/deploy/add-analyst.sh" >"$WORK/notify-add-analyst"
install_file "$WORK/notify-add-analyst" "$SBINDIR/notify-add-analyst" 0755 root root || true

# ---------------------------------------------------------------------------------------
# systemd units
# ---------------------------------------------------------------------------------------

ensure_parent /etc
ensure_parent /etc/systemd
ensure_parent "$UNIT_DIR"
for svc in "${SERVICES[@]}"; do
  render "$SOURCE/deploy/systemd/$svc.service.in" "$WORK/$svc.service"
  if install_file "$WORK/$svc.service" "$UNIT_DIR/$svc.service" 0644 root root; then
    UNITS_CHANGED=1
    restart "$svc"
  fi
done

# ---------------------------------------------------------------------------------------
# sudoers: checked with visudo before it goes where sudo reads it
# ---------------------------------------------------------------------------------------

render "$SOURCE/deploy/sudoers/notify.in" "$WORK/sudoers"
chmod 0440 "$WORK/sudoers"
visudo -cqf "$WORK/sudoers" >/dev/null || die "the rendered sudoers rule does not pass visudo -c: $(visudo -cf "$WORK/sudoers" 2>&1)"
ensure_parent "$(dirname "$SUDOERS_FILE")"
sudoers_backup=
if [[ $ROOT == / && -f $SUDOERS_FILE ]]; then
  sudoers_backup=$WORK/sudoers.previous
  cp -p "$SUDOERS_FILE" "$sudoers_backup"
fi
if install_file "$WORK/sudoers" "$SUDOERS_FILE" 0440 root root && [[ $ROOT == / ]] && ((!DRY_RUN)); then
  # The whole configuration must still parse, or sudo stops working for everyone.
  if ! visudo -cq >/dev/null 2>&1; then
    if [[ -n $sudoers_backup ]]; then cp -p "$sudoers_backup" "$SUDOERS_FILE"; else rm -f "$SUDOERS_FILE"; fi
    die "sudo's configuration fails visudo -c with $SUDOERS_FILE: put back as it was"
  fi
fi

# ---------------------------------------------------------------------------------------
# logrotate for bot.log
# ---------------------------------------------------------------------------------------

ensure_parent "$(dirname "$LOGROTATE_FILE")"
render "$SOURCE/deploy/logrotate/notify.in" "$WORK/logrotate"
install_file "$WORK/logrotate" "$LOGROTATE_FILE" 0644 root root || true

# ---------------------------------------------------------------------------------------
# Data directory: the services' group only (contract: 0770, files 0660)
# ---------------------------------------------------------------------------------------

ensure_parent "$(dirname "$DATA_DIR")"
ensure_dir "$DATA_DIR" 0770 "$BOT_USER" "$DATA_GROUP"
data=$(in_root "$DATA_DIR")
if [[ -d $data ]]; then
  while IFS= read -r -d '' f; do
    rel=${f#"$data"/}
    [[ $(stat -c %a "$f") == 660 ]] || {
      change "$DATA_DIR/$rel: mode $(stat -c %a "$f") -> 660"
      run chmod 0660 "$f"
    }
    lookup_owner root "$DATA_GROUP"
    if [[ -n $OWNER_GID && $(stat -c %g "$f") != "$OWNER_GID" ]]; then
      change "$DATA_DIR/$rel: group -> $DATA_GROUP"
      run chgrp "$OWNER_GID" "$f"
    fi
  done < <(find "$data" -mindepth 1 -maxdepth 1 -type f -print0)
fi

# ---------------------------------------------------------------------------------------
# Analysts' docs and examples (readable by everyone)
# ---------------------------------------------------------------------------------------

ensure_parent "$(dirname "$DOCS_DIR")"
ensure_dir "$DOCS_DIR" 0755 root root
install_file "$SOURCE/docs/notifications.md" "$DOCS_DIR/notifications.md" 0644 root root || true
ensure_dir "$DOCS_DIR/examples" 0755 root root
ensure_dir "$DOCS_DIR/examples/notifications" 0755 root root
declare -A WANTED_EXAMPLES=()
for f in "$SOURCE"/examples/notifications/*; do
  [[ -f $f ]] || continue
  name=$(basename "$f")
  WANTED_EXAMPLES[$name]=1
  install_file "$f" "$DOCS_DIR/examples/notifications/$name" 0644 root root || true
done
examples=$(in_root "$DOCS_DIR/examples/notifications")
if [[ -d $examples ]]; then
  for f in "$examples"/*; do
    [[ -f $f ]] || continue
    name=$(basename "$f")
    [[ -n ${WANTED_EXAMPLES[$name]:-} ]] && continue
    change "$DOCS_DIR/examples/notifications/$name: removed (no longer in the sources)"
    run rm -f "$f"
  done
fi

# ---------------------------------------------------------------------------------------
# Environment file: created once from the template, never overwritten; single keys set
# from --env-updates. Values are never printed.
# ---------------------------------------------------------------------------------------

ensure_parent "$(dirname "$(dirname "$ENV_FILE")")"
ensure_dir "$(dirname "$ENV_FILE")" 0750 root "$DATA_GROUP"
envf=$(in_root "$ENV_FILE")
if [[ ! -e $envf ]]; then
  install_file "$SOURCE/deploy/notify.env.example" "$ENV_FILE" 0640 root "$DATA_GROUP" || true
  ENV_CREATED=1
else
  # Never loosen, never rewrite: only take away write from others and any access from
  # the world, if someone gave it.
  mode=$(stat -c %a "$envf")
  if (((8#$mode & 8#027) != 0)); then
    change "$ENV_FILE: mode $mode -> 640 (it holds secrets)"
    run chmod 0640 "$envf"
  fi
fi

if [[ -n $ENV_UPDATES ]]; then
  declare -A UPDATE=()
  update_keys=()
  if [[ $ENV_UPDATES == - ]]; then exec 3<&0; else exec 3<"$ENV_UPDATES"; fi
  while IFS= read -r line <&3 || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $line =~ ^([A-Z_][A-Z0-9_]*)=(.*)$ ]] || die "--env-updates: a line is not KEY=VALUE (key in capitals)"
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    [[ -z $value ]] && continue
    case $value in
      *[\'\"\\]*) die "--env-updates: the value of $key contains a quote or a backslash" ;;
    esac
    [[ -z ${UPDATE[$key]+set} ]] && update_keys+=("$key")
    UPDATE[$key]=$value
  done
  exec 3<&-
  if ((${#update_keys[@]} > 0)); then
    current=$WORK/env.current
    if [[ -f $envf ]]; then cat "$envf" >"$current"; else cat "$SOURCE/deploy/notify.env.example" >"$current"; fi
    (
      umask 077
      declare -A done_keys=()
      while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line =~ ^([A-Z_][A-Z0-9_]*)= && -n ${UPDATE[${BASH_REMATCH[1]}]+set} ]]; then
          key=${BASH_REMATCH[1]}
          if [[ -z ${done_keys[$key]:-} ]]; then
            printf '%s=%s\n' "$key" "${UPDATE[$key]}"
            done_keys[$key]=1
          fi
          continue
        fi
        printf '%s\n' "$line"
      done <"$current"
      for key in "${update_keys[@]}"; do
        [[ -n ${done_keys[$key]:-} ]] || printf '%s=%s\n' "$key" "${UPDATE[$key]}"
      done
    ) >"$WORK/env.new"
    if ! cmp -s "$WORK/env.new" "$current" || [[ ! -f $envf ]]; then
      change "$ENV_FILE: set ${update_keys[*]}"
      ENV_UPDATED=1
      restart "${SERVICES[@]}"
      if ((!DRY_RUN)); then
        tmp=$(mktemp "$(dirname "$envf")/.notify.env.XXXXXX")
        chmod 0640 "$tmp"
        cat "$WORK/env.new" >"$tmp"
        chown "0:$(gid_of "$DATA_GROUP")" "$tmp" 2>/dev/null || true
        mv -f "$tmp" "$envf"
      fi
    fi
  fi
fi

# ---------------------------------------------------------------------------------------
# systemd: reload and restart only what changed
# ---------------------------------------------------------------------------------------

systemctl_do() {
  if ((USE_SYSTEMCTL && !DRY_RUN)); then
    systemctl "$@"
  else
    printf 'would run: systemctl %s\n' "$*"
  fi
}

if ((UNITS_CHANGED)); then
  systemctl_do daemon-reload
  systemctl_do enable --quiet "${SERVICES[@]}"
fi
to_restart=()
for svc in "${SERVICES[@]}"; do
  [[ -n ${RESTART[$svc]:-} ]] && to_restart+=("$svc")
done
if ((${#to_restart[@]} > 0)); then
  if ((ENV_CREATED && !ENV_UPDATED)); then
    printf 'next: fill in %s (docs/operations.md, "Configuration"), then: systemctl restart %s\n' \
      "$ENV_FILE" "${SERVICES[*]}"
  else
    systemctl_do restart "${to_restart[@]}"
  fi
fi

if ((CHANGES == 0)); then
  echo "nothing changed"
elif ((DRY_RUN)); then
  echo "$CHANGES change(s) would be made"
else
  echo "$CHANGES change(s) made"
fi
