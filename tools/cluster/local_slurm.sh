#!/usr/bin/env bash
# Bring up / tear down a real SLURM cluster (munge + MariaDB + slurmdbd + slurmctld +
# slurmd per node) on this Debian 12 host for essa-hpc integration tests.
#
#   tools/cluster/local_slurm.sh start [--nodes N]   N=1 (default): one node, this host itself.
#                                            N>=2: nodes node1..nodeN, each a network + UTS
#                                            namespace on a private bridge (local_slurm_net.sh)
#   tools/cluster/local_slurm.sh stop|status
#   tools/cluster/local_slurm.sh kill-node K         node K dies: its processes killed, its link down
#   tools/cluster/local_slurm.sh revive-node K       link up, its slurmd started again
#   tools/cluster/local_slurm.sh leftovers           what stop left behind (nothing, after a clean stop)
#   env: ESSA_SLURM_STATE (default /tmp/essa-slurm), ESSA_SLURM_TIMEOUT (per-step wait,
#        default 60 s), ESSA_SLURM_KEEP_JOBS=1 (stop leaves running jobs alone)
#
# There is no systemd here, so every daemon runs in foreground mode (-D/-F) as a
# detached background process; its PID goes to $STATE/run/<name>.pid and `stop` kills
# exactly those PIDs (never by name: other SLURM/MySQL processes may be unrelated).
# Logs: $STATE/log/<daemon>.log. Accounting DB: $STATE/mysql (rm -rf $STATE resets all).
set -euo pipefail

STATE=${ESSA_SLURM_STATE:-/tmp/essa-slurm}
RUN=$STATE/run
LOG=$STATE/log
HOST=$(hostname -s)
CLUSTER=essa
DBPASS=essa-local-test     # socket-only MariaDB on a throwaway test box
MYSQL_SOCK=/run/mysqld/mysqld.sock   # default client socket: slurmdbd finds it unconfigured
CONF_DIR=/etc/slurm        # Debian's slurm 22.05 reads /etc/slurm/slurm.conf
TEMPLATES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/slurm_conf
BASE_DAEMONS=(munged mariadbd slurmdbd slurmctld)   # start order; stop is reverse
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
TIMEOUT=${ESSA_SLURM_TIMEOUT:-60}

log() { echo "local_slurm: $*" >&2; }
# shellcheck source=tools/cluster/local_slurm_net.sh
source "$(dirname "${BASH_SOURCE[0]}")/local_slurm_net.sh"

# The cluster's node count is recorded at start, so stop/status/kill-node know it.
recorded_nodes() { cat "$STATE/nodes" 2>/dev/null || echo 1; }
# slurmd instances are named slurmd@NODE; on one node the name is this host's.
slurmd_names() {
    local n=${1:-$(recorded_nodes)} k
    if ((n == 1)); then echo "slurmd@$HOST"; else for ((k = 1; k <= n; k++)); do echo "slurmd@$(node_name "$k")"; done; fi
}
daemons() { local -a d; mapfile -t d < <(slurmd_names "$@"); DAEMONS=("${BASE_DAEMONS[@]}" "${d[@]}"); }
daemons

die() {   # die MESSAGE [daemon-whose-log-to-show]
    log "ERROR: $1"
    if [[ -n ${2:-} && -f $LOG/$2.log ]]; then
        log "---- tail of $LOG/$2.log ----"; tail -n 30 "$LOG/$2.log" >&2
    fi
    ! any_running "${DAEMONS[@]}" || log "daemons that did start still run; '$0 stop' ends them"
    exit 1
}

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }

# Alive = recorded PID exists, is not a zombie, and is still the same program
# (guards against PID reuse after a reboot or an unclean exit). NAME@INSTANCE runs NAME.
is_running() {
    local pid; pid=$(pid_of "$1")
    [[ -n $pid && -r /proc/$pid/comm ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "${1%%@*}" ]] || return 1
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

any_running() { local d; for d in "$@"; do is_running "$d" && return 0; done; return 1; }
all_running() { local d; for d in "${DAEMONS[@]}"; do is_running "$d" || return 1; done; }

# Non-zombie PIDs whose comm is NAME. PID 1 here reaps orphans lazily, so a daemon
# we just stopped can linger as a zombie for a few seconds; that one must not count.
live_pids_named() {
    local p
    for p in $(pgrep -x "$1"); do
        [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) =~ ^Z?$ ]] || printf '%s ' "$p"
    done
}

