#!/usr/bin/env bash
# Stop the daemons .ci/slurm/setup.sh started (by pid file, never by name) and remove its /etc/slurm links.
BASE=${BASE:-/tmp/slurm-ci}
stop() { [ -s "$1" ] && kill "$(cat "$1")" 2>/dev/null; rm -f "$1"; }
stop "$BASE/run/slurmd.daemon.pid"
stop "$BASE/run/slurmctld.daemon.pid"
stop "$BASE/run/slurmdbd.daemon.pid"
stop "$BASE/run/mysqld/mysqld.pid"
if [ -e "$BASE/run/munged.started-here" ]; then stop /run/munge/munged.pid; rm -f "$BASE/run/munged.started-here"; fi
for f in slurm.conf gres.conf slurmdbd.conf; do
  [ "$(readlink "/etc/slurm/$f")" = "$BASE/etc/$f" ] && rm -f "/etc/slurm/$f"
done
sleep 2
exit 0
