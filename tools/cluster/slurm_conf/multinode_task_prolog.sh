#!/bin/sh
# TaskProlog of the multi-node test cluster (tools/cluster/local_slurm.sh start --nodes N>=2).
# Its "nodes" are namespaces of one machine, so UCX (MPICH's default netmod) sees one boot
# id and moves inter-node messages through shared memory: nothing would cross the veth
# links. tcp,self makes inter-node traffic take the network, as it must between real
# machines; MPICH's own shared memory still serves ranks on the same node. A real cluster
# needs no such setting (UCX picks InfiniBand or TCP by itself).
echo "export UCX_TLS=${UCX_TLS:-tcp,self}"
