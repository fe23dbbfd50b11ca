#!/usr/bin/env bash
# Makes a server account ready for notifications: adds it to the analysts' group (so it
# can reach the bot's send socket), creates ~/.notifications/{state,logs} and
# ~/user/notifications owned by the account, and prints the crontab line that runs the
# runner. Safe to run again: it changes only what is missing or wrong.
#
# Installed by deploy/install.sh as /usr/local/sbin/notify-add-analyst, with the
# install's analysts' group and programs directory as its defaults.
set -euo pipefail

# install.sh rewrites these two lines with what it installed.
DEFAULT_GROUP=dataread
DEFAULT_RUNNER=/usr/local/bin/notify-runner

usage() {
  cat <<USAGE
Usage: $(basename "$0") [--group NAME] [--runner PATH] USER

Prepares USER (an existing server account) for notifications:
  - adds USER to the analysts' group            [--group, default $DEFAULT_GROUP]
  - creates ~/.notifications/state, ~/.notifications/logs and ~/user/notifications,
    owned by USER
  - prints the crontab line for USER             [--runner, default $DEFAULT_RUNNER]
Run it as root. The new group membership applies to USER's next login (and to cron
jobs started after it).
USAGE
}

die() {
  printf 'add-analyst: error: %s\n' "$*" >&2
  exit 1
}

group=$DEFAULT_GROUP
runner=$DEFAULT_RUNNER
user=
while (($# > 0)); do
  case $1 in
    --group)
      (($# >= 2)) || die "--group needs a value"
      group=$2
      shift
      ;;
    --group=*) group=${1#*=} ;;
    --runner)
      (($# >= 2)) || die "--runner needs a value"
      runner=$2
      shift
      ;;
    --runner=*) runner=${1#*=} ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *)
      [[ -z $user ]] || die "one user at a time"
      user=$1
      ;;
  esac
  shift
done

if [[ -z $user ]]; then
  usage >&2
  exit 2
fi
((EUID == 0)) || die "run it as root (sudo $0 $user)"
entry=$(getent passwd "$user") || die "there is no account '$user' on this server (create it first)"
getent group "$group" >/dev/null || die "there is no group '$group' (deploy/install.sh creates it; or pass --group)"
home=$(cut -d: -f6 <<<"$entry")
[[ -d $home ]] || die "$user's home directory $home does not exist"

changed=0
note() {
  changed=1
  printf 'changed: %s\n' "$*"
}

# Directories in the user's home are made by the user, never by root, and root changes
# nothing in there: the user can swap any directory of their home for a symlink at any
# moment, and root following one could be made to create or chown anything. Everything is
# checked before anything changes, so a refusal leaves the account as it was.
dirs=(.notifications .notifications/state .notifications/logs user user/notifications)
for dir in "${dirs[@]}"; do
  path=$home/$dir
  if [[ -L $path ]]; then
    die "$path is a symbolic link; replace it with a directory and run this again"
  fi
  if [[ -e $path && $(stat -c %U "$path") != "$user" ]]; then
    die "$path belongs to $(stat -c %U "$path"), not $user; check it, give it to $user (chown), and run this again"
  fi
done

if [[ " $(id -nG "$user") " != *" $group "* ]]; then
  usermod --append --groups "$group" "$user"
  note "$user added to group $group"
fi

for dir in "${dirs[@]}"; do
  path=$home/$dir
  if [[ ! -d $path ]]; then
    runuser -u "$user" -- mkdir -m 0700 "$path" || die "could not create $path as $user"
    note "$path created"
  fi
done

((changed)) || echo "nothing changed"
line="*/5 * * * * $runner >> \"\$HOME/.notifications/logs/cron.log\" 2>&1"
cat <<DONE

$user is ready. Their crontab line (as $user: crontab -e, and add it):

$line

Or, as $user, in one go:
  (crontab -l 2>/dev/null; echo '$line') | crontab -

Scripts go in $home/user/notifications/; the guide is /data/docs/notifications.md.
DONE
