#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, from Debian's packages, for the cluster test
# (tests/cluster/test_slurm.py, `make test-cluster`).
#
#   tests/cluster/local-slurm.sh up       # install (once), configure, start; returns when the node is idle and sacct answers
#   tests/cluster/local-slurm.sh status   # what runs; exit 0 only when the cluster answers
#   tests/cluster/local-slurm.sh down     # stop every daemon `up` started, remove slurm's state, logs and accounting database
#
# Run as root on Debian 12 (slurm-wlm 22.05): munge, slurmctld, slurmd, slurmdbd + MariaDB.
# Daemons are started directly, not through systemd (which containers usually lack).
# What `up` brings up (tests/cluster/test_slurm.py relies on these names):
#   cluster  selfconsuming
#   node     this host (`slurmd -C`: its real CPUs and memory) with 2 fake GPUs: gres gpu whose
#            device files are empty files (jobs are granted GPUs, but nothing can run CUDA)
#   partitions  cpu (the default) and gpu, both on that node
#   account  selfconsuming (root is a member); associations are enforced, so a job naming
#            another account is refused
#   MinJobAge=300 (the profile checks job states with squeue; see profiles/slurm/config.yaml)
#   accounting through slurmdbd (sacct), with gres/gpu tracked in the job's TRES
set -euo pipefail

CLUSTER=selfconsuming
ACCOUNT=selfconsuming
FAKE_GPUS=2
DB=slurm_acct_db
DB_PASS=local-slurm-test
STATE=/var/lib/local-slurm          # what `up` started, so that `down` stops only that
CONF=/etc/slurm
RUN=/run/slurm
LOG=/var/log/slurm
PACKAGES=(munge slurm-wlm slurmdbd slurm-wlm-mysql-plugin mariadb-server)

die() { echo "local-slurm: ERROR: $*" >&2; exit 1; }
say() { echo "local-slurm: $*"; }

need_root_debian() {
    [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts system daemons)"
    [ -f /etc/debian_version ] && command -v apt-get >/dev/null || die "needs Debian (apt-get and Debian's slurm-wlm packages)"
}

