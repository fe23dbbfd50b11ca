#!/usr/bin/env bash
# npm run test:host: the engine installed, run, upgraded and rebooted on a real Debian 13
# host with systemd, exactly as docs/operations.md tells an operator.
#
# It builds a Debian 13 (trixie) root filesystem with debootstrap, with every package the
# host needs (so the host needs no network), and keeps it under /var/cache, keyed by the
# package list: the first run downloads, later runs take seconds. It boots a throwaway
# copy of it (an overlay, so the cache stays clean) with systemd-nspawn, in a network
# namespace of its own, copies this built checkout in, and then checks, one named and
# timed step after another: the install, the units, the socket, the dashboard's sign-in
# and Telegram link, an alert from an analyst's crontab, the Run button through sudo, a
# restart that keeps queued notifications, the documented journalctl commands, the
# documented backup, an upgrade, an install that changes nothing, and a reboot.
#
# The services are pointed at the project's fake Telegram and a local sign-in provider,
# both started inside the host (test/host/inside.ts). Everything this script starts,
# mounts or creates is removed at the end, also after a failure or a timeout; only the
# cached root filesystem stays.
#
# Needs: root, debootstrap, systemd-nspawn (systemd-container), nsenter and unshare
# (util-linux), overlayfs, cgroup v2 (mounted, hybrid is fine), the Debian mirror for the
# first run, and a built checkout (npm ci). Environment:
#   NOTIFY_HOST_CACHE       where the root filesystem is kept [/var/cache/notify-host-test]
#   NOTIFY_HOST_MIRROR      Debian mirror                     [http://deb.debian.org/debian]
#   NOTIFY_HOST_TIME_LIMIT  seconds before everything is stopped [1800]
set -euo pipefail