# wait_for DAEMON DESCRIPTION CMD...: poll CMD until it succeeds; fail with DAEMON's log.
wait_for() {
    local name=$1 what=$2; shift 2
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        is_running "$name" || die "$name exited while waiting for $what" "$name"
        ((SECONDS < deadline)) || die "timed out after ${TIMEOUT}s waiting for $what" "$name"
        sleep 0.2
    done
}

# launch NAME CMD...: start CMD in its own session (so a Ctrl-C or job-control kill
# of the caller does not take the cluster down), logging stdout+stderr to $LOG.
launch() {
    local name=$1; shift
    ! is_running "$name" || return 0
    echo "==== $(date '+%F %T') starting: $*" >>"$LOG/$name.log"
    setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1 &
    local pid=$! i
    echo "$pid" >"$RUN/$name.pid"
    # Until the exec chain (bash -> setsid [-> setpriv] -> daemon) finishes, comm is not
    # yet NAME and is_running would wrongly report the daemon as dead.
    for ((i = 0; i < 50; i++)); do
        [[ -e /proc/$pid && $(cat "/proc/$pid/comm" 2>/dev/null) != "${name%%@*}" ]] || break
        sleep 0.1
    done
}

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]} ..."
    # postinst scripts try to start the services via invoke-rc.d; a policy-rc.d that
    # exits 101 forbids that (Docker-style images already ship one; else add one briefly).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Retry after `apt-get update` in case the package lists are stale or missing.
    apt-get install -y -q "${missing[@]}" >"$STATE/apt.log" 2>&1 ||
        { apt-get update -q && apt-get install -y -q "${missing[@]}"; } >>"$STATE/apt.log" 2>&1 ||
        { tail -n 30 "$STATE/apt.log" >&2; die "apt-get install failed (full log: $STATE/apt.log)"; }
}

# Written only while no SLURM daemon runs: changing slurm.conf under running
# daemons left the cluster inconsistent in earlier experiments.
write_confs() {   # write_confs N
    local n=$1 k mem ctld nodes
    mem=$(awk -v n="$n" '/MemTotal/ {m=int(($2/1024-1024)/n); print (m>1024?m:1024)}' /proc/meminfo)
    # 4 CPUs per node although the machine has 2 cores: config_overrides (slurm.conf.in)
    # makes --ntasks-per-node=2..4 schedulable, oversubscribed.
    local prolog=""
    if ((n == 1)); then
        ctld=$HOST nodes="NodeName=$HOST CPUs=4 RealMemory=$mem State=UNKNOWN"
    else   # nodes reach the controller on the bridge, and each other by NodeAddr
        ctld="$HOST($CTLD_ADDR)" nodes="" prolog="TaskProlog=$TEMPLATES/multinode_task_prolog.sh"
        for ((k = 1; k <= n; k++)); do
            nodes+="NodeName=$(node_name "$k") NodeAddr=$(node_addr "$k") CPUs=4 RealMemory=$mem State=UNKNOWN\\n"
        done
    fi
    local subst=(-e "s|@HOST@|$HOST|g" -e "s|@STATE@|$STATE|g" -e "s|@CLUSTER@|$CLUSTER|g"
                 -e "s|@CTLD@|$ctld|g" -e "s|@NODES@|$nodes|g" -e "s|@TASK_PROLOG@|$prolog|g" -e "s|@DBPASS@|$DBPASS|g")
    mkdir -p "$CONF_DIR"
    sed "${subst[@]}" "$TEMPLATES/slurm.conf.in" >"$CONF_DIR/slurm.conf"
    install -m 600 -o root -g root /dev/null "$CONF_DIR/slurmdbd.conf"
    sed "${subst[@]}" "$TEMPLATES/slurmdbd.conf.in" >"$CONF_DIR/slurmdbd.conf"
}

start_munged() {
    # munged refuses to run as root, and wants its key owned by the munge user.
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key
    install -d -o munge -g munge -m 755 /run/munge   # /run is wiped on reboot
    # setpriv execs in place (unlike su/runuser), so $! is munged's own PID.
    launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
    wait_for munged "munge credentials" bash -c 'munge -n | unmunge'
}

