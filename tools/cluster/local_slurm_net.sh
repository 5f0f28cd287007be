# Sourced by tools/cluster/local_slurm.sh: the private network of a multi-node test cluster.
#
# Each compute node K is a network namespace essa-nodeK whose eth0 is one end of a veth
# pair; the other end (essa-vK) hangs on the bridge essa-br0. The bridge holds the
# controller's address, has no uplink and the namespaces have no default route, so no
# packet can leave the machine. Addresses come from 198.18.0.0/15 (reserved for
# benchmarking, never routed): the controller is 198.18.0.1, node K is 198.18.0.(10+K).
# Node names resolve through /etc/hosts lines tagged with $HOSTS_TAG, which net_down
# removes. slurmd, and so every job process, also gets its own UTS namespace (hostname
# nodeK); the filesystem stays shared, as NFS is on a cluster.

BRIDGE=essa-br0
CTLD_ADDR=198.18.0.1
NET_PREFIX=24
HOSTS_TAG="# essa-local-slurm"

node_name() { echo "node$1"; }
node_addr() { echo "198.18.0.$((10 + $1))"; }
node_netns() { echo "essa-node$1"; }
node_veth() { echo "essa-v$1"; }   # the host-side end: its counters are node K's wire traffic

net_up() {   # net_up N: bridge, N namespaces with veth links, hosts lines (idempotent)
    local n=$1 k ns
    ((n >= 1 && n <= 200)) || die "--nodes must be 1..200, not $n"
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE (needs root and CAP_NET_ADMIN)"
        ip addr add "$CTLD_ADDR/$NET_PREFIX" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
    for ((k = 1; k <= n; k++)); do
        ns=$(node_netns "$k")
        if ! ip netns list | grep -qw "$ns"; then
            ip netns add "$ns" || die "cannot create network namespace $ns"
            ip link add "$(node_veth "$k")" type veth peer name eth0 netns "$ns"
            ip -n "$ns" addr add "$(node_addr "$k")/$NET_PREFIX" dev eth0
        fi
        ip link set "$(node_veth "$k")" master "$BRIDGE" up
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
    done
    hosts_set "$n"
}

# /etc/hosts may be a bind mount (containers): rewrite it in place, never rename over it.
hosts_without_ours() { grep -v -F "$HOSTS_TAG" /etc/hosts || true; }

hosts_set() {
    local n=$1 k content
    content=$(hosts_without_ours)
    content+=$'\n'"$CTLD_ADDR essa-ctl $HOSTS_TAG"
    for ((k = 1; k <= n; k++)); do content+=$'\n'"$(node_addr "$k") $(node_name "$k") $HOSTS_TAG"; done
    printf '%s\n' "$content" >/etc/hosts
}

net_down() {   # remove every namespace, veth, the bridge and our hosts lines
    local ns pid
    for ns in $(ip netns list | awk '/^essa-node[0-9]+/ {print $1}'); do
        # Anything still in the namespace (a job step that outlived slurmd) is ours.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    # Deleting a namespace removes its end of each veth pair; not every kernel (gVisor here)
    # then removes the host-side end, so delete those by name.
    local link
    for link in $(ip -o link show | awk -F': ' '$2 ~ /^essa-v[0-9]+/ {sub(/@.*/, "", $2); print $2}'); do
        ip link del "$link" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    if grep -q -F "$HOSTS_TAG" /etc/hosts; then
        local content; content=$(hosts_without_ours)
        printf '%s\n' "$content" >/etc/hosts
    fi
}

net_leftovers() {   # what a clean stop must not leave: prints one line per item
    ip netns list | awk '/^essa-node/ {print "namespace " $1}'
    ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE"
    ip -o link show | awk -F': ' '$2 ~ /^essa-v[0-9]+/ {sub(/@.*/, "", $2); print "veth " $2}'
    { grep -F "$HOSTS_TAG" /etc/hosts || true; } | sed 's/^/hosts line /'
    return 0
}

# A whole node dies: every process in its namespace is killed and its link goes down,
# so no FIN or RST reaches its peers (as when a node loses power).
node_kill() {
    local k=$1 ns pid; ns=$(node_netns "$k")
    ip netns list | grep -qw "$ns" || die "no node $k (namespace $ns)"
    ip link set "$(node_veth "$k")" down
    for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null || true; done
    rm -f "$RUN/slurmd@$(node_name "$k").pid"
}

node_link_up() { ip link set "$(node_veth "$1")" up; }
