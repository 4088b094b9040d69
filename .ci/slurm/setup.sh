#!/usr/bin/env bash
# Start a real single-node SLURM cluster (Debian 12 packages) as root, without systemd, for the
# workflow's SLURM integration test (tests/test_slurm.py). Recipe and pitfalls:
# ../shared/design/slurm-local.md (outside the repository; summarised in the comments below).
#   BASE=/tmp/slurm-ci ACCOUNTING=none|slurmdbd FAKE_GPU=1|0 PARTITION=main bash .ci/slurm/setup.sh
#   ACCOUNTING=none (default): no database; Snakemake must poll with `--slurm-status-command squeue`.
#   ACCOUNTING=slurmdbd: slurmdbd + MariaDB, so sacct (the plugin's default status command) works.
#   FAKE_GPU=1 (default): one fake GPU (gres gpu:1 on /dev/null) so gpu=1 requests are schedulable.
# State, logs and pid files live under $BASE; .ci/slurm/stop.sh stops every daemon by its pid file.
# slurm.conf must be reachable as /etc/slurm/slurm.conf (a symlink here): the SLURM jobstep plugin drops
# SLURM_CONF from the environment of the nested srun.
set -euo pipefail
BASE=${BASE:-/tmp/slurm-ci}
ACCOUNTING=${ACCOUNTING:-none}
PARTITION=${PARTITION:-main}
FAKE_GPU=${FAKE_GPU:-1}
export DEBIAN_FRONTEND=noninteractive

t0=$(date +%s)
log() { echo "[slurm-setup +$(( $(date +%s) - t0 ))s] $*"; }

# ---------------------------------------------------------------- packages
PKGS="munge slurmctld slurmd slurm-client"
[ "$ACCOUNTING" = slurmdbd ] && PKGS="$PKGS slurmdbd mariadb-server"
# shellcheck disable=SC2086
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq $PKGS >/dev/null
fi
log "packages: slurm $(dpkg-query -W -f='${Version}' slurmctld), munge $(dpkg-query -W -f='${Version}' munge)"

mkdir -p "$BASE"/{etc,run,log,state/ctld,state/d}
H=$(hostname -s)

# ---------------------------------------------------------------- munge (authentication)
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key
mkdir -p /run/munge; chown munge:munge /run/munge; chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged          # daemonizes; pid in /run/munge/munged.pid
  for _ in $(seq 1 20); do munge -n | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
  touch "$BASE/run/munged.started-here"         # stop.sh stops munged only if this script started it
fi
log "munged up"

# ---------------------------------------------------------------- slurm.conf
NODELINE=$(slurmd -C | head -1)                 # NodeName=<host> CPUs=.. RealMemory=..
GRES_NODE=""; GRES_TYPES=""
if [ "$FAKE_GPU" = 1 ]; then
  GRES_NODE="Gres=gpu:1"; GRES_TYPES="GresTypes=gpu"
  printf 'AutoDetect=off\nNodeName=%s Name=gpu File=/dev/null\n' "$H" > "$BASE/etc/gres.conf"
fi
if [ "$ACCOUNTING" = slurmdbd ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
cat > "$BASE/etc/slurm.conf" <<CONF
ClusterName=ci
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
StateSaveLocation=$BASE/state/ctld
SlurmdSpoolDir=$BASE/state/d
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobCompType=jobcomp/none
$ACCT
# finished jobs stay visible to squeue for an hour: the plugin polls squeue (needs >= 3 x its init
# seconds) and the test checks every job's final state after the whole workflow
MinJobAge=3600
# without it a bare sbatch takes the whole node's memory and jobs run one at a time
DefMemPerCPU=1024
$GRES_TYPES
$NODELINE NodeAddr=127.0.0.1 $GRES_NODE State=UNKNOWN
PartitionName=$PARTITION Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
mkdir -p /etc/slurm
for f in slurm.conf gres.conf slurmdbd.conf; do   # refuse to replace a real cluster's configuration
  if [ -e "/etc/slurm/$f" ] && [ ! -L "/etc/slurm/$f" ]; then echo "/etc/slurm/$f exists and is not ours"; exit 1; fi
done
ln -sf "$BASE/etc/slurm.conf" /etc/slurm/slurm.conf
if [ "$FAKE_GPU" = 1 ]; then ln -sf "$BASE/etc/gres.conf" /etc/slurm/gres.conf; else rm -f /etc/slurm/gres.conf; fi

# ---------------------------------------------------------------- MariaDB + slurmdbd (sacct variant)
if [ "$ACCOUNTING" = slurmdbd ]; then
  SOCK=$BASE/run/mysqld/mysqld.sock
  mkdir -p "$BASE/mysql" "$BASE/run/mysqld"; chown mysql:mysql "$BASE/mysql" "$BASE/run/mysqld"
  if [ ! -d "$BASE/mysql/data/mysql" ]; then
    mariadb-install-db --user=mysql --datadir="$BASE/mysql/data" --skip-test-db >"$BASE/log/mariadb-install.log" 2>&1
  fi
  nohup mariadbd --no-defaults --user=mysql --datadir="$BASE/mysql/data" --socket="$SOCK" \
     --pid-file="$BASE/run/mysqld/mysqld.pid" --bind-address=127.0.0.1 --port=3306 \
     --innodb-buffer-pool-size=128M >"$BASE/log/mariadb.log" 2>&1 &
  for _ in $(seq 1 60); do mariadb --socket="$SOCK" -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
  mariadb --socket="$SOCK" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
  log "mariadb up"
  cat > "$BASE/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
LogFile=$BASE/log/slurmdbd.log
PidFile=$BASE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
  chmod 600 "$BASE/etc/slurmdbd.conf"
  ln -sf "$BASE/etc/slurmdbd.conf" /etc/slurm/slurmdbd.conf
  nohup slurmdbd -D >"$BASE/log/slurmdbd.out" 2>&1 & echo $! >"$BASE/run/slurmdbd.daemon.pid"
  for _ in $(seq 1 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
  sacctmgr -n list cluster format=cluster | grep -qw ci || sacctmgr -i add cluster ci >/dev/null
  log "slurmdbd up, cluster registered"
fi

# ---------------------------------------------------------------- slurmctld + slurmd
nohup slurmctld -D >"$BASE/log/slurmctld.out" 2>&1 & echo $! >"$BASE/run/slurmctld.daemon.pid"
for _ in $(seq 1 60); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.5; done
nohup slurmd -D >"$BASE/log/slurmd.out" 2>&1 & echo $! >"$BASE/run/slurmd.daemon.pid"
for _ in $(seq 1 60); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.5; done
sinfo -h -o %T | grep -qx idle || { echo "node not idle"; sinfo -N -l; tail -n 30 "$BASE"/log/*.log; exit 1; }
log "slurm up: $(sinfo -h -o '%P %T %G %N')"

# ---------------------------------------------------------------- smoke test
out=$(srun -t 1 hostname); [ "$out" = "$H" ] || { echo "srun failed: $out"; exit 1; }
if [ "$ACCOUNTING" = slurmdbd ]; then
  jid=$(sbatch --parsable -t 1 -o /dev/null --wrap true)
  for _ in $(seq 1 30); do sacct -X -n -P -j "$jid" -o State | grep -q COMPLETED && break; sleep 1; done
  sacct -X -n -P -j "$jid" -o State | grep -q COMPLETED || { echo "sacct did not report job $jid"; exit 1; }
fi
log "smoke test ok"