start_mariadbd() {
    local datadir=$STATE/mysql
    install -d -o mysql -g mysql -m 755 /run/mysqld
    if [[ ! -d $datadir/mysql ]]; then
        log "initialising MariaDB datadir $datadir"
        install -d -o mysql -g mysql -m 750 "$datadir"
        mariadb-install-db --no-defaults --user=mysql --datadir="$datadir" \
            --auth-root-authentication-method=socket --skip-test-db \
            >>"$LOG/mariadbd.log" 2>&1 || die "mariadb-install-db failed" mariadbd
    fi
    # --no-defaults: ignore Debian's /etc/mysql config; --skip-networking: socket only,
    # so nothing listens on TCP 3306. Buffer pool/lock timeout silence slurmdbd's
    # "Database settings not recommended" error. mariadbd writes its pid file as mysql,
    # so that one cannot live in root's $RUN.
    launch mariadbd /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$datadir" \
        --socket="$MYSQL_SOCK" --pid-file=/run/mysqld/mariadbd.pid --skip-networking \
        --innodb-buffer-pool-size=1G --innodb-lock-wait-timeout=900
    wait_for mariadbd "MariaDB socket" mariadb-admin --no-defaults -S "$MYSQL_SOCK" ping
    mariadb --no-defaults -S "$MYSQL_SOCK" -u root -e "
        CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" ||
        die "creating the slurm accounting db/user failed" mariadbd
}

start_slurmdbd() {
    launch slurmdbd /usr/sbin/slurmdbd -D
    wait_for slurmdbd "slurmdbd to answer sacctmgr" sacctmgr -n list cluster
    # Register the cluster before slurmctld connects, so its first registration sticks.
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster failed" slurmdbd
    fi
}

start_slurmctld() {
    launch slurmctld /usr/sbin/slurmctld -D
    wait_for slurmctld "slurmctld to answer" bash -c 'scontrol ping | grep -q UP'
}

# Ready = idle, or busy with jobs that survived a restart (start must stay a no-op then), or
# drained on purpose (the multi-node tests drain their control node): it answers either way.
node_ready() { [[ $(sinfo -h -n "$1" -o %T 2>/dev/null) =~ ^(idle|mixed|allocated|completing|drained|draining)$ ]]; }
all_nodes_ready() { local d; for d in $(slurmd_names); do node_ready "${d#slurmd@}" || return 1; done; }