readonly SUITE=trixie
readonly MIRROR=${NOTIFY_HOST_MIRROR:-http://deb.debian.org/debian}
readonly CACHE_DIR=${NOTIFY_HOST_CACHE:-/var/cache/notify-host-test}
readonly TIME_LIMIT=${NOTIFY_HOST_TIME_LIMIT:-1800}
# The host's packages: what docs/operations.md requires, and curl and procps for the
# docs' own commands. No npm: the package is built on a build machine (npm ci there) and
# the server only runs it.
readonly PACKAGES=(systemd systemd-sysv dbus nodejs sudo cron python3 nginx logrotate curl procps)
PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly PROJECT

say() { printf 'test:host: %s\n' "$*"; }
die() {
  printf 'test:host: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------
# What the machine must have: checked first, each missing piece named with its remedy.
# ---------------------------------------------------------------------------------------
preflight() {
  local missing=()
  ((EUID == 0)) || missing+=("root (run it with sudo: it boots a container)")
  local tool pkg
  for tool in debootstrap:debootstrap systemd-nspawn:systemd-container nsenter:util-linux unshare:util-linux timeout:coreutils flock:util-linux openssl:openssl; do
    pkg=${tool#*:}
    tool=${tool%%:*}
    command -v "$tool" >/dev/null || missing+=("$tool (apt-get install $pkg)")
  done
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || missing+=("overlayfs in the kernel (modprobe overlay)")
  grep -qw cgroup2 /proc/mounts || missing+=("a mounted cgroup v2 hierarchy (systemd inside the container needs it)")
  [[ -f $PROJECT/dist/src/web/static/dashboard.js && -f $PROJECT/dist/test/host/inside.js && -d $PROJECT/node_modules/oidc-provider ]] ||
    missing+=("a built checkout with its development dependencies (npm ci)")
  if ((${#missing[@]} > 0)); then
    printf 'test:host: this machine lacks what the host test needs:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 2
  fi
}

if [[ -z ${NOTIFY_HOST_INNER:-} ]]; then
  preflight
  # A private mount namespace: the overlay disappears with this script whatever happens;
  # a hard time limit: a hung step cannot hold CI (cleanup runs on the TERM).
  exec timeout -k 60 "$TIME_LIMIT" env NOTIFY_HOST_INNER=1 unshare --mount --propagation private bash "${BASH_SOURCE[0]}" "$@"
fi

STARTED=$(date +%s%N)
elapsed() { printf '%d.%01d' $((($(date +%s%N) - $1) / 1000000000)) $(((($(date +%s%N) - $1) / 100000000) % 10)); }

# ---------------------------------------------------------------------------------------
# The cached root filesystem
# ---------------------------------------------------------------------------------------
KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "${PACKAGES[@]}" | sha256sum | cut -c1-16)
BASE=$CACHE_DIR/$SUITE-$KEY

build_base() {
  mkdir -p "$CACHE_DIR"
  exec 8>"$CACHE_DIR/.lock"
  flock 8 # one builder at a time; a second run waits and then uses the result
  if [[ -f $BASE/.complete ]]; then return 0; fi
  local tmp=$BASE.partial include
  rm -rf "$tmp"
  include=$(IFS=,; echo "${PACKAGES[*]}")
  say "building the Debian $SUITE root filesystem in $BASE (once; later runs reuse it)"
  # Downloaded packages are kept in debs/, so a failed attempt does not download again.
  mkdir -p "$CACHE_DIR/debs"
  if ! debootstrap --variant=minbase --cache-dir="$CACHE_DIR/debs" --include="$include" "$SUITE" "$tmp" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE_DIR/debootstrap.log"
    [[ -f $tmp/debootstrap/debootstrap.log ]] && cp "$tmp/debootstrap/debootstrap.log" "$CACHE_DIR/debootstrap-detail.log"
    rm -rf "$tmp"
    echo "debootstrap of $SUITE from $MIRROR failed (logs: $CACHE_DIR/debootstrap.log, debootstrap-detail.log); is the mirror reachable?"
    return 1
  fi
  echo notify-host >"$tmp/etc/hostname"
  # An empty machine id: systemd gives each boot of a copy one of its own.
  : >"$tmp/etc/machine-id"
  # Nothing to download inside (no network): the package timers would only fail.
  rm -f "$tmp"/etc/systemd/system/timers.target.wants/apt-daily*.timer
  rm -rf "$tmp/var/cache/apt/archives/"*.deb
  touch "$tmp/.complete"
  mv "$tmp" "$BASE"
}

# ---------------------------------------------------------------------------------------
# The booted copy: overlay, systemd-nspawn, and the way in
# ---------------------------------------------------------------------------------------
WORK=
NSPAWN=
LEADER=

cleanup() {
  local rc=$?
  trap - EXIT TERM INT
  stop_container
  if [[ -n $WORK ]]; then
    umount "$WORK/root" 2>/dev/null || umount -l "$WORK/root" 2>/dev/null || true
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "stopped (time limit or signal)"; exit 124' TERM INT

# Stops the container: an orderly shutdown, then force if it takes too long.
stop_container() {
  [[ -n $NSPAWN ]] || return 0
  if kill -0 "$NSPAWN" 2>/dev/null; then
    kill -TERM "$NSPAWN" 2>/dev/null || true
    local i
    for ((i = 0; i < 60; i++)); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 1; done
    # Killing the container's PID 1 ends every process in its PID namespace.
    if kill -0 "$NSPAWN" 2>/dev/null; then
      [[ -n $LEADER ]] && kill -KILL "$LEADER" 2>/dev/null
      kill -KILL "$NSPAWN" 2>/dev/null || true
    fi
  fi
  wait "$NSPAWN" 2>/dev/null || true
  NSPAWN=
  LEADER=
}

# Runs a command inside the host, as root, with a clean environment.
in_host() {
  nsenter -t "$LEADER" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
}

# Sets LEADER to the container's PID 1: a descendant of systemd-nspawn that is process 1 of
# a PID namespace of its own (the last NSpid field is 1). nspawn's short-lived helper
# processes never match: a helper is not PID 1 anywhere, and an exited one (a zombie)
# shows no NSpid line at all.
find_leader() {
  local p pids=("$NSPAWN") next=() children=() seen
  LEADER=
  while ((${#pids[@]})); do
    next=()
    for p in "${pids[@]}"; do
      # "<state> <levels> <pid in the innermost namespace>", e.g. "S 2 1" for the init.
      seen=$(awk '/^State:/ { s = $2 } /^NSpid:/ { n = NF - 1; l = $NF } END { print s, n, l }' "/proc/$p/status" 2>/dev/null) || true
      if [[ $p != "$NSPAWN" && $seen =~ ^[^Z]\ [2-9][0-9]*\ 1$ ]]; then LEADER=$p; return 0; fi
      mapfile -t children < <(pgrep -P "$p" || true)
      next+=("${children[@]}")
    done
    pids=("${next[@]}")
  done
  return 1
}

# Boots the overlay and waits until systemd has finished starting everything.
boot() {
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -D "$WORK/root" -b --register=no --keep-unit --console=pipe \
    --private-network --machine=notify-host --bind-ro="$WORK/v1:/srv/notify/v1" --bind-ro="$WORK/v2:/srv/notify/v2" \
    </dev/null >>"$WORK/console.log" 2>&1 &
  NSPAWN=$!
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$NSPAWN" 2>/dev/null || { tail -n 30 "$WORK/console.log"; return 1; }
    find_leader && break
    sleep 0.2
  done
  [[ -n $LEADER ]] || { echo "systemd-nspawn started no container in 60 s"; tail -n 30 "$WORK/console.log"; return 1; }
  # "offline" until the container's systemd answers; then --wait waits for the boot's end.
  local state='' deadline=$((SECONDS + 240))
  while ((SECONDS < deadline)); do
    kill -0 "$NSPAWN" 2>/dev/null || break
    # The init found early may have been a helper that since exited: look again.
    [[ -d /proc/$LEADER ]] || find_leader || { sleep 0.5; continue; }
    state=$(timeout 60 nsenter -t "$LEADER" -a -- systemctl is-system-running --wait 2>&1) || true
    case $state in
      running | degraded)
        echo "booted: systemd says $state"
        [[ $state == degraded ]] && nsenter -t "$LEADER" -a -- systemctl --failed --no-legend --plain
        return 0
        ;;
    esac
    sleep 0.5
  done
  echo "the host did not finish booting in 240 s (systemd says: ${state:-nothing})"
  tail -n 30 "$WORK/console.log"
  return 1
}

# ---------------------------------------------------------------------------------------
# Steps: each named, timed, and stopping the run with its own message when it fails
# ---------------------------------------------------------------------------------------
STEP_NO=0
STEP_LOG=
# step NAME FUNCTION [ARGS]: runs a check in a subshell, where fail ends it.
step() { run_step subshell "$@"; }
# step_here NAME FUNCTION [ARGS]: runs in this shell (it sets the run's state: the overlay,
# the container's processes), where failing means returning non-zero.
step_here() { run_step here "$@"; }

run_step() {
  local how=$1 name=$2 t0 rc
  shift 2
  STEP_NO=$((STEP_NO + 1))
  STEP_LOG=$(mktemp /tmp/notify-host-step.XXXXXX)
  t0=$(date +%s%N)
  set +e
  if [[ $how == here ]]; then
    "$@" >"$STEP_LOG" 2>&1
  else
    ("$@") >"$STEP_LOG" 2>&1
  fi
  rc=$?
  set -e
  if ((rc == 0)); then
    printf 'ok   %2d  %6ss  %s\n' "$STEP_NO" "$(elapsed "$t0")" "$name"
    [[ -n ${VERBOSE:-} && -s $STEP_LOG ]] && sed 's/^/            /' "$STEP_LOG"
    rm -f "$STEP_LOG"
    return 0
  fi
  printf 'FAIL %2d  %6ss  %s\n' "$STEP_NO" "$(elapsed "$t0")" "$name"
  tail -n 60 "$STEP_LOG" | sed 's/^/            /'
  rm -f "$STEP_LOG"
  printf 'test:host: failed at step %d, "%s" (total %ss)\n' "$STEP_NO" "$name" "$(elapsed "$STARTED")" >&2
  exit 1
}

# Ends a step (run in a subshell) with its reason.
fail() {
  printf '%s\n' "$@"
  exit 1
}

readonly SERVICES=(notify-bot notify-web notify-gateway)
readonly INSIDE=/srv/notify/v1/dist/test/host/inside.js
readonly ALERT_TITLE='Host test: nightly load late'

# Takes a snapshot of the parts of this built checkout an operator's build machine has, in
# $WORK/NAME, which the host sees read-only as /srv/notify/NAME. node_modules is hard-linked
# (nothing rewrites it during a run), the rest copied.
copy_checkout() {
  local dest=$WORK/$1
  mkdir -p "$dest"
  (cd "$PROJECT" && cp -a --parents package.json package-lock.json bin dist docs deploy examples "$dest/") || return 1
  cp -al "$PROJECT/node_modules" "$dest/node_modules" 2>/dev/null || cp -a "$PROJECT/node_modules" "$dest/node_modules"
}

step_install() {
  local out
  out=$(in_host bash -c 'cd /srv/notify/v1 && deploy/install.sh' 2>&1) || fail "deploy/install.sh failed:" "$out"
  grep -q '^changed: /opt/notify: installed from' <<<"$out" || fail "install.sh did not install the package:" "$out"
  grep -q '^next: fill in /etc/notify/notify.env' <<<"$out" || fail "install.sh did not say to fill in the environment file:" "$out"
  echo "$out" | tail -n 3
}

step_fakes() {
  in_host systemctl reset-failed host-test-fakes.service 2>/dev/null || true
  in_host systemd-run --quiet --unit=host-test-fakes --property=Restart=no /usr/bin/node "$INSIDE" fakes || fail "could not start the fakes"
  local i
  for ((i = 0; i < 120; i++)); do
    if in_host curl -sf -o /dev/null http://127.0.0.1:8081/__control/state && in_host curl -sf -o /dev/null http://127.0.0.1:8082/.well-known/openid-configuration; then
      in_host journalctl -u host-test-fakes -n 1 -o cat
      return 0
    fi
    sleep 0.5
  done
  in_host journalctl -u host-test-fakes -n 30 --no-pager
  fail "the fake Telegram (8081) and the sign-in provider (8082) did not come up in 60 s"
}

step_env() {
  local out
  out=$(
    in_host bash -c 'cd /srv/notify/v1 && deploy/install.sh --env-updates -' <<EOF 2>&1
TELEGRAM_BOT_TOKEN=123456789:host-test-token-aaaaaaaaaaaaaaaaaaaaaaaa
TELEGRAM_BOT_USERNAME=notify_host_bot
TELEGRAM_API_ROOT=http://127.0.0.1:8081
OIDC_ISSUER=http://127.0.0.1:8082
OIDC_CLIENT_ID=notify-web-test
OIDC_CLIENT_SECRET=host-test-client-secret-0123456789
NOTIFY_PUBLIC_URL=http://127.0.0.1:8080
NOTIFY_ALLOWED_DOMAINS=example.com
NOTIFY_SESSION_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
DESKTOP_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
NOTIFY_RETRY_BASE=2s
EOF
  ) || fail "install.sh --env-updates failed:" "$out"
  grep -q '^changed: /etc/notify/notify.env: set' <<<"$out" || fail "the environment file was not updated:" "$out"
  in_host grep -q '^TELEGRAM_API_ROOT=http://127.0.0.1:8081$' /etc/notify/notify.env || fail "the environment file lacks the fake Telegram"
  [[ $(in_host stat -c '%a %U:%G' /etc/notify/notify.env) == '640 root:data-ops' ]] || fail "notify.env is $(in_host stat -c '%a %U:%G' /etc/notify/notify.env), not 640 root:data-ops"
  echo "$out" | tail -n 2
}

step_analysts() {
  local user out
  for user in alice bob; do
    in_host useradd --create-home --shell /bin/bash "$user" || fail "useradd $user failed"
    out=$(in_host notify-add-analyst "$user" 2>&1) || fail "notify-add-analyst $user failed:" "$out"
    grep -q 'notify-runner' <<<"$out" || fail "notify-add-analyst did not print the crontab line:" "$out"
  done
  in_host id -nG alice | grep -qw dataread || fail "alice is not in dataread: $(in_host id -nG alice)"
  # alice's alert script, and her crontab: the printed line, every minute instead of every
  # five (the test does not wait five minutes).
  in_host runuser -u alice -- sh -c "cat > ~/user/notifications/load_check.py" <<EOF
#!/usr/bin/env python3
import json
print(json.dumps({"notify": True, "title": "$ALERT_TITLE", "message": "The nightly load has not finished.", "cooldown": "1d"}))
EOF
  local line
  line=$(grep -m1 '^\*/5 \* \* \* \* /usr/local/bin/notify-runner ' <<<"$out") || fail "no crontab line in notify-add-analyst's output:" "$out"
  line=${line/\*\/5 /\* }
  in_host runuser -u alice -- sh -c "(crontab -l 2>/dev/null; echo '$line') | crontab -" || fail "crontab for alice failed"
  in_host crontab -u alice -l
}

step_units_active() {
  local i svc state
  for ((i = 0; i < 90; i++)); do
    state=$(in_host systemctl is-active "${SERVICES[@]}" | tr '\n' ' ')
    [[ $state == 'active active active ' ]] && {
      # Active for a few seconds, not restarting in a loop.
      sleep 3
      state=$(in_host systemctl is-active "${SERVICES[@]}" | tr '\n' ' ')
      local restarts
      restarts=$(in_host systemctl show -p NRestarts --value "${SERVICES[@]}" | grep . | tr '\n' ' ')
      if [[ $state == 'active active active ' && $restarts == '0 0 0 ' ]]; then
        echo "notify-bot notify-web notify-gateway: active"
        return 0
      fi
    }
    sleep 1
  done
  for svc in "${SERVICES[@]}"; do
    echo "--- $svc: $(in_host systemctl is-active "$svc"), restarts $(in_host systemctl show -p NRestarts --value "$svc")"
    in_host journalctl -u "$svc" -n 15 --no-pager -o cat
  done
  fail "not every unit is active and steady: $state"
}

step_socket() {
  local got i
  # Type=simple: "active" comes before the bot has opened its socket.
  for ((i = 0; i < 120; i++)); do
    got=$(in_host stat -c '%U:%G %a %F' /run/notify-bot/bot.sock 2>&1) && break
    sleep 0.5
  done
  [[ $got == *:* ]] || fail "no send socket after 60 s: $got" "$(in_host journalctl -u notify-bot -n 20 --no-pager -o cat)"
  [[ $got == 'notify-bot:dataread 660 socket' ]] || fail "/run/notify-bot/bot.sock is '$got', not 'notify-bot:dataread 660 socket'"
  in_host runuser -u alice -- curl -sf --unix-socket /run/notify-bot/bot.sock http://localhost/health || fail "alice cannot reach the send socket's /health"
  echo
  if in_host runuser -u nobody -- curl -sf --unix-socket /run/notify-bot/bot.sock http://localhost/health >/dev/null 2>&1; then
    fail "an account outside dataread reached the send socket"
  fi
  echo "bot.sock: $got; alice reaches it, nobody does not"
}

step_dashboard_assets() {
  local page css i
  # Type=simple: "active" comes before the dashboard listens.
  for ((i = 0; i < 120; i++)); do
    in_host curl -sf -o /dev/null http://127.0.0.1:8080/healthz && break
    sleep 0.5
  done
  page=$(in_host curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1:8080/)
  [[ $page == 302* || $page == 303* ]] || fail "GET / answered '$page', not a redirect to the sign-in"
  css=$(in_host curl -sf http://127.0.0.1:8080/static/dashboard.css | sha256sum | cut -c1-64)
  [[ $css == $(in_host sha256sum "$1/dist/src/web/static/dashboard.css" | cut -c1-64) ]] ||
    fail "the dashboard does not serve $1's dashboard.css"
  in_host test ! -e /opt/notify/src || fail "/opt/notify holds src/: the package must run from its build output"
  echo "GET / -> $page; /static/dashboard.css is $1's"
}

step_link() {
  in_host node "$INSIDE" link alice 1001 || fail "alice could not sign in and link Telegram"
  in_host node "$INSIDE" link bob 1002 || fail "bob could not sign in and link Telegram"
}

step_cron_alert() {
  in_host node "$INSIDE" wait-message 1001 "$ALERT_TITLE" 150 ||
    fail "alice's crontab did not deliver her alert; cron.log and runner.log:" \
      "$(in_host sh -c 'tail -n 20 ~alice/.notifications/logs/cron.log ~alice/.notifications/logs/runner.log' 2>&1)"
  in_host runuser -u alice -- notify-scripts list | head -c 600
  echo
  in_host test -s /home/alice/.notifications/logs/runner.log || fail "a successful run left no line in ~/.notifications/logs/runner.log"
}

step_run_button() {
  in_host node "$INSIDE" press 1001 "$ALERT_TITLE" 'Run now' || fail "the Run now button did not run alice's script through sudo"
  in_host journalctl -u notify-bot --since '-2min' -o cat --no-pager | grep -i 'sudo' | grep -iv 'pam_unix' | tail -n 3 || true
}

step_restart_keeps_queue() {
  in_host node "$INSIDE" fault '{"kind":"outage"}' || fail "could not make the fake Telegram fail"
  local out
  out=$(in_host runuser -u bob -- notify 'Kept across a restart' 2>&1) || fail "bob's notify failed during the outage:" "$out"
  local i n=0
  for ((i = 0; i < 60; i++)); do
    # The bot's own count of accepted, undelivered notifications (its /health, as the docs show).
    n=$(in_host runuser -u alice -- curl -s --unix-socket /run/notify-bot/bot.sock http://localhost/health | sed -n 's/.*"queued":\([0-9]*\).*/\1/p')
    n=${n:-0}
    ((n > 0)) && break
    sleep 0.5
  done
  ((n > 0)) || fail "no notification queued (the bot's /health) during the outage; notify said:" "$out" \
    "$(in_host ls -lR /data/notifications/outbox 2>&1 | head -n 20)" "$(in_host journalctl -u notify-bot -n 15 --no-pager -o cat)"
  # Let one attempt fail, so the bot logs the retry (the warning the journal step looks for).
  for ((i = 0; i < 60; i++)); do
    in_host journalctl -u notify-bot -o cat --no-pager | grep -q 'will retry' && break
    sleep 0.5
  done
  in_host systemctl restart notify-bot || fail "systemctl restart notify-bot failed"
  in_host systemctl is-active --quiet notify-bot || fail "notify-bot is not active after the restart"
  in_host node "$INSIDE" fault off
  in_host node "$INSIDE" wait-message 1002 'Kept across a restart' 90 || fail "the notification queued before the restart never arrived"
}

step_journal() {
  local out
  out=$(in_host journalctl -p warning -u notify-bot --no-pager -o cat 2>&1) || fail "journalctl -p warning -u notify-bot failed: $out"
  grep -q 'will retry' <<<"$out" || fail "journalctl -p warning -u notify-bot does not show the provoked delivery warning; it shows:" "$out" \
    "all of notify-bot's lines:" "$(in_host journalctl -u notify-bot -n 20 --no-pager -o cat)"
  echo "journalctl -p warning -u notify-bot: $(grep -c . <<<"$out") line(s), e.g. $(grep -m1 'will retry' <<<"$out" | cut -c1-160)"
  # A line at info must not be among the warnings.
  if grep -q '"msg":"notify-bot ready"\|bot ready' <<<"$out"; then fail "info lines are shown at warning priority:" "$out"; fi
  # The documented commands, as written (docs/operations.md, "Monitoring").
  in_host journalctl -u notify-gateway -p warning -n 50 --no-pager >/dev/null || fail "journalctl -u notify-gateway -p warning -n 50 failed"
  out=$(in_host journalctl -u notify-web --since "1 hour ago" --no-pager -o cat) || fail "journalctl -u notify-web --since '1 hour ago' failed"
  grep -q 'notify-web ready' <<<"$out" || fail "journalctl -u notify-web shows no start-up line:" "$out"
  in_host systemctl status notify-bot notify-web notify-gateway --no-pager >/dev/null || fail "systemctl status failed"
  echo "the Monitoring section's systemctl and journalctl commands work"
}

step_backup() {
  local cmd
  # The command as docs/operations.md writes it, run by an administrator whose umask is
  # the usual 022.
  cmd=$(grep -m1 '^sudo .*tar -C /data -czf /var/backups/' "$PROJECT/docs/operations.md") ||
    fail "no backup command (sudo ... tar -C /data -czf /var/backups/...) in docs/operations.md"
  in_host bash -c "umask 022; $cmd" || fail "the documented backup command failed: $cmd"
  local file mode
  file=$(in_host sh -c 'ls -1t /var/backups/notifications-*.tar.gz | head -n 1')
  mode=$(in_host stat -c '%a %U:%G' "$file")
  [[ $mode == '600 root:root' || $mode == '640 root:data-ops' ]] || fail "$file is $mode: readable beyond root and the services"
  if in_host runuser -u alice -- cat "$file" >/dev/null 2>&1; then fail "alice can read $file"; fi
  in_host tar -tzf "$file" | grep -q 'notifications/telegram_users.json' || fail "$file lacks telegram_users.json"
  echo "$cmd -> $file ($mode)"
}

step_nginx() {
  # The docs' steps ("The reverse proxy"), with a throwaway certificate for the name.
  local certs=$WORK/root/etc/ssl/notify-test
  mkdir -p "$certs"
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=notify.example.com -days 1 \
    -keyout "$certs/privkey.pem" -out "$certs/fullchain.pem" >/dev/null 2>&1 || fail "openssl could not make a test certificate"
  in_host sh -c 'sed -e "s#/etc/letsencrypt/live/notify.example.com/#/etc/ssl/notify-test/#" /srv/notify/v1/deploy/nginx/notify.conf.example >/etc/nginx/sites-available/notify &&
    ln -sf /etc/nginx/sites-available/notify /etc/nginx/sites-enabled/notify' || fail "could not install the site"
  local out
  out=$(in_host nginx -t 2>&1) || fail "nginx -t fails with the example:" "$out"
  if grep -q '\[warn\]' <<<"$out"; then fail "nginx -t warns about the example:" "$out"; fi
  in_host systemctl reload nginx || fail "systemctl reload nginx failed"
  local i code=
  for ((i = 0; i < 20; i++)); do
    code=$(in_host curl -sk -o /dev/null -w '%{http_code} %{http_version}' --resolve notify.example.com:443:127.0.0.1 https://notify.example.com/healthz) && [[ $code == 200* ]] && break
    sleep 0.5
  done
  [[ $code == '200 2' ]] || fail "https://notify.example.com/healthz through nginx answered '$code', not 200 over HTTP/2"
  echo "nginx -t: no warnings; /healthz through nginx: $code"
}

# The newer checkout: this one as the next release (a version and a dashboard asset changed).
make_upgrade() {
  copy_checkout v2 || return 1
  sed -i 's/"version": "\([^"]*\)"/"version": "\1-next"/' "$WORK/v2/package.json"
  printf '\n/* next release */\n' >>"$WORK/v2/dist/src/web/static/dashboard.css"
}

step_upgrade() {
  local out
  out=$(in_host bash -c 'cd /srv/notify/v2 && deploy/install.sh' 2>&1) || fail "install.sh from the newer checkout failed:" "$out"
  grep -q '^changed: /opt/notify: updated from /srv/notify/v2' <<<"$out" || fail "the package was not updated:" "$out"
  in_host grep -q -- '-next"' /opt/notify/package.json || fail "/opt/notify is not the newer checkout"
  echo "$out" | tail -n 2
}

step_reinstall_nothing() {
  local out
  out=$(in_host bash -c 'cd /srv/notify/v2 && deploy/install.sh' 2>&1) || fail "the second install.sh failed:" "$out"
  [[ $out == 'nothing changed' ]] || fail "the second install.sh changed something:" "$out"
  echo "$out"
}

step_reboot() {
  in_host systemctl reboot || true
  local i
  for ((i = 0; i < 120; i++)); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 1; done
  if kill -0 "$NSPAWN" 2>/dev/null; then
    echo "the host did not go down for the reboot in 120 s"
    return 1
  fi
  wait "$NSPAWN" 2>/dev/null || true
  NSPAWN=
  LEADER=
  boot
}

step_after_reboot() {
  # The fake Telegram started afresh: its world knows alice's chat again, as Telegram would.
  in_host curl -sf -X POST -H 'content-type: application/json' -d '{"username":"alice","first_name":"alice"}' \
    http://127.0.0.1:8081/__control/chats/1001 >/dev/null || fail "could not recreate alice's chat in the fake Telegram"
  in_host runuser -u alice -- notify 'Back after the reboot' || fail "alice's notify after the reboot failed"
  in_host node "$INSIDE" wait-message 1001 'Back after the reboot' 60 || fail "nothing reaches Telegram after the reboot"
}

# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------
setup_root() {
  build_base || return 1
  WORK=$(mktemp -d /var/tmp/notify-host.XXXXXX)
  mkdir "$WORK/upper" "$WORK/work" "$WORK/root"
  mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$WORK/upper,workdir=$WORK/work" "$WORK/root" || return 1
  mkdir -p "$WORK/root/srv/notify/v1" "$WORK/root/srv/notify/v2"
  # The host's own name resolves, as on any installed Debian (sudo looks it up).
  printf '127.0.1.1\tnotify-host\n' >>"$WORK/root/etc/hosts"
  copy_checkout v1 || return 1
  make_upgrade || return 1
  echo "root filesystem $BASE, overlay in $WORK"
}

main() {
  say "Debian $SUITE host, packages: ${PACKAGES[*]}"
  step_here "root filesystem (debootstrap, cached) and a throwaway overlay" setup_root
  step_here "boot with systemd-nspawn" boot
  step "install.sh as the docs say (first install)" step_install
  step "fake Telegram and sign-in provider inside the host" step_fakes
  step "environment file filled (install.sh --env-updates)" step_env
  step "two analysts with add-analyst.sh, a crontab for alice" step_analysts
  step "every unit active" step_units_active
  step "send socket owner, group and mode" step_socket
  step "dashboard served from the installed package" step_dashboard_assets /srv/notify/v1
  step "dashboard sign-in and Telegram link (alice, bob)" step_link
  step "alert from alice's crontab reaches Telegram" step_cron_alert
  step "Run now button through sudo" step_run_button
  step "restart keeps queued notifications" step_restart_keeps_queue
  step "journalctl -p warning and the docs' monitoring commands" step_journal
  step "nginx site from the example (nginx -t, reload, HTTPS to the dashboard)" step_nginx
  step "documented backup readable by root only" step_backup
  step "upgrade to a newer checkout" step_upgrade
  step "every unit active after the upgrade" step_units_active
  step "dashboard served from the upgraded package" step_dashboard_assets /srv/notify/v2
  step "second install.sh changes nothing" step_reinstall_nothing
  step_here "reboot" step_reboot
  step "fake Telegram and sign-in provider after the reboot" step_fakes
  step "every unit active after the reboot" step_units_active
  step "send socket after the reboot" step_socket
  step "a notification after the reboot reaches Telegram" step_after_reboot
  say "passed: $STEP_NO steps in $(elapsed "$STARTED") s"
}

# Parsed whole before it runs: editing this file during a run cannot change the run.
main "$@"