running() {  # running PIDFILE: the daemon whose pid is in PIDFILE is alive
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for() {  # wait_for SECONDS WHAT CMD...: poll CMD every second until it succeeds
    local limit=$1 what=$2; shift 2
    for ((i = 0; i < limit; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    die "$what did not come up within ${limit}s (logs: $LOG/, /var/log/munge/)"
}

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return 0
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed (no access to Debian's package archive?)"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

write_if_changed() {  # write_if_changed PATH OWNER MODE < content; returns 0 when the file changed
    local tmp; tmp=$(mktemp)
    cat >"$tmp"
    if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
    install -o "$2" -g "$2" -m "$3" "$tmp" "$1"
    rm -f "$tmp"
}

write_configs() {  # returns 0 when any slurm config changed
    local host node changed=1
    host=$(hostname -s)
    # The node exactly as slurmd sees it (a node configured with more CPUs or memory than it
    # has is drained), plus the fake GPUs.
    node=$(slurmd -C | grep '^NodeName=' | sed "s/^NodeName=[^ ]*/NodeName=$host/")
    [ -n "$node" ] || die "slurmd -C printed no node line"
    mkdir -p "$CONF"
    for ((i = 0; i < FAKE_GPUS; i++)); do touch "$STATE/fake-gpu$i"; done
    write_if_changed "$CONF/slurm.conf" root 0644 <<EOF && changed=0
# Written by tests/cluster/local-slurm.sh: a one-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# no cgroups: containers rarely allow them
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# squeue (the profile's status command) must remember a finished job for a while
MinJobAge=300
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
# sacct shows the comment the executor plugin puts on each job (rule_<rule>_wildcards_<values>)
AccountingStoreFlags=job_comment
GresTypes=gpu
$node Gres=gpu:$FAKE_GPUS NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
EOF
    write_if_changed "$CONF/gres.conf" root 0644 <<EOF && changed=0
# Written by tests/cluster/local-slurm.sh. Fake GPUs: slurmd drops a GPU without a device
# file, so each is an empty regular file; jobs are granted them (CUDA_VISIBLE_DEVICES is
# set) but nothing can run CUDA on them.
AutoDetect=off
NodeName=$host Name=gpu File=$STATE/fake-gpu[0-$((FAKE_GPUS - 1))]
EOF
    write_if_changed "$CONF/slurmdbd.conf" slurm 0600 <<EOF && changed=0
# Written by tests/cluster/local-slurm.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=$DB
EOF
    return $changed
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    say "starting munged"
    [ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; }
    chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge; chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (/var/log/munge/munged.log)"
    touch "$STATE/munge"
    wait_for 20 munge sh -c 'munge -n </dev/null | unmunge'
}

start_mariadb() {
    if ! mysqladmin ping >/dev/null 2>&1; then
        say "starting MariaDB"
        /etc/init.d/mariadb start >/dev/null || die "MariaDB did not start (/var/log/mysql/, or run: /etc/init.d/mariadb start)"
        touch "$STATE/mariadb"
        wait_for 60 MariaDB mysqladmin ping
    fi
    mysql -u root <<EOF || die "could not create the accounting database"
CREATE DATABASE IF NOT EXISTS $DB;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurm() {
    mkdir -p "$RUN" "$LOG" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd
    chown slurm:slurm "$RUN" "$LOG" /var/lib/slurm/slurmctld
    if ! running "$RUN/slurmdbd.pid"; then
        say "starting slurmdbd"
        slurmdbd || die "slurmdbd did not start ($LOG/slurmdbd.log)"
    fi
    wait_for 60 slurmdbd sacctmgr -n list cluster
    # The cluster, its account and root's association exist before slurmctld registers.
    sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" \
        || sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster failed"
    sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" \
        || sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=test Organization=test >/dev/null \
        || die "sacctmgr add account failed"
    sacctmgr -n -P list association format=account,user | grep -qx "$ACCOUNT|root" \
        || sacctmgr -i add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null || die "sacctmgr add user failed"
    if ! running "$RUN/slurmctld.pid"; then
        # -c: a cold start, without the jobs and node states of an earlier, unfinished session
        say "starting slurmctld"
        slurmctld -c || die "slurmctld did not start ($LOG/slurmctld.log)"
    fi
    wait_for 60 slurmctld scontrol ping
    if ! running "$RUN/slurmd.pid"; then
        say "starting slurmd"
        slurmd || die "slurmd did not start ($LOG/slurmd.log)"
    fi
}

node_idle() { sinfo -h -N -o '%t' | grep -qx idle; }
node_registered() { sinfo -h -N -o '%t' | grep -qvE '^(unk|down)'; }

stop_slurm() {
    local f
    for f in slurmd slurmctld slurmdbd; do
        if running "$RUN/$f.pid"; then
            say "stopping $f"
            kill "$(cat "$RUN/$f.pid")"
            for ((i = 0; i < 30; i++)); do running "$RUN/$f.pid" || break; sleep 1; done
            running "$RUN/$f.pid" && kill -9 "$(cat "$RUN/$f.pid")" 2>/dev/null || true
        fi
        rm -f "$RUN/$f.pid"
    done
}

cmd_up() {
    need_root_debian
    local t0=$SECONDS
    mkdir -p "$STATE"
    install_packages
    if write_configs && running "$RUN/slurmctld.pid"; then
        say "configuration changed: restarting the slurm daemons"
        stop_slurm
    fi
    start_munge
    start_mariadb
    start_slurm
    wait_for 60 "the node's registration" node_registered
    if sinfo -h -N -o '%t' | grep -q drain; then  # drained by an earlier configuration
        scontrol update NodeName="$(hostname -s)" State=RESUME || true
    fi
    wait_for 60 "an idle node" node_idle
    wait_for 60 sacct sacct -n -X -S now-1hour
    say "up in $((SECONDS - t0))s"
    cmd_status
}

cmd_status() {
    local ok=0
    for f in slurmdbd slurmctld slurmd; do
        if running "$RUN/$f.pid"; then echo "$f: running (pid $(cat "$RUN/$f.pid"))"; else echo "$f: not running"; ok=1; fi
    done
    if command -v sinfo >/dev/null && sinfo >/dev/null 2>&1; then
        sinfo -N -o '%N %P %t %c %m %G'
        sacct -n -X -S now-1hour >/dev/null 2>&1 && echo "sacct: answers" || { echo "sacct: does not answer"; ok=1; }
    else
        echo "sinfo: no cluster answers"; ok=1
    fi
    return $ok
}

cmd_down() {
    need_root_debian
    if command -v scancel >/dev/null && scontrol ping >/dev/null 2>&1; then
        scancel --full --user=root 2>/dev/null || true
    fi
    stop_slurm
    if mysqladmin ping >/dev/null 2>&1; then
        mysql -u root -e "DROP DATABASE IF EXISTS $DB; DROP USER IF EXISTS 'slurm'@'localhost';" || true
        if [ -e "$STATE/mariadb" ]; then say "stopping MariaDB"; /etc/init.d/mariadb stop >/dev/null || true; fi
    fi
    if [ -e "$STATE/munge" ] && [ -s /run/munge/munged.pid ]; then
        say "stopping munged"
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    fi
    rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/* "$LOG"/*.log "$RUN" "$STATE"
    for f in slurm.conf gres.conf slurmdbd.conf; do
        if [ -f "$CONF/$f" ] && grep -q "Written by tests/cluster/local-slurm.sh" "$CONF/$f"; then rm -f "$CONF/$f"; fi
    done
    say "down"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