start_slurmd() {   # start_slurmd NAME (slurmd@NODE)
    local node=${1#slurmd@} k
    if [[ $node == "$HOST" ]]; then
        mkdir -p "$STATE/spool/slurmd-$node"
        launch "$1" /usr/sbin/slurmd -D
    else
        # nsenter, not `ip netns exec`: that remounts /sys, which hides the cgroup mount slurmd
        # needs. nsenter, unshare and sh all exec in place, so the recorded PID is slurmd's.
        k=${node#node}
        mkdir -p "$STATE/spool/slurmd-$node"
        launch "$1" nsenter --net="/run/netns/$(node_netns "$k")" unshare --uts \
            sh -c "hostname $node && exec /usr/sbin/slurmd -D -N $node"
    fi
    wait_for "$1" "node $node to become ready (sinfo)" node_ready "$node"
}

summary() {   # summary NOTE
    local d parts=()
    for d in "${DAEMONS[@]}"; do parts+=("$d=$(pid_of "$d")"); done
    echo "local_slurm: UP ($1) cluster=$CLUSTER nodes=$(sinfo -h -N -o '%N:%T' | sort -u | paste -sd,)" \
         "partition=debug state=$STATE ${parts[*]}"
}

cmd_start() {   # cmd_start N
    local n=$1 t0=$EPOCHREALTIME
    mkdir -p "$RUN" "$LOG" "$STATE/spool/slurmctld"
    if [[ $(recorded_nodes) != "$n" ]] && any_running "${DAEMONS[@]}"; then
        log "the running cluster has $(recorded_nodes) node(s), not $n: restarting it"
        cmd_stop
    fi
    daemons "$n"
    if all_running && all_nodes_ready && sacct -n -X -S now >/dev/null 2>&1; then
        summary "already running"; return 0
    fi
    install_packages
    # Daemons from another state dir or an init script would clash on sockets/ports,
    # and rewriting slurm.conf under them is exactly what must not happen.
    local d p foreign ours=" "
    for d in "${DAEMONS[@]}"; do ! is_running "$d" || ours+="$(pid_of "$d") "; done
    for d in "${BASE_DAEMONS[@]}" slurmd; do
        foreign=""
        for p in $(live_pids_named "$d"); do [[ $ours == *" $p "* ]] || foreign+="$p "; done
        [[ -z $foreign ]] || die "a $d not started via $STATE runs (pid ${foreign% }); stop it first"
    done
    if any_running "${DAEMONS[@]:2}"; then
        log "some SLURM daemons already run; keeping the existing $CONF_DIR/slurm.conf"
    else
        write_confs "$n"
    fi
    echo "$n" >"$STATE/nodes"
    ((n == 1)) || net_up "$n"
    start_munged
    start_mariadbd
    start_slurmdbd
    start_slurmctld
    for d in $(slurmd_names); do start_slurmd "$d"; done
    wait_for slurmdbd "sacct to work" sacct -n -X -S now
    summary "started in $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $t0}")s"
}

# Jobs' slurmstepd processes are not daemons and outlive slurmd, so a plain daemon stop
# leaves test workloads running. Cancel them first unless ESSA_SLURM_KEEP_JOBS=1
# (then a later start re-attaches to them, as after a real slurmd restart).
cancel_jobs() {
    [[ ${ESSA_SLURM_KEEP_JOBS:-0} == 1 ]] && return 0
    is_running slurmctld || return 0
    local jobs deadline=$((SECONDS + 30))   # > KillWait, so SIGKILL has been sent
    mapfile -t jobs < <(squeue -h -o %i 2>/dev/null)
    ((${#jobs[@]})) || return 0
    log "cancelling jobs: ${jobs[*]}"
    scancel "${jobs[@]}" || true
    while [[ -n $(squeue -h -o %i 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 0.5; done
}

stop_daemon() {   # SIGTERM the recorded PID; SIGKILL after 30 s
    local name=$1 pid deadline=$((SECONDS + 30))
    if is_running "$name"; then
        pid=$(pid_of "$name")
        kill -TERM "$pid" 2>/dev/null || true
        while is_running "$name" && ((SECONDS < deadline)); do sleep 0.2; done
        if is_running "$name"; then
            log "$name (pid $pid) ignored SIGTERM for 30s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            while is_running "$name"; do sleep 0.2; done
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$RUN/$name.pid"
}

cmd_stop() {
    local i
    cancel_jobs
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_daemon "${DAEMONS[i]}"; done
    net_down
    rm -f "$STATE/nodes"
}

cmd_kill_node() {   # see node_kill in local_slurm_net.sh
    [[ $(recorded_nodes) -ge 2 && ${1:-} =~ ^[0-9]+$ ]] || die "kill-node K needs a multi-node cluster and a node number"
    node_kill "$1"
    log "node$1 killed: processes gone, link down"
}

cmd_revive_node() {
    [[ $(recorded_nodes) -ge 2 && ${1:-} =~ ^[0-9]+$ ]] || die "revive-node K needs a multi-node cluster and a node number"
    node_link_up "$1"
    start_slurmd "slurmd@$(node_name "$1")"
    log "node$1 back: $(sinfo -h -n "node$1" -o %T)"
}

cmd_leftovers() {
    local d
    net_leftovers
    for d in "${BASE_DAEMONS[@]}" slurmd; do
        [[ -z $(live_pids_named "$d") ]] || echo "daemon $d: pid $(live_pids_named "$d")"
    done
}

cmd_status() {
    local d rc=0
    for d in "${DAEMONS[@]}"; do
        if is_running "$d"; then printf '%-10s running  pid %s\n' "$d" "$(pid_of "$d")"
        else printf '%-10s stopped\n' "$d"; rc=3; fi
    done
    if is_running slurmctld; then sinfo -N -o '%N %P %c %m %T' || true; fi
    return $rc
}

case ${1:-} in
    start)
        nodes=1
        if [[ ${2:-} == --nodes ]]; then nodes=${3:-}; elif [[ ${2:-} == --nodes=* ]]; then nodes=${2#--nodes=}; fi
        [[ $nodes =~ ^[0-9]+$ ]] && ((nodes >= 1)) || { echo "local_slurm: --nodes needs a number >= 1" >&2; exit 2; }
        cmd_start "$nodes" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    kill-node) cmd_kill_node "${2:-}" ;;
    revive-node) cmd_revive_node "${2:-}" ;;
    leftovers) cmd_leftovers ;;
    *) echo "usage: $0 start [--nodes N]|stop|status|kill-node K|revive-node K|leftovers" \
            "(state: $STATE; status exits 3 unless all run)" >&2
       exit 2 ;;
esac
